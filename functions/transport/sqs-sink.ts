/** Sends fact messages and recording commands to SQS; oversize conversations go to S3 and travel by reference. */
import { randomUUID } from 'node:crypto';
import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { S3Settings } from '../config/config.ts';
import { encodeMessage, encodeRecordingCommand, type FactMessage, type RecordingCommand } from '../contract/facts.ts';
import { sqsClient } from '../shared/sqs-client.ts';
import { SendFailedError } from './errors.ts';
import { offloadConversation } from './payload.ts';
import type { CommandSink, FactSink, SendReceipt } from './sink.ts';

export interface SqsFactSinkOptions {
  queueUrl: string;
  s3: S3Settings;
}

/** Bodies above this carry their conversation by reference to S3 (a quarter of SQS's 1 MiB message limit). */
export const OFFLOAD_THRESHOLD_BYTES = 256 * 1024;

export class SqsFactSink implements FactSink {
  readonly transport = 'sqs' as const;
  private readonly options: SqsFactSinkOptions;

  constructor(options: SqsFactSinkOptions) {
    this.options = options;
  }

  /** The body to send: inline when small enough, otherwise with the conversation by reference. */
  async encode(message: FactMessage): Promise<{ body: string; offloaded: boolean }> {
    const inline = encodeMessage(message);
    const conversation = message.facts.conversation;
    if (Buffer.byteLength(inline, 'utf8') <= OFFLOAD_THRESHOLD_BYTES || !conversation) return { body: inline, offloaded: false };
    const ref = await offloadConversation(this.options.s3, message.callId, `${message.writer}-${message.seq}`, conversation);
    const { conversation: _conversation, ...facts } = message.facts;
    return { body: encodeMessage({ ...message, facts, conversationRef: ref }), offloaded: true };
  }

  async send(message: FactMessage): Promise<SendReceipt> {
    const { body, offloaded } = await this.encode(message);
    try {
      const response = await sqsClient().send(
        new SendMessageCommand({
          QueueUrl: this.options.queueUrl,
          MessageBody: body,
          MessageAttributes: {
            callId: { DataType: 'String', StringValue: message.callId },
            kind: { DataType: 'String', StringValue: message.kind },
          },
        }),
      );
      return { transport: 'sqs', messageId: response.MessageId ?? randomUUID(), bytes: Buffer.byteLength(body, 'utf8'), offloaded };
    } catch (cause) {
      throw new SendFailedError('could not send the message to SQS', cause);
    }
  }
}

/** SQS takes at most ten messages per SendMessageBatch. */
const SQS_BATCH = 10;

export class SqsCommandSink implements CommandSink {
  private readonly queueUrl: string;

  constructor(queueUrl: string) {
    this.queueUrl = queueUrl;
  }

  async send(commands: readonly RecordingCommand[]): Promise<void> {
    for (let i = 0; i < commands.length; i += SQS_BATCH) {
      const group = commands.slice(i, i + SQS_BATCH);
      let response;
      try {
        response = await sqsClient().send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: group.map((command, j) => ({ Id: String(j), MessageBody: encodeRecordingCommand(command) })),
          }),
        );
      } catch (cause) {
        throw new SendFailedError('could not send recording commands to SQS', cause);
      }
      if ((response.Failed ?? []).length > 0) throw new SendFailedError(`SQS refused ${response.Failed?.length} recording commands`);
    }
  }
}
