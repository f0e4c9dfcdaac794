/**
 * Does what Lambda's SQS event source mapping does, against a real queue: receive a batch,
 * hand it to the handler as an SQSEvent, delete only the records the handler did not report
 * as failed. Failed records become visible again after the visibility timeout.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { lambdaContext } from './lambda-context.ts';

export type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export function testContext(name = 'calldata-test'): Context {
  return lambdaContext(name);
}

export interface PollResult {
  batches: number;
  delivered: number;
  failed: number;
}

/** The SQS event Lambda's event source mapping hands a function for these received messages. */
export function sqsEventOf(messages: readonly Message[], source = 'test'): SQSEvent {
  return {
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
      eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${source}`,
      awsRegion: 'us-east-1',
    })),
  };
}

/** Hands one received batch to the handler and deletes the records it did not report as failed. */
export async function deliver(sqs: SQSClient, queueUrl: string, handler: Handler, messages: readonly Message[], source = 'test'): Promise<{ delivered: number; failed: number }> {
  const response = await handler(sqsEventOf(messages, source), testContext());
  const failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
  const done = messages.filter((m) => !failed.has(m.MessageId ?? ''));
  if (done.length > 0) {
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })) }));
  }
  return { delivered: messages.length - failed.size, failed: failed.size };
}

/** One receive (long poll) of up to ten messages. */
export async function receive(sqs: SQSClient, queueUrl: string, waitSeconds = 1): Promise<Message[]> {
  const received = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }),
  );
  return received.Messages ?? [];
}

/** Polls until `emptyRounds` consecutive empty receives (or `maxBatches`). */
export async function pollOnce(sqs: SQSClient, queueUrl: string, handler: Handler, options: { emptyRounds?: number; maxBatches?: number; waitSeconds?: number } = {}): Promise<PollResult> {
  const result: PollResult = { batches: 0, delivered: 0, failed: 0 };
  let empty = 0;
  while (empty < (options.emptyRounds ?? 1) && result.batches < (options.maxBatches ?? 100)) {
    const messages = await receive(sqs, queueUrl, options.waitSeconds ?? 1);
    if (messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    result.batches++;
    const { delivered, failed } = await deliver(sqs, queueUrl, handler, messages);
    result.delivered += delivered;
    result.failed += failed;
  }
  return result;
}
