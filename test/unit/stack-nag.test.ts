/**
 * cdk-nag (AwsSolutions) guard rails: the app registers the checks so every `cdk synth` runs
 * them, each supported configuration has zero unacknowledged findings, and every
 * acknowledgment carries its reason.
 */
import { Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { AWS_BASE, nagViolations, synth } from './stack-fixture.ts';

const CONFIGURATIONS: Record<string, Record<string, unknown>> = {
  'AWS with worker, recording and alarm e-mail': { ...AWS_BASE, callRecording: true, alarmEmail: 'ops@example.com' },
  'AWS in an existing VPC with database secrets': {
    ...AWS_BASE,
    callRecording: true,
    vpcId: 'vpc-0a1b2c3d4e5f60718',
    subnetIds: 'subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788',
    metadataLocationSecret: 'calldata/mysql:url',
    transcriptionLocationSecret: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:calldata/pg-AbCdEf',
    livekitSecret: 'calldata/livekit',
    egressS3Secret: 'calldata/egress',
  },
  'AWS without worker or recording': { deployWorker: false },
  'LocalStack profile': { localstack: true, callRecording: true, livekitUrl: 'http://127.0.0.1:7880' },
};

function acknowledgments(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node
    .findAll()
    .flatMap((c) =>
      c.node.metadata
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) => Object.entries(m.data as Record<string, string>))
        .map(([id, reason]) => ({ path: c.node.path, id, reason })),
    );
}

describe('cdk-nag AwsSolutions', { timeout: 60_000 }, () => {
  for (const [name, context] of Object.entries(CONFIGURATIONS)) {
    it(`finds no unacknowledged problem in the ${name} configuration`, () => {
      // Prepare
      const synthesized = synth(context);

      // Act
      const violations = nagViolations(synthesized);

      // Assess
      expect(violations).toEqual([]);
    });
  }

  it('states a reason for every acknowledged finding', () => {
    // Prepare
    const { stack } = synth(CONFIGURATIONS['AWS in an existing VPC with database secrets'] ?? {});

    // Act
    const acks = acknowledgments(stack).filter((a) => a.id.includes('AwsSolutions-'));

    // Assess
    expect(acks.length).toBeGreaterThan(5);
    for (const ack of acks) {
      expect(ack.id).toMatch(/AwsSolutions-[A-Z0-9]+(\[.+\])?$/);
      expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThan(30);
    }
  });

  it('runs on every synth of the app and stops it on an unacknowledged finding', () => {
    // Prepare
    const synthesized = synth({ deployWorker: false });
    new s3.Bucket(synthesized.stack, 'UnloggedBucket');

    // Act
    const run = () => synthesized.app.synth({ force: true });

    // Assess
    expect(run).toThrow(/AwsSolutions-S1|AwsSolutions-S10|[Vv]alidation/);
  });
});
