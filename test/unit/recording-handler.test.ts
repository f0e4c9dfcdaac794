/**
 * The recording queue handler: decoding (v2 commands, and v1 snapshots queued before the
 * upgrade), per-call ordering, and which failures go back to the queue. The step is faked:
 * what it does is recording-recorder.test.ts's and the integration tests' subject.
 */
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { encodeRecordingCommand, MESSAGE_VERSION, type RecordingCommand } from '../../functions/contract/facts.ts';
import { RecordingError, RecordingStateError } from '../../functions/recording/errors.ts';
import { recordingBatch } from '../../functions/recording/handler.ts';
import type { CommandResult } from '../../functions/recording/recorder.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const context = { functionName: 'recording', awsRequestId: 'r', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

function record(body: string, id: string): SQSRecord {
  return {
    messageId: id,
    receiptHandle: id,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 's', ApproximateFirstReceiveTimestamp: '0' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:recording',
    awsRegion: 'us-east-1',
  };
}

function command(callId: string, action: RecordingCommand['action'], issuedAtMs: number): string {
  return encodeRecordingCommand({ v: MESSAGE_VERSION, type: 'recording', action, callId, roomName: 'sip-room-1', key: `k/${callId}.ogg`, issuedAtMs });
}

function fakeStep(fail: (c: RecordingCommand) => unknown = () => undefined) {
  const seen: RecordingCommand[] = [];
  return {
    seen,
    step: {
      run: async (c: RecordingCommand): Promise<CommandResult> => {
        seen.push(c);
        const error = fail(c);
        if (error) throw error;
        return 'started';
      },
    },
  };
}

describe('recording queue handler', () => {
  it('runs the commands of one call in the order they were issued, even when delivered out of order', async () => {
    // Prepare
    const event: SQSEvent = {
      Records: [record(command('RM_a', 'discard', 20), 'm2'), record(command('RM_b', 'start', 5), 'm3'), record(command('RM_a', 'start', 10), 'm1'), record(command('RM_a', 'restore', 30), 'm4')],
    };
    const { step, seen } = fakeStep();
    // Act
    const response = await recordingBatch(event, context, step);
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(seen.filter((c) => c.callId === 'RM_a').map((c) => c.action)).toEqual(['start', 'discard', 'restore']);
    expect(seen.map((c) => c.callId)).toContain('RM_b');
  });

  it('reads version-1 snapshots queued before the upgrade as the commands they meant', async () => {
    // Prepare
    const snapshot = (kind: 'started' | 'progress' | 'ended' | 'unanswered', seq: number) =>
      JSON.stringify(buildSnapshot({ callId: 'RM_v1', kind, seq, recordingKey: 'sip-room-1/t/call.ogg' }));
    const { step, seen } = fakeStep();
    // Act
    const response = await recordingBatch({ Records: [record(snapshot('started', 1), 'a'), record(snapshot('progress', 2), 'b'), record(snapshot('unanswered', 3), 'c')] }, context, step);
    // Assess: progress needed nothing
    expect(response.batchItemFailures).toEqual([]);
    expect(seen.map((c) => [c.action, c.key, c.bucket])).toEqual([
      ['start', 'sip-room-1/t/call.ogg', 'recordings'],
      ['discard', 'sip-room-1/t/call.ogg', 'recordings'],
    ]);
  });

  it('drops a malformed message instead of retrying it forever', async () => {
    const { step, seen } = fakeStep();
    const response = await recordingBatch({ Records: [record('{"not":"a command"}', 'bad'), record('nope', 'worse'), record('{"v":9}', 'future')] }, context, step);
    expect(response.batchItemFailures).toEqual([]);
    expect(seen).toEqual([]);
  });

  it('returns only the commands that may succeed later to the queue', async () => {
    // Prepare: S3 down for one call, a permanent failure for another
    const { step } = fakeStep((c) =>
      c.callId === 'RM_s3' ? new RecordingStateError('S3 down') : c.callId === 'RM_bad' ? new RecordingError('bad request', { retryable: false }) : undefined,
    );
    // Act
    const response = await recordingBatch({ Records: [record(command('RM_s3', 'discard', 1), 'm1'), record(command('RM_bad', 'start', 1), 'm2'), record(command('RM_ok', 'finish', 1), 'm3')] }, context, step);
    // Assess
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m1']);
  });

  it('runs a call’s later command even when an earlier one must be retried (commands are order-independent)', async () => {
    const { step, seen } = fakeStep((c) => (c.action === 'start' ? new RecordingStateError('S3 down') : undefined));
    const response = await recordingBatch({ Records: [record(command('RM_a', 'start', 1), 'm1'), record(command('RM_a', 'discard', 2), 'm2')] }, context, step);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m1']);
    expect(seen.map((c) => c.action)).toEqual(['start', 'discard']);
  });
});
