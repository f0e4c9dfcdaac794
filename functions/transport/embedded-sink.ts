/**
 * The embedded default: with no queue, each snapshot is handed to the same Lambda handler
 * code in-process as a one-record SQS event, so one machine runs the whole pipeline.
 */
import { randomUUID } from 'node:crypto';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Config } from '../config/config.ts';
import { encodeSnapshot, type Snapshot } from '../contract/snapshot.ts';
import { SendFailedError } from './errors.ts';
import type { SendReceipt, SnapshotSink } from './sink.ts';

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

/** The handlers that would sit behind the queues in AWS, in delivery order. */
async function consumers(config: Config): Promise<SqsHandler[]> {
  const { handler } = await import('../persist/handler.ts');
  const list: SqsHandler[] = [handler as unknown as SqsHandler];
  if (config.callRecording) {
    // Runs after persist, so the recording step finds the worker's final snapshot stored.
    const { embeddedRecordingConsumer } = await import('../recording/embedded.ts');
    list.push(embeddedRecordingConsumer());
  }
  return list;
}

/** A Lambda context for in-process invocations (also what the tests hand the handlers). */
export function lambdaContext(name: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:calldata:embedded:local:000000000000:function:${name}`,
    memoryLimitInMB: '0',
    awsRequestId: randomUUID(),
    logGroupName: 'embedded',
    logStreamName: 'embedded',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export class EmbeddedSnapshotSink implements SnapshotSink {
  readonly transport = 'embedded' as const;
  private readonly config: Config;
  private handlers: Promise<SqsHandler[]> | undefined;

  constructor(config: Config) {
    this.config = config;
  }

  async send(snapshot: Snapshot): Promise<SendReceipt> {
    const body = encodeSnapshot(snapshot);
    const messageId = randomUUID();
    const { EMBEDDED_SOURCE_ARN } = await import('../persist/handler.ts');
    const event: SQSEvent = {
      Records: [
        {
          messageId,
          receiptHandle: messageId,
          body,
          attributes: {
            ApproximateReceiveCount: '1',
            SentTimestamp: String(Date.now()),
            SenderId: 'embedded',
            ApproximateFirstReceiveTimestamp: String(Date.now()),
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: EMBEDDED_SOURCE_ARN,
          awsRegion: 'local',
        },
      ],
    };
    this.handlers ??= consumers(this.config);
    for (const handler of await this.handlers) {
      const response = await handler(event, lambdaContext('calldata-embedded'));
      const failed = response?.batchItemFailures ?? [];
      if (failed.length > 0) throw new SendFailedError('the in-process pipeline could not store the snapshot yet; it will be retried');
    }
    return { transport: 'embedded', messageId, bytes: Buffer.byteLength(body, 'utf8'), offloaded: false };
  }
}
