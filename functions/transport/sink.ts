/**
 * How snapshots leave the worker: to SQS when CALLDATA_QUEUE_URL is set, otherwise to the
 * same handler code in-process (the embedded default). Either way the caller gets a receipt
 * only once the snapshot is durably accepted, and an error it can retry otherwise.
 */
import type { Config } from '../config/config.ts';
import type { Snapshot } from '../contract/snapshot.ts';

export interface SendReceipt {
  transport: 'sqs' | 'embedded';
  messageId: string;
  /** Bytes of the message body as sent. */
  bytes: number;
  /** True when the conversation travelled by reference to S3. */
  offloaded: boolean;
}

export interface SnapshotSink {
  readonly transport: 'sqs' | 'embedded';
  send(snapshot: Snapshot): Promise<SendReceipt>;
}

export async function createSnapshotSink(config: Config): Promise<SnapshotSink> {
  if (config.queueUrl) {
    const { SqsSnapshotSink } = await import('./sqs-sink.ts');
    return new SqsSnapshotSink(config);
  }
  const { EmbeddedSnapshotSink } = await import('./embedded-sink.ts');
  return new EmbeddedSnapshotSink(config);
}
