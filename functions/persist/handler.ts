/**
 * Persist Lambda: SQS batch of fact messages → one merge per call on every configured location
 * → recording commands. Thin on purpose: decode → pipeline.persist (functions/wiring.ts) →
 * partial batch response.
 *
 * - A malformed message or an unknown version never retries: it is parked in the dead-letter
 *   queue (or folder) at once and never fails its neighbours.
 * - A backend that is down fails only the calls that needed it; SQS redelivers their messages,
 *   and merging them again is harmless.
 */
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { getConfig, type Config } from '../config/config.ts';
import { ContractError } from '../contract/errors.ts';
import { decodeMessage, type FactMessage } from '../contract/facts.ts';
import { lambdaHandler } from '../shared/lambda.ts';
import { logger } from '../shared/logger.ts';
import { preloadStorage } from '../shared/preload.ts';
import { partialBatchResponse } from '../shared/sqs-batch.ts';
import { PayloadError } from '../transport/errors.ts';
import { pipelineFor } from '../wiring.ts';
import { deadLetterFor } from './dead-letter.ts';

function isPoison(error: unknown): boolean {
  return error instanceof ContractError || (error instanceof PayloadError && !error.retryable);
}

async function decode(record: SQSRecord, config: Config): Promise<FactMessage> {
  const message = decodeMessage(record.body);
  if (!message.conversationRef) return message;
  // The S3 SDK is loaded only by the rare message that carries its conversation by reference.
  const { loadConversation } = await import('../transport/payload.ts');
  const conversation = await loadConversation(config.s3, message.conversationRef);
  const { conversationRef: _ref, ...rest } = message;
  return { ...rest, facts: { ...rest.facts, conversation } };
}

export async function persistBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const config = getConfig();
  const deadLetter = deadLetterFor(config);
  const failures = new Map<string, unknown>();

  const decoded = await Promise.all(
    event.Records.map(async (record) => {
      try {
        return { record, message: await decode(record, config) };
      } catch (error) {
        if (isPoison(error) && deadLetter) {
          try {
            const where = await deadLetter.reject({ messageId: record.messageId, body: record.body, reason: String((error as Error).message) });
            logger.warn('message rejected to dead letter', { messageId: record.messageId, reason: (error as Error).message, deadLetter: where });
            return undefined;
          } catch (parkError) {
            error = parkError;
          }
        }
        logger.error('message could not be read', { messageId: record.messageId, error: error as Error });
        failures.set(record.messageId, error);
        return undefined;
      }
    }),
  );
  const valid = decoded.filter((d): d is { record: SQSRecord; message: FactMessage } => d !== undefined);

  if (valid.length > 0) {
    try {
      const outcomes = await pipelineFor(config).persist(valid.map((v) => v.message));
      for (const { record, message } of valid) {
        const outcome = outcomes.get(message.callId);
        if (outcome?.error !== undefined) {
          logger.error('message not persisted; returned to queue', { messageId: record.messageId, callId: message.callId, writer: message.writer, seq: message.seq, kind: message.kind, error: outcome.error as Error });
          failures.set(record.messageId, outcome.error);
        }
      }
      // One line per batch at INFO; per-message detail only when debugging (it costs as much as a write's CPU).
      logger.info('batch persisted', { messages: valid.length, calls: outcomes.size, returned: failures.size });
      if (logger.getLevelName() === 'DEBUG') {
        for (const { record, message } of valid) {
          logger.debug('message persisted', { messageId: record.messageId, callId: message.callId, writer: message.writer, seq: message.seq, kind: message.kind, stored: outcomes.get(message.callId)?.locations });
        }
      }
    } catch (error) {
      // The backends could not even be opened (e.g. a bad location): every valid record retries.
      logger.error('storage unavailable; batch returned to queue', { error: error as Error });
      for (const { record } of valid) failures.set(record.messageId, error);
    }
  }

  return partialBatchResponse(event, failures, context);
}

// Init loads the driver the locations select, so the first invocation does not wait for it.
await preloadStorage();

export const handler = lambdaHandler(persistBatch);
