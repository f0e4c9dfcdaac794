/**
 * Persist Lambda: SQS batch of snapshots → metadata and transcription on the backends the
 * locations select. Thin on purpose: middy → decode → persistSnapshots → partial batch response.
 *
 * - A malformed message or unknown version never retries: it is parked in the dead-letter
 *   queue (or folder) at once and never fails its neighbours.
 * - A backend that is down fails only the records that needed it; SQS redelivers them later.
 */
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { getConfig, type Config } from '../config/config.ts';
import { ContractError } from '../contract/errors.ts';
import { decodeSnapshot, type Snapshot } from '../contract/snapshot.ts';
import { lambdaHandler } from '../shared/lambda.ts';
import { partialBatchResponse } from '../shared/sqs-batch.ts';
import { logger } from '../shared/logger.ts';
import { backendFor } from '../storage/select.ts';
import { PayloadError } from '../transport/errors.ts';
import { deadLetterFor } from './dead-letter.ts';
import { persistSnapshots, type PersistTargets } from './persist.ts';

/** eventSourceARN of the synthetic events the embedded default delivers in-process. */
export const EMBEDDED_SOURCE_ARN = 'arn:calldata:embedded:local:000000000000:snapshots';

async function targetsFor(config: Config): Promise<PersistTargets> {
  const options = { s3: config.s3 };
  const [metadata, transcription] = await Promise.all([
    config.saveMetadata ? backendFor(config.metadataLocation, options) : undefined,
    config.saveTranscription ? backendFor(config.transcriptionLocation, options) : undefined,
  ]);
  return { metadata, transcription };
}

function isPoison(error: unknown): boolean {
  return error instanceof ContractError || (error instanceof PayloadError && !error.retryable);
}

async function decode(record: SQSRecord, config: Config): Promise<Snapshot> {
  const snapshot = decodeSnapshot(record.body);
  if (!snapshot.conversationRef) return snapshot;
  // The S3 SDK is loaded only by the rare snapshot that carries its conversation by reference.
  const { loadConversation } = await import('../transport/payload.ts');
  const conversation = await loadConversation(config.s3, snapshot.conversationRef);
  const { conversationRef: _ref, ...rest } = snapshot;
  return { ...rest, conversation };
}

export async function persistBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const config = getConfig();
  const embedded = event.Records.length > 0 && event.Records.every((r) => r.eventSourceARN === EMBEDDED_SOURCE_ARN);
  const deadLetter = deadLetterFor(config, embedded);
  const failures = new Map<string, unknown>();

  const decoded = await Promise.all(
    event.Records.map(async (record) => {
      try {
        return { record, snapshot: await decode(record, config) };
      } catch (error) {
        if (isPoison(error) && deadLetter) {
          try {
            const where = await deadLetter.reject({ messageId: record.messageId, body: record.body, reason: String((error as Error).message) });
            logger.warn('snapshot rejected to dead letter', { messageId: record.messageId, reason: (error as Error).message, deadLetter: where });
            return undefined;
          } catch (parkError) {
            error = parkError;
          }
        }
        logger.error('snapshot could not be read', { messageId: record.messageId, error: error as Error });
        failures.set(record.messageId, error);
        return undefined;
      }
    }),
  );
  const valid = decoded.filter((d): d is { record: SQSRecord; snapshot: Snapshot } => d !== undefined);

  if (valid.length > 0) {
    try {
      const outcomes = await persistSnapshots(valid.map((v) => v.snapshot), config, await targetsFor(config));
      outcomes.forEach((outcome, i) => {
        const item = valid[i];
        if (!item) return;
        const { snapshot, record } = item;
        const fields = { messageId: record.messageId, callId: snapshot.callId, seq: snapshot.seq, kind: snapshot.kind };
        if (outcome.ok) logger.info('snapshot persisted', { ...fields, artifacts: outcome.locations });
        else {
          logger.error('snapshot not persisted; returned to queue', { ...fields, error: outcome.error as Error });
          failures.set(record.messageId, outcome.error);
        }
      });
    } catch (error) {
      // The backends could not even be opened (e.g. a bad location): every valid record retries.
      logger.error('storage unavailable; batch returned to queue', { error: error as Error });
      for (const { record } of valid) failures.set(record.messageId, error);
    }
  }

  return partialBatchResponse(event, failures, context);
}

export const handler = lambdaHandler(persistBatch);
