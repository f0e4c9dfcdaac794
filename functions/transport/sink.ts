/**
 * How messages move: fact messages to the persist step (SQS when CALLDATA_QUEUE_URL is set,
 * otherwise in-process: the embedded default) and recording commands to the recording step.
 * Either way a sender gets a receipt only once the message is durably accepted, and an error
 * it can retry otherwise. Transport never imports a handler: the in-process consumers are
 * handed in by functions/wiring.ts.
 */
import type { FactMessage, RecordingCommand } from '../contract/facts.ts';

export interface SendReceipt {
  transport: 'sqs' | 'embedded';
  messageId: string;
  /** Bytes of the message body as sent. */
  bytes: number;
  /** True when the conversation travelled by reference to S3. */
  offloaded: boolean;
}

export interface FactSink {
  readonly transport: 'sqs' | 'embedded';
  send(message: FactMessage): Promise<SendReceipt>;
}

export interface CommandSink {
  send(commands: readonly RecordingCommand[]): Promise<void>;
}

/** Consumes messages in-process; throws (retryable) when they are not stored. */
export type FactConsumer = (messages: FactMessage[]) => Promise<void>;
export type CommandConsumer = (commands: RecordingCommand[]) => Promise<void>;
