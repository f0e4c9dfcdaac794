/**
 * Pins every security-relevant property of the synthesized template: encryption, TLS-only
 * policies, public access, least-privilege IAM, secrets never in plaintext, dead letters and
 * their alarms, function runtime and logging, the fact flow (everyone sends facts to one queue,
 * persist sends recording commands), the scheduled sweeper, and the worker's task definition.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { DISCARD_PREFIX } from '../../functions/domain/recording-plan.ts';
import { OPEN_MARKER_PREFIX } from '../../infra/settings.ts';
import { AWS_BASE, logicalId, resourcesOf, synth, type Synthesized } from './stack-fixture.ts';

const LIVEKIT_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:calldata/livekit-AbCdEf';
const DB_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:calldata/db-XyZ123';
/** A price table as cdk.json holds it: a JSON object under the `priceTable` key. */
const PRICE_TABLE = { currency: 'EUR', models: { 'openai/gpt-4.1-mini': { promptPer1M: 0.4, completionPer1M: 1.6 }, 'deepgram/nova-3': { perMinute: 0.0043 } } };

type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Sid?: string; Condition?: unknown };

function statementsOfRole(s: Synthesized, rolePrefix: string): Statement[] {
  const role = logicalId(s.template, 'AWS::IAM::Role', rolePrefix);
  return resourcesOf(s.template, 'AWS::IAM::Policy')
    .filter(([, policy]) => JSON.stringify(policy.Properties?.Roles).includes(`"${role}"`))
    .flatMap(([, policy]) => (policy.Properties?.PolicyDocument as { Statement: Statement[] }).Statement);
}

function actions(statements: Statement[]): string[] {
  return statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();
}

function functionEnv(s: Synthesized, prefix: string): Record<string, unknown> {
  const id = logicalId(s.template, 'AWS::Lambda::Function', prefix);
  const fn = s.template.toJSON().Resources[id] as { Properties: { Environment: { Variables: Record<string, unknown> } } };
  return fn.Properties.Environment.Variables;
}

let aws: Synthesized;
let local: Synthesized;
let inVpc: Synthesized;

beforeAll(() => {
  aws = synth({ ...AWS_BASE, callRecording: true, alarmEmail: 'ops@example.com', timezone: 'Asia/Kolkata', recordingExpirationDays: 90, bucketName: 'acme-calldata' });
  local = synth({
    localstack: true,
    callRecording: true,
    livekitUrl: 'http://127.0.0.1:7880',
    livekitSecret: LIVEKIT_SECRET_ARN,
    metadataLocationSecret: `${DB_SECRET_ARN}:url`,
    egressS3Secret: 'calldata/egress',
    priceTable: PRICE_TABLE,
  });
  inVpc = synth({ ...AWS_BASE, deployWorker: false, vpcId: 'vpc-0a1b2c3d4e5f60718', subnetIds: 'subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788', transcriptionLocationSecret: 'calldata/postgres' });
}, 60_000);

describe('recordings bucket', () => {
  it('blocks all public access, encrypts at rest, enforces bucket-owner ownership and logs access', () => {
    // Prepare / Act
    const { template } = aws;

    // Assess
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: 'acme-calldata',
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LoggingConfiguration: { DestinationBucketName: { Ref: logicalId(template, 'AWS::S3::Bucket', 'AccessLogs') }, LogFilePrefix: 'recordings/' },
      VersioningConfiguration: Match.absent(),
    });
  });

  it('denies every request that does not use TLS, on both buckets', () => {
    // Prepare / Act
    const policies = resourcesOf(aws.template, 'AWS::S3::BucketPolicy');

    // Assess
    expect(policies).toHaveLength(2);
    for (const [, policy] of policies) {
      expect(policy.Properties?.PolicyDocument).toMatchObject({
        Statement: expect.arrayContaining([
          expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      });
    }
  });

  it('expires discarded recordings after their 15-day hold, whatever else is configured', () => {
    // Prepare
    const rulesOf = (s: Synthesized) =>
      (s.template.toJSON().Resources[logicalId(s.template, 'AWS::S3::Bucket', 'Recordings')] as { Properties: { LifecycleConfiguration: { Rules: { Id: string }[] } } })
        .Properties.LifecycleConfiguration.Rules;

    // Act
    const rules = [aws, local, inVpc].map(rulesOf);

    // Assess
    for (const set of rules) {
      expect(set).toEqual(expect.arrayContaining([expect.objectContaining({ Id: 'ExpireDiscardedRecordings', Prefix: `${DISCARD_PREFIX}/`, ExpirationInDays: 15, Status: 'Enabled' })]));
    }
  });

  it('expires claim-check payloads, aborts stale uploads and expires recordings only when asked', () => {
    // Prepare
    const rulesOf = (s: Synthesized) =>
      (s.template.toJSON().Resources[logicalId(s.template, 'AWS::S3::Bucket', 'Recordings')] as { Properties: { LifecycleConfiguration: { Rules: unknown[] } } })
        .Properties.LifecycleConfiguration.Rules;

    // Act
    const withExpiry = rulesOf(aws);
    const withoutExpiry = rulesOf(local);

    // Assess
    expect(withExpiry).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Id: 'AbortIncompleteUploads', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 }, Status: 'Enabled' }),
        expect.objectContaining({ Id: 'ExpireConversationPayloads', Prefix: '_calldata-payloads/', ExpirationInDays: 14, Status: 'Enabled' }),
        expect.objectContaining({ Id: 'ExpireRecordings', ExpirationInDays: 90, Status: 'Enabled' }),
      ]),
    );
    expect(withoutExpiry.map((r) => (r as { Id: string }).Id)).not.toContain('ExpireRecordings');
  });

  it('is retained when the stack is deleted on AWS and destroyed in the LocalStack profile', () => {
    // Prepare / Act
    const onAws = aws.template.toJSON().Resources[logicalId(aws.template, 'AWS::S3::Bucket', 'Recordings')];
    const onLocalStack = local.template.toJSON().Resources[logicalId(local.template, 'AWS::S3::Bucket', 'Recordings')];

    // Assess
    expect(onAws.DeletionPolicy).toBe('Retain');
    expect(onLocalStack.DeletionPolicy).toBe('Delete');
  });
});

describe('queues', () => {
  it('encrypts all four queues and allows only TLS', () => {
    // Prepare / Act
    const queues = resourcesOf(aws.template, 'AWS::SQS::Queue');
    const policies = resourcesOf(aws.template, 'AWS::SQS::QueuePolicy');

    // Assess
    expect(queues).toHaveLength(4);
    for (const [, queue] of queues) expect(queue.Properties?.SqsManagedSseEnabled).toBe(true);
    expect(policies).toHaveLength(4);
    for (const [, policy] of policies) {
      expect(JSON.stringify(policy.Properties?.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('redrives the snapshot and recording queues to their dead-letter queues after a bounded number of receives', () => {
    // Prepare
    const { template } = aws;
    const snapshotsDlq = logicalId(template, 'AWS::SQS::Queue', 'SnapshotsDeadLetters');
    const recordingDlq = logicalId(template, 'AWS::SQS::Queue', 'RecordingDeadLetters');

    // Act / Assess
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [snapshotsDlq, 'Arn'] }, maxReceiveCount: 5 },
      MessageRetentionPeriod: 4 * 86_400,
      VisibilityTimeout: 180,
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [recordingDlq, 'Arn'] }, maxReceiveCount: 5 },
      VisibilityTimeout: 720,
    });
    template.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 14 * 86_400, RedrivePolicy: Match.absent() });
  });

  it('keeps snapshots long enough to ride out a day-long backend outage', () => {
    // Prepare / Act
    const retentions = resourcesOf(aws.template, 'AWS::SQS::Queue').map(([, q]) => q.Properties?.MessageRetentionPeriod as number);

    // Assess
    for (const seconds of retentions) expect(seconds).toBeGreaterThanOrEqual(2 * 86_400);
  });

  it('raises an alarm as soon as one message waits in either dead-letter queue, notifying the alarm e-mail', () => {
    // Prepare
    const { template } = aws;
    const topic = logicalId(template, 'AWS::SNS::Topic', 'Alarms');

    // Act / Assess
    for (const dlq of ['SnapshotsDeadLetters', 'RecordingDeadLetters']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(template, 'AWS::SQS::Queue', dlq), 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: topic }],
      });
    }
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });
});

describe('functions', { timeout: 60_000 }, () => {
  it('run Node.js 24 on ARM64 with JSON logs in their own log group with retention, and source maps enabled', () => {
    // Prepare
    const { template } = aws;

    // Act
    const functions = resourcesOf(template, 'AWS::Lambda::Function');

    // Assess
    expect(functions.map(([id]) => id.replace(/Function[0-9A-F]{8}$/, '')).sort()).toEqual(['Persist', 'Recording', 'Sweeper', 'Webhook']);
    for (const [id, fn] of functions) {
      const name = id.replace(/Function[0-9A-F]{8}$/, '');
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: logicalId(template, 'AWS::Logs::LogGroup', `${name}Logs`) } },
        Environment: { Variables: expect.objectContaining({ NODE_OPTIONS: '--enable-source-maps' }) },
      });
    }
    const retentions = resourcesOf(template, 'AWS::Logs::LogGroup').map(([, g]) => g.Properties?.RetentionInDays);
    expect(retentions.every((days) => days === 30)).toBe(true);
  });

  it('consume the queues in batches with partial batch failures and bounded concurrency', () => {
    // Prepare
    const { template } = aws;

    // Act / Assess
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [logicalId(template, 'AWS::SQS::Queue', 'SnapshotsQueue'), 'Arn'] },
      FunctionName: { Ref: logicalId(template, 'AWS::Lambda::Function', 'PersistFunction') },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
      BatchSize: 10,
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [logicalId(template, 'AWS::SQS::Queue', 'RecordingQueue'), 'Arn'] },
      FunctionName: { Ref: logicalId(template, 'AWS::Lambda::Function', 'RecordingFunction') },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
  });

  it('give the persist function its configuration and the dead-letter queue it parks poison messages in', () => {
    // Prepare / Act
    const env = functionEnv(aws, 'PersistFunction');

    // Assess
    expect(env).toMatchObject({
      SAVE_METADATA: 'true',
      SAVE_TRANSCRIPTION: 'true',
      CALL_RECORDING: 'true',
      TIMEZONE: 'Asia/Kolkata',
      METADATA_LOCATION: 's3',
      TRANSCRIPTION_LOCATION: 's3',
      AWS_S3_BUCKET: { Ref: logicalId(aws.template, 'AWS::S3::Bucket', 'Recordings') },
      CALLDATA_DEAD_LETTER_QUEUE_URL: { Ref: logicalId(aws.template, 'AWS::SQS::Queue', 'SnapshotsDeadLetters') },
    });
  });

  it('send the recording commands from the persist function to the recording queue, and only when recording', () => {
    // Prepare
    const withoutRecording = synth({ ...AWS_BASE, deployWorker: false });

    // Act
    const env = functionEnv(aws, 'PersistFunction');
    const envOff = functionEnv(withoutRecording, 'PersistFunction');

    // Assess
    expect(env).toMatchObject({
      CALLDATA_QUEUE_URL: { Ref: logicalId(aws.template, 'AWS::SQS::Queue', 'SnapshotsQueue') },
      CALLDATA_RECORDING_QUEUE_URL: { Ref: logicalId(aws.template, 'AWS::SQS::Queue', 'RecordingQueue') },
    });
    expect(envOff).not.toHaveProperty('CALLDATA_RECORDING_QUEUE_URL');
    expect(envOff).toHaveProperty('CALLDATA_QUEUE_URL');
  });

  it('let the webhook and recording functions send their facts to the fact queue', () => {
    // Prepare
    const factQueue = logicalId(aws.template, 'AWS::SQS::Queue', 'SnapshotsQueue');

    // Act / Assess
    for (const name of ['Webhook', 'Recording']) {
      expect(functionEnv(aws, `${name}Function`)).toMatchObject({ CALLDATA_QUEUE_URL: { Ref: factQueue } });
      const send = statementsOfRole(aws, `${name}Role`).find((s) => actions([s]).includes('sqs:SendMessage'));
      expect(send?.Resource).toEqual({ 'Fn::GetAtt': [factQueue, 'Arn'] });
    }
  });

  it('give the functions that store or read records the whole location configuration (they agree on the primary), and no other', () => {
    // Prepare / Act
    const envs = ['Persist', 'Sweeper'].map((name) => functionEnv(aws, `${name}Function`));
    const localEnvs = ['Persist', 'Sweeper'].map((name) => functionEnv(local, `${name}Function`));
    const storeNothing = ['Recording', 'Webhook'].flatMap((name) => [functionEnv(aws, `${name}Function`), functionEnv(local, `${name}Function`)]);

    // Assess
    for (const env of envs) expect(env).toMatchObject({ SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', CALL_RECORDING: 'true', METADATA_LOCATION: 's3', TRANSCRIPTION_LOCATION: 's3' });
    for (const env of localEnvs) expect(env).toMatchObject({ METADATA_LOCATION_SECRET_ARN: `${DB_SECRET_ARN}:url::` });
    for (const env of storeNothing) expect(Object.keys(env).filter((name) => /LOCATION/.test(name))).toEqual([]);
  });

  it('give the price table to the functions that render metadata (persist, sweeper) as JSON their configuration reads, and to no other', () => {
    // Prepare / Act
    const renderers = ['Persist', 'Sweeper'].map((name) => functionEnv(local, `${name}Function`));
    const others = ['Recording', 'Webhook'].map((name) => functionEnv(local, `${name}Function`));
    const withoutTable = resourcesOf(aws.template, 'AWS::Lambda::Function').map(([id]) => functionEnv(aws, id));

    // Assess: the runtime reads back the very table the context gave, so estimated_cost is produced
    for (const env of renderers) {
      expect(typeof env.CALLDATA_PRICE_TABLE).toBe('string');
      expect(loadConfig({ CALLDATA_PRICE_TABLE: env.CALLDATA_PRICE_TABLE as string }).priceTable).toEqual(PRICE_TABLE);
    }
    for (const env of [...others, ...withoutTable]) expect(env).not.toHaveProperty('CALLDATA_PRICE_TABLE');
  });

  it('never put a secret value in a function environment, only Secrets Manager references', () => {
    // Prepare
    const forbidden = ['LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET', 'AWS_S3_ACCESS_KEY_ID', 'AWS_S3_SECRET_ACCESS_KEY', 'MINIO_SECRET_KEY'];

    // Act
    const envs = [aws, local, inVpc].flatMap((s) => resourcesOf(s.template, 'AWS::Lambda::Function').map(([id]) => functionEnv(s, id)));

    // Assess
    for (const env of envs) {
      for (const name of forbidden) expect(env).not.toHaveProperty(name);
      expect(JSON.stringify(env)).not.toMatch(/:\/\/[^/@"]*:[^/@"]*@/); // no URL with user:password
    }
    expect(functionEnv(local, 'RecordingFunction')).toMatchObject({
      LIVEKIT_API_KEY_SECRET_ARN: `${LIVEKIT_SECRET_ARN}:apiKey::`,
      LIVEKIT_API_SECRET_SECRET_ARN: `${LIVEKIT_SECRET_ARN}:apiSecret::`,
      AWS_S3_ACCESS_KEY_ID_SECRET_ARN: 'calldata/egress:accessKeyId::',
      AWS_S3_SECRET_ACCESS_KEY_SECRET_ARN: 'calldata/egress:secretAccessKey::',
    });
    expect(functionEnv(local, 'PersistFunction')).toMatchObject({ METADATA_LOCATION_SECRET_ARN: `${DB_SECRET_ARN}:url::` });
    expect(functionEnv(local, 'PersistFunction')).not.toHaveProperty('METADATA_LOCATION');
  });

  it('reference the created LiveKit secret by ARN and field when no secret is given', () => {
    // Prepare
    const secret = logicalId(aws.template, 'AWS::SecretsManager::Secret', 'LiveKitCredentials');

    // Act
    const env = functionEnv(aws, 'WebhookFunction');

    // Assess
    expect(env.LIVEKIT_API_KEY_SECRET_ARN).toEqual({ 'Fn::Join': ['', [{ Ref: secret }, ':apiKey::']] });
    expect(env.LIVEKIT_API_SECRET_SECRET_ARN).toEqual({ 'Fn::Join': ['', [{ Ref: secret }, ':apiSecret::']] });
    aws.template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { SecretStringTemplate: '{"apiKey":"REPLACE_WITH_LIVEKIT_API_KEY"}', GenerateStringKey: 'apiSecret' },
    });
    expect(resourcesOf(local.template, 'AWS::SecretsManager::Secret')).toHaveLength(0);
  });

  it('force path-style S3 only in the LocalStack profile', () => {
    // Prepare / Act / Assess
    expect(functionEnv(local, 'PersistFunction')).toMatchObject({ AWS_S3_FORCE_PATH_STYLE: 'true' });
    expect(functionEnv(aws, 'PersistFunction')).not.toHaveProperty('AWS_S3_FORCE_PATH_STYLE');
  });

  it('expose the webhook over an HTTPS function URL whose requests the function authenticates by LiveKit signature', () => {
    // Prepare / Act / Assess
    aws.template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'NONE',
      InvokeMode: 'BUFFERED',
      TargetFunctionArn: { 'Fn::GetAtt': [logicalId(aws.template, 'AWS::Lambda::Function', 'WebhookFunction'), 'Arn'] },
    });
    expect(resourcesOf(aws.template, 'AWS::Lambda::Url')).toHaveLength(1);
  });

  it('leave the recording function out when recording is off', () => {
    // Prepare / Act
    const s = synth({ ...AWS_BASE, deployWorker: false });

    // Assess
    expect(resourcesOf(s.template, 'AWS::Lambda::Function').map(([id]) => id.replace(/Function[0-9A-F]{8}$/, '')).sort()).toEqual(['Persist', 'Sweeper', 'Webhook']);
    expect(resourcesOf(s.template, 'AWS::SQS::Queue')).toHaveLength(4);
  });

  it('run the functions that reach the databases (persist, sweeper) in the given VPC subnets, and no other', () => {
    // Prepare / Act / Assess
    for (const name of ['PersistFunction', 'SweeperFunction']) {
      const fn = inVpc.template.toJSON().Resources[logicalId(inVpc.template, 'AWS::Lambda::Function', name)];
      expect(fn.Properties.VpcConfig).toMatchObject({ SubnetIds: ['subnet-0a1b2c3d4e5f60718', 'subnet-0f1e2d3c4b5a69788'], SecurityGroupIds: [{ 'Fn::GetAtt': [expect.stringMatching(/^PersistSecurityGroup/), 'GroupId'] }] });
    }
    const webhook = inVpc.template.toJSON().Resources[logicalId(inVpc.template, 'AWS::Lambda::Function', 'WebhookFunction')];
    expect(webhook.Properties.VpcConfig).toBeUndefined();
    inVpc.template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: 'vpc-0a1b2c3d4e5f60718', SecurityGroupIngress: Match.absent() });
  });
});

describe('least-privilege IAM', () => {
  it('attaches no managed policies to any role', () => {
    // Prepare / Act
    const roles = [aws, local, inVpc].flatMap((s) => resourcesOf(s.template, 'AWS::IAM::Role'));

    // Assess
    for (const [, role] of roles) expect(role.Properties?.ManagedPolicyArns).toBeUndefined();
  });

  it('grants no wildcard actions and no resource "*" outside the documented exceptions', () => {
    // Prepare
    const documented = new Set(['ecr:GetAuthorizationToken']);

    // Act
    const statements = [aws, local].flatMap((s) =>
      resourcesOf(s.template, 'AWS::IAM::Policy').flatMap(([, p]) => (p.Properties?.PolicyDocument as { Statement: Statement[] }).Statement),
    );

    // Assess
    for (const statement of statements) {
      for (const action of actions([statement])) expect(action).not.toMatch(/\*/);
      if (statement.Resource === '*') expect(actions([statement]).every((a) => documented.has(a))).toBe(true);
    }
  });

  it('lets the persist function read and write objects, delete open-call markers, list the bucket, park poison messages, send recording commands and consume its queue, nothing more', () => {
    // Prepare / Act
    const statements = statementsOfRole(aws, 'PersistRole');

    // Assess
    expect(actions(statements)).toEqual(
      [
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        's3:GetObject',
        's3:PutObject',
        's3:ListBucket',
        's3:DeleteObject',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:ReceiveMessage',
      ].sort(),
    );
    const send = statements.find((s) => actions([s]).includes('sqs:SendMessage'));
    expect(send?.Resource).toEqual(
      expect.arrayContaining([
        { 'Fn::GetAtt': [logicalId(aws.template, 'AWS::SQS::Queue', 'SnapshotsDeadLetters'), 'Arn'] },
        { 'Fn::GetAtt': [logicalId(aws.template, 'AWS::SQS::Queue', 'RecordingQueue'), 'Arn'] },
      ]),
    );
    expect(send?.Resource).toHaveLength(2);
    const logs = statements.find((s) => s.Sid === 'WriteOwnLogs');
    expect(JSON.stringify(logs?.Resource)).toContain(logicalId(aws.template, 'AWS::Logs::LogGroup', 'PersistLogs'));
  });

  it('lets each function read only the secrets it is configured with', () => {
    // Prepare / Act
    const persist = statementsOfRole(local, 'PersistRole').filter((s) => actions([s]).includes('secretsmanager:GetSecretValue'));
    const recording = statementsOfRole(local, 'RecordingRole').filter((s) => actions([s]).includes('secretsmanager:GetSecretValue'));

    // Assess
    expect(JSON.stringify(persist)).toContain('calldata/db-XyZ123');
    expect(JSON.stringify(persist)).not.toContain('livekit');
    const granted = JSON.stringify(recording);
    expect(granted).toContain('calldata/livekit-AbCdEf');
    expect(granted).not.toContain('calldata/db-XyZ123');
    expect(granted).toContain('secret:calldata/egress-??????');
    const webhook = JSON.stringify(statementsOfRole(local, 'WebhookRole').filter((s) => actions([s]).includes('secretsmanager:GetSecretValue')));
    expect(webhook).toContain('calldata/livekit-AbCdEf');
    expect(webhook).not.toContain('calldata/db-XyZ123');
    expect(webhook).not.toContain('calldata/egress');
  });

  it('lets the recording function delete objects (discarding unanswered recordings), the persist function only open-call markers, the webhook function touch no object', () => {
    // Prepare
    const inDatabase = synth({ ...AWS_BASE, deployWorker: false, metadataLocation: 'postgres://db.internal/calls', transcriptionLocation: 'postgres://db.internal/calls' });

    // Act
    const persistDeletes = statementsOfRole(aws, 'PersistRole').filter((s) => actions([s]).includes('s3:DeleteObject'));

    // Assess
    expect(actions(statementsOfRole(aws, 'RecordingRole'))).toContain('s3:DeleteObject');
    expect(actions(statementsOfRole(aws, 'WebhookRole')).filter((a) => a.startsWith('s3:'))).toEqual([]);
    expect(persistDeletes).toHaveLength(1);
    expect(actions(persistDeletes)).toEqual(['s3:DeleteObject']);
    expect(JSON.stringify(persistDeletes[0]?.Resource)).toContain(`/${OPEN_MARKER_PREFIX}/*`);
    expect(actions(statementsOfRole(inDatabase, 'PersistRole'))).not.toContain('s3:DeleteObject');
  });

  it('lets the webhook function read the LiveKit secret and send to the fact queue, nothing more', () => {
    // Prepare / Act
    const statements = statementsOfRole(aws, 'WebhookRole');

    // Assess
    expect(actions(statements)).toEqual(
      ['logs:CreateLogStream', 'logs:PutLogEvents', 'secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'].sort(),
    );
  });

  it('lets the worker task only send to the fact queue and put claim-check payloads (no recording queue)', () => {
    // Prepare / Act
    const statements = statementsOfRole(aws, 'WorkerTaskTaskRole');

    // Assess
    expect([...new Set(actions(statements))]).toEqual(['s3:PutObject', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
    const send = statements.find((s) => actions([s]).includes('sqs:SendMessage'));
    expect(send?.Resource).toEqual({ 'Fn::GetAtt': [logicalId(aws.template, 'AWS::SQS::Queue', 'SnapshotsQueue'), 'Arn'] });
    const put = statements.find((s) => actions([s]).includes('s3:PutObject'));
    expect(JSON.stringify(put?.Resource)).toContain('/_calldata-payloads/*');
  });
});

describe('worker service', { timeout: 60_000 }, () => {
  it('runs the Dockerfile image on ARM64 Fargate with the worker command and an init process', () => {
    // Prepare / Act / Assess
    aws.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      RequiresCompatibilities: ['FARGATE'],
      Cpu: '1024',
      Memory: '2048',
      ContainerDefinitions: [
        Match.objectLike({
          Command: ['node', 'worker/main.ts', 'start'],
          LinuxParameters: { InitProcessEnabled: true },
          StopTimeout: 120,
          LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
        }),
      ],
    });
    const manifest = JSON.parse(readFileSync(join(aws.outdir, `${aws.stack.artifactId}.assets.json`), 'utf8')) as {
      dockerImages: Record<string, { source: { directory: string; dockerFile?: string; platform?: string } }>;
    };
    const images = Object.values(manifest.dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0]?.source).toMatchObject({ dockerFile: 'Dockerfile', platform: 'linux/arm64' });
    // Staged by the .dockerignore allow-list: manifests and runtime sources only.
    const staged = readdirSync(join(aws.outdir, images[0]?.source.directory ?? '')).sort();
    expect(staged).toEqual(['.dockerignore', '.npmrc', 'Dockerfile', 'functions', 'package-lock.json', 'package.json', 'worker']);
  });

  it('gives the worker its configuration as environment and the LiveKit credentials as ECS secrets', () => {
    // Prepare
    const container = (aws.template.toJSON().Resources[logicalId(aws.template, 'AWS::ECS::TaskDefinition', 'WorkerTask')] as {
      Properties: { ContainerDefinitions: { Environment: { Name: string; Value: unknown }[]; Secrets: { Name: string; ValueFrom: unknown }[] }[] };
    }).Properties.ContainerDefinitions[0];

    // Act
    const env = Object.fromEntries((container?.Environment ?? []).map((e) => [e.Name, e.Value]));
    const secrets = Object.fromEntries((container?.Secrets ?? []).map((e) => [e.Name, e.ValueFrom]));

    // Assess
    expect(env).toMatchObject({
      CALL_RECORDING: 'true',
      SAVE_METADATA: 'true',
      SAVE_TRANSCRIPTION: 'true',
      HANGUP_CALL: 'true',
      TIMEZONE: 'Asia/Kolkata',
      LIVEKIT_URL: 'wss://calls.example.livekit.cloud',
      CALLDATA_QUEUE_URL: { Ref: logicalId(aws.template, 'AWS::SQS::Queue', 'SnapshotsQueue') },
      AWS_S3_BUCKET: { Ref: logicalId(aws.template, 'AWS::S3::Bucket', 'Recordings') },
    });
    expect(env).not.toHaveProperty('CALLDATA_RECORDING_QUEUE_URL');
    expect(env).not.toHaveProperty('LIVEKIT_API_KEY');
    expect(env).not.toHaveProperty('LIVEKIT_API_SECRET');
    const secret = logicalId(aws.template, 'AWS::SecretsManager::Secret', 'LiveKitCredentials');
    expect(secrets).toEqual({
      LIVEKIT_API_KEY: { 'Fn::Join': ['', [{ Ref: secret }, ':apiKey::']] },
      LIVEKIT_API_SECRET: { 'Fn::Join': ['', [{ Ref: secret }, ':apiSecret::']] },
    });
  });

  it('gives the worker an environment its own configuration loader accepts, with extra variables and secrets as configured', () => {
    // Prepare
    const s = synth({
      ...AWS_BASE,
      agentName: 'phone-agent',
      workerEnvironment: JSON.stringify({ AGENT_INSTRUCTIONS: 'Be brief.', CALLDATA_PROGRESS_INTERVAL_MS: '3000' }),
      workerSecrets: JSON.stringify({ OPENAI_API_KEY: 'calldata/openai:apiKey' }),
    });
    const container = (s.template.toJSON().Resources[logicalId(s.template, 'AWS::ECS::TaskDefinition', 'WorkerTask')] as {
      Properties: { ContainerDefinitions: { Environment: { Name: string; Value: unknown }[]; Secrets: { Name: string; ValueFrom: unknown }[] }[] };
    }).Properties.ContainerDefinitions[0];
    // Deploy-time values (queue URLs, bucket name) stand in as the strings CloudFormation will put there.
    const deployed = (value: unknown, name: string) =>
      typeof value === 'string' ? value : name === 'AWS_S3_BUCKET' ? 'calldata-recordings-1a2b3c' : name === 'AWS_S3_REGION' ? 'eu-west-1' : `https://sqs.eu-west-1.amazonaws.com/123456789012/${name}`;

    // Act
    const env = Object.fromEntries((container?.Environment ?? []).map((e) => [e.Name, deployed(e.Value, e.Name)]));
    const config = loadConfig({ ...env, LIVEKIT_API_KEY: 'from-secret', LIVEKIT_API_SECRET: 'from-secret' });

    // Assess
    expect(config).toMatchObject({ callRecording: false, saveMetadata: true, saveTranscription: true, hangupCall: true, queueUrl: env.CALLDATA_QUEUE_URL });
    expect(config.recordingQueueUrl).toBeUndefined();
    expect(config.s3.bucket).toBe('calldata-recordings-1a2b3c');
    expect(env).toMatchObject({ LIVEKIT_AGENT_NAME: 'phone-agent', AGENT_INSTRUCTIONS: 'Be brief.', CALLDATA_PROGRESS_INTERVAL_MS: '3000' });
    const secrets = Object.fromEntries((container?.Secrets ?? []).map((e) => [e.Name, JSON.stringify(e.ValueFrom)]));
    expect(Object.keys(secrets).sort()).toEqual(['LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET', 'OPENAI_API_KEY']);
    expect(secrets.OPENAI_API_KEY).toContain('secret:calldata/openai:apiKey::');
  });

  it('accepts no inbound traffic, logs rejected VPC flows and enables Container Insights', () => {
    // Prepare / Act / Assess
    aws.template.hasResourceProperties('AWS::EC2::SecurityGroup', { SecurityGroupIngress: Match.absent() });
    aws.template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT', LogDestinationType: 'cloud-watch-logs' });
    aws.template.hasResourceProperties('AWS::ECS::Cluster', { ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }] });
    aws.template.hasResourceProperties('AWS::ECS::Service', {
      DeploymentConfiguration: Match.objectLike({ DeploymentCircuitBreaker: { Enable: true, Rollback: true } }),
      EnableExecuteCommand: false,
    });
  });

  it('is left out in the LocalStack profile and when deployWorker is false', () => {
    // Prepare / Act / Assess
    expect(resourcesOf(local.template, 'AWS::ECS::Service')).toHaveLength(0);
    expect(resourcesOf(inVpc.template, 'AWS::ECS::Service')).toHaveLength(0);
  });
});

describe('sweeper', { timeout: 60_000 }, () => {
  it('runs every 5 minutes on an EventBridge schedule, without retries (the next sweep does the same)', () => {
    // Prepare
    const { template } = aws;
    const fn = logicalId(template, 'AWS::Lambda::Function', 'SweeperFunction');
    const rule = logicalId(template, 'AWS::Events::Rule', 'SweepSchedule');

    // Act / Assess
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fn, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [fn, 'Arn'] },
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [rule, 'Arn'] },
    });
    expect(resourcesOf(template, 'AWS::Events::Rule')).toHaveLength(1);
  });

  it('is deployed without its schedule in the LocalStack profile (no EventBridge there) unless asked for', () => {
    // Prepare
    const scheduled = synth({ localstack: true, livekitUrl: 'http://127.0.0.1:7880', sweepSchedule: 'true' });

    // Act / Assess
    expect(resourcesOf(local.template, 'AWS::Lambda::Function').map(([id]) => id)).toEqual(expect.arrayContaining([expect.stringMatching(/^SweeperFunction/)]));
    expect(resourcesOf(local.template, 'AWS::Events::Rule')).toHaveLength(0);
    expect(resourcesOf(scheduled.template, 'AWS::Events::Rule')).toHaveLength(1);
  });

  it('sends its closing facts to the fact queue and asks LiveKit with the LiveKit secret', () => {
    // Prepare
    const secret = logicalId(aws.template, 'AWS::SecretsManager::Secret', 'LiveKitCredentials');
    const tuned = synth({ ...AWS_BASE, deployWorker: false, sweepAfterMs: '900000' });

    // Act
    const env = functionEnv(aws, 'SweeperFunction');

    // Assess
    expect(env).toMatchObject({
      CALLDATA_QUEUE_URL: { Ref: logicalId(aws.template, 'AWS::SQS::Queue', 'SnapshotsQueue') },
      LIVEKIT_URL: 'wss://calls.example.livekit.cloud',
      LIVEKIT_API_KEY_SECRET_ARN: { 'Fn::Join': ['', [{ Ref: secret }, ':apiKey::']] },
      LIVEKIT_API_SECRET_SECRET_ARN: { 'Fn::Join': ['', [{ Ref: secret }, ':apiSecret::']] },
      AWS_S3_BUCKET: { Ref: logicalId(aws.template, 'AWS::S3::Bucket', 'Recordings') },
    });
    expect(env).not.toHaveProperty('CALLDATA_SWEEP_AFTER_MS');
    expect(functionEnv(tuned, 'SweeperFunction')).toMatchObject({ CALLDATA_SWEEP_AFTER_MS: '900000' });
    const fn = aws.template.toJSON().Resources[logicalId(aws.template, 'AWS::Lambda::Function', 'SweeperFunction')];
    expect(fn.Properties.Timeout).toBe(120);
  });

  it('may read records, send to the fact queue, read the LiveKit secret and delete only discarded recordings and stale open-call markers, nothing more', () => {
    // Prepare
    const withoutRecording = synth({ ...AWS_BASE, deployWorker: false, metadataLocation: 'mysql://db.internal/calls', transcriptionLocation: 'mysql://db.internal/calls' });

    // Act
    const statements = statementsOfRole(aws, 'SweeperRole');
    const statementsOff = statementsOfRole(withoutRecording, 'SweeperRole');

    // Assess
    expect(actions(statements)).toEqual(
      [
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        's3:GetObject',
        's3:ListBucket',
        's3:DeleteObject',
        's3:DeleteObject',
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ].sort(),
    );
    const send = statements.find((s) => actions([s]).includes('sqs:SendMessage'));
    expect(send?.Resource).toEqual({ 'Fn::GetAtt': [logicalId(aws.template, 'AWS::SQS::Queue', 'SnapshotsQueue'), 'Arn'] });
    const purge = statements.find((s) => s.Sid === 'PurgeDiscardedRecordings');
    expect(actions([purge as Statement])).toEqual(['s3:DeleteObject']);
    expect(JSON.stringify(purge?.Resource)).toContain(`/${DISCARD_PREFIX}/*`);
    const markers = statements.find((s) => s.Sid === 'DeleteOpenCallMarkers');
    expect(actions([markers as Statement])).toEqual(['s3:DeleteObject']);
    expect(JSON.stringify(markers?.Resource)).toContain(`/${OPEN_MARKER_PREFIX}/*`);
    expect(actions(statementsOff)).not.toContain('s3:DeleteObject');
    expect(actions(statementsOff)).not.toContain('s3:PutObject');
  });

  it('reads the database secrets of the locations it sweeps', () => {
    // Prepare / Act
    const granted = JSON.stringify(statementsOfRole(local, 'SweeperRole').filter((s) => actions([s]).includes('secretsmanager:GetSecretValue')));

    // Assess
    expect(granted).toContain('calldata/db-XyZ123');
    expect(granted).toContain('calldata/livekit-AbCdEf');
  });

  it('is left out (with a warning) when there is no LiveKit URL to ask', () => {
    // Prepare / Act
    const s = synth({ deployWorker: false });

    // Assess
    expect(resourcesOf(s.template, 'AWS::Lambda::Function').map(([id]) => id.replace(/Function[0-9A-F]{8}$/, '')).sort()).toEqual(['Persist', 'Webhook']);
    expect(resourcesOf(s.template, 'AWS::Events::Rule')).toHaveLength(0);
    Annotations.fromStack(s.stack).hasWarning('*', Match.stringLikeRegexp('sweeper is not deployed'));
  });
});

describe('outputs', () => {
  it('publish the queue URLs, bucket, webhook URL and LiveKit secret a deployment needs', () => {
    // Prepare / Act
    const outputs = Object.keys(aws.template.toJSON().Outputs);

    // Assess
    expect(outputs).toEqual(
      expect.arrayContaining(['SnapshotQueueUrl', 'RecordingQueueUrl', 'DeadLetterQueueUrl', 'RecordingDeadLetterQueueUrl', 'BucketName', 'WebhookUrl', 'LiveKitSecretArn', 'PersistFunctionName', 'SweeperFunctionName']),
    );
  });
});
