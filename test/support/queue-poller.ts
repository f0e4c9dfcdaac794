/**
 * Does what Lambda's SQS event source mapping does, against a real queue: receive a batch,
 * hand it to the handler as an SQSEvent, delete only the records the handler did not report
 * as failed. Failed records become visible again after the visibility timeout.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { lambdaContext } from './lambda-context.ts';

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export function testContext(name = 'calldata-test'): Context {
  return lambdaContext(name);
}

export interface PollResult {
  batches: number;
  delivered: number;
  failed: number;
}

/** Polls until `rounds` consecutive empty receives (or `maxBatches`). */
export async function pollOnce(sqs: SQSClient, queueUrl: string, handler: Handler, options: { emptyRounds?: number; maxBatches?: number; waitSeconds?: number } = {}): Promise<PollResult> {
  const result: PollResult = { batches: 0, delivered: 0, failed: 0 };
  let empty = 0;
  while (empty < (options.emptyRounds ?? 1) && result.batches < (options.maxBatches ?? 100)) {
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: options.waitSeconds ?? 1, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    result.batches++;
    const event: SQSEvent = {
      Records: messages.map((m) => ({
        messageId: m.MessageId ?? '',
        receiptHandle: m.ReceiptHandle ?? '',
        body: m.Body ?? '',
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: m.Attributes?.SentTimestamp ?? '0',
          SenderId: m.Attributes?.SenderId ?? '',
          ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? '0',
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody ?? '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:test',
        awsRegion: 'us-east-1',
      })),
    };
    const response = await handler(event, testContext());
    const failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    result.delivered += messages.length - failed.size;
    result.failed += failed.size;
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ''));
    if (done.length > 0) {
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })) }));
    }
  }
  return result;
}
