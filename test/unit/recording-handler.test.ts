import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { encodeSnapshot, type Snapshot } from '../../functions/contract/snapshot.ts';
import { recordingBatch } from '../../functions/recording/handler.ts';
import { NotPersistedYetError, RecordingError } from '../../functions/recording/errors.ts';
import type { Recorder } from '../../functions/recording/recorder.ts';
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

function fakeRecorder(fail: (s: Snapshot) => unknown = () => undefined) {
  const seen: string[] = [];
  const recorder = {
    onSnapshot: async (snapshot: Snapshot) => {
      seen.push(`${snapshot.callId}:${snapshot.kind}`);
      const error = fail(snapshot);
      if (error) throw error;
    },
  } as unknown as Recorder;
  return { recorder, seen };
}

describe('recording queue handler', () => {
  it('handles the snapshots of one call in sequence order even when delivered out of order', async () => {
    // Prepare
    const started = buildSnapshot({ callId: 'RM_a', kind: 'started', seq: 1, recordingKey: 'k/x.ogg' });
    const unanswered = buildSnapshot({ callId: 'RM_a', kind: 'unanswered', seq: 2, recordingKey: 'k/x.ogg' });
    const other = buildSnapshot({ callId: 'RM_b', kind: 'started', seq: 1, recordingKey: 'k/y.ogg' });
    const event: SQSEvent = { Records: [record(encodeSnapshot(unanswered), 'm2'), record(encodeSnapshot(other), 'm3'), record(encodeSnapshot(started), 'm1')] };
    const { recorder, seen } = fakeRecorder();
    // Act
    const response = await recordingBatch(event, context, recorder);
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(seen.filter((s) => s.startsWith('RM_a'))).toEqual(['RM_a:started', 'RM_a:unanswered']);
    expect(seen).toContain('RM_b:started');
  });

  it('drops a malformed message instead of retrying it forever', async () => {
    const { recorder, seen } = fakeRecorder();
    const response = await recordingBatch({ Records: [record('{"not":"a snapshot"}', 'bad'), record('nope', 'worse')] }, context, recorder);
    expect(response.batchItemFailures).toEqual([]);
    expect(seen).toEqual([]);
  });

  it('returns a retryable failure to the queue and holds back the call’s later snapshots', async () => {
    const started = buildSnapshot({ callId: 'RM_a', kind: 'started', seq: 1, recordingKey: 'k/x.ogg' });
    const ended = buildSnapshot({ callId: 'RM_a', kind: 'ended', seq: 2, recordingKey: 'k/x.ogg' });
    const { recorder, seen } = fakeRecorder((s) => (s.kind === 'started' ? new NotPersistedYetError('later') : undefined));
    const response = await recordingBatch({ Records: [record(encodeSnapshot(started), 'm1'), record(encodeSnapshot(ended), 'm2')] }, context, recorder);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m1', 'm2']);
    expect(seen).toEqual(['RM_a:started']);
  });

  it('acknowledges a failure that retrying cannot fix', async () => {
    const started = buildSnapshot({ callId: 'RM_a', kind: 'started', seq: 1, recordingKey: 'k/x.ogg' });
    const { recorder } = fakeRecorder(() => new RecordingError('bad request', { retryable: false }));
    const response = await recordingBatch({ Records: [record(encodeSnapshot(started), 'm1')] }, context, recorder);
    expect(response.batchItemFailures).toEqual([]);
  });
});
