/**
 * Recording Lambda: SQS batch of started / unanswered / ended snapshots (the sink sends those
 * kinds to CALLDATA_RECORDING_QUEUE_URL) → start, discard or finish the call's egress.
 *
 * - Snapshots of one call are handled in sequence order; different calls concurrently.
 * - A malformed message is dropped here: the same body went to the snapshot queue, whose
 *   persist function parks it in the dead-letter queue.
 * - Egress failures are retried inside (bounded) and recorded in the call's status; only
 *   transient storage problems and "final snapshot not stored yet" return a record to the queue.
 */
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { getConfig, type Config } from '../config/config.ts';
import { ContractError } from '../contract/errors.ts';
import { decodeSnapshot, type Snapshot } from '../contract/snapshot.ts';
import { lambdaHandler } from '../shared/lambda.ts';
import { partialBatchResponse } from '../shared/sqs-batch.ts';
import { logger } from '../shared/logger.ts';
import { backendFor } from '../storage/select.ts';
import { createEgressApi, S3RecordingObjects, type EgressApi } from './egress.ts';
import { isRetryable, Recorder } from './recorder.ts';
import { getRecordingSettings, type RecordingSettings } from './settings.ts';
import { S3RecordingStateStore } from './state.ts';

/** The production wiring of the recorder for a configuration. */
export function createRecorder(config: Config, settings: RecordingSettings = getRecordingSettings()): Recorder {
  let egress: EgressApi | undefined;
  return new Recorder({
    config,
    settings,
    egress: () => (egress ??= createEgressApi(settings)),
    state: new S3RecordingStateStore(config.s3, settings.statePrefix),
    objects: new S3RecordingObjects(config.s3),
    metadata: async () => (config.saveMetadata ? backendFor(config.metadataLocation, { s3: config.s3 }) : undefined),
  });
}

let cachedRecorder: Recorder | undefined;
function recorder(): Recorder {
  cachedRecorder ??= createRecorder(getConfig());
  return cachedRecorder;
}

/** For tests that change the environment between cases. */
export function resetRecorderForTests(): void {
  cachedRecorder = undefined;
}

interface Decoded {
  record: SQSRecord;
  snapshot: Snapshot;
}

export async function recordingBatch(event: SQSEvent, context: Context, target: Recorder = recorder()): Promise<SQSBatchResponse> {
  const failures = new Map<string, unknown>();
  const byCall = new Map<string, Decoded[]>();
  for (const record of event.Records) {
    try {
      const snapshot = decodeSnapshot(record.body);
      const list = byCall.get(snapshot.callId) ?? [];
      list.push({ record, snapshot });
      byCall.set(snapshot.callId, list);
    } catch (error) {
      if (error instanceof ContractError) {
        logger.warn('recording message dropped: not a valid snapshot', { messageId: record.messageId, reason: error.message });
      } else {
        failures.set(record.messageId, error);
      }
    }
  }

  await Promise.all(
    [...byCall.values()].map(async (items) => {
      items.sort((a, b) => a.snapshot.seq - b.snapshot.seq);
      let blocked: unknown;
      for (const { record, snapshot } of items) {
        // A later snapshot of a call waits for an earlier one that must be retried.
        if (blocked) {
          failures.set(record.messageId, blocked);
          continue;
        }
        try {
          await target.onSnapshot(snapshot);
        } catch (error) {
          const fields = { messageId: record.messageId, callId: snapshot.callId, kind: snapshot.kind, error: (error as Error).message };
          if (isRetryable(error)) {
            logger.warn('recording step returned to queue', fields);
            failures.set(record.messageId, error);
            blocked = error;
          } else {
            logger.error('recording step failed and will not be retried', fields);
          }
        }
      }
    }),
  );

  return partialBatchResponse(event, failures, context);
}

export const handler = lambdaHandler((event: SQSEvent, context: Context) => recordingBatch(event, context));
