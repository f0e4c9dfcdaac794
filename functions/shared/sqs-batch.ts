/** The SQS partial batch response, shared by the queue-fed handlers (not loaded by the webhook). */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

const processor = new BatchProcessor(EventType.SQS);

/**
 * The batch response that returns exactly the records in `failures` to the queue. Never
 * throws for a fully failed batch: SQS redelivers each reported record either way.
 */
export function partialBatchResponse(event: SQSEvent, failures: ReadonlyMap<string, unknown>, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(
    event,
    async (record: SQSRecord) => {
      if (failures.has(record.messageId)) throw failures.get(record.messageId);
    },
    processor,
    { context, throwOnFullBatchFailure: false },
  );
}
