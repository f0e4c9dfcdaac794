/** Sends snapshots to SQS, putting oversize conversations in S3 and sending a reference. */
import { randomUUID } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Config } from '../config/config.ts';
import { encodeSnapshot, type Snapshot } from '../contract/snapshot.ts';
import { sqsClient } from '../shared/sqs-client.ts';
import { SendFailedError } from './errors.ts';
import { offloadConversation } from './payload.ts';
import type { SendReceipt, SnapshotSink } from './sink.ts';

/** Kinds the recording function acts on (start, discard, finish). */
const RECORDING_KINDS = new Set(['started', 'unanswered', 'ended']);

export class SqsSnapshotSink implements SnapshotSink {
  readonly transport = 'sqs' as const;
  private readonly config: Config;

  constructor(config: Config) {
    if (!config.queueUrl) throw new SendFailedError('CALLDATA_QUEUE_URL is not set');
    this.config = config;
  }

  /** The body to send: inline when small enough, otherwise with the conversation by reference. */
  async encode(snapshot: Snapshot): Promise<{ body: string; offloaded: boolean }> {
    const inline = encodeSnapshot(snapshot);
    if (Buffer.byteLength(inline, 'utf8') <= this.config.offloadThresholdBytes || !snapshot.conversation) {
      return { body: inline, offloaded: false };
    }
    const ref = await offloadConversation(this.config.s3, snapshot.callId, snapshot.seq, snapshot.conversation);
    const { conversation: _conversation, ...rest } = snapshot;
    return { body: encodeSnapshot({ ...rest, conversationRef: ref }), offloaded: true };
  }

  async send(snapshot: Snapshot): Promise<SendReceipt> {
    const { body, offloaded } = await this.encode(snapshot);
    const queues = [this.config.queueUrl as string];
    if (this.config.recordingQueueUrl && this.config.callRecording && RECORDING_KINDS.has(snapshot.kind)) {
      queues.push(this.config.recordingQueueUrl);
    }
    let messageId = '';
    try {
      for (const QueueUrl of queues) {
        const response = await sqsClient().send(
          new SendMessageCommand({
            QueueUrl,
            MessageBody: body,
            MessageAttributes: {
              callId: { DataType: 'String', StringValue: snapshot.callId },
              kind: { DataType: 'String', StringValue: snapshot.kind },
            },
          }),
        );
        messageId ||= response.MessageId ?? randomUUID();
      }
    } catch (cause) {
      throw new SendFailedError('could not send the snapshot to SQS', cause);
    }
    return { transport: 'sqs', messageId, bytes: Buffer.byteLength(body, 'utf8'), offloaded };
  }
}
