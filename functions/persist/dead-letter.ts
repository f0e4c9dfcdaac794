/**
 * Where poison messages go without a retry loop: the dead-letter queue when one is
 * configured, a local folder on the embedded default.
 */
import { mkdir, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.ts';

export interface RejectedMessage {
  messageId: string;
  body: string;
  reason: string;
}

export interface DeadLetter {
  /** Resolves once the message is durably parked; throws if it could not be (the caller retries). */
  reject(message: RejectedMessage): Promise<string>;
}

class SqsDeadLetter implements DeadLetter {
  private readonly queueUrl: string;
  constructor(queueUrl: string) {
    this.queueUrl = queueUrl;
  }
  async reject(message: RejectedMessage): Promise<string> {
    // Loaded on first use: most invocations never reject anything.
    const [{ SendMessageCommand }, { sqsClient }] = await Promise.all([import('@aws-sdk/client-sqs'), import('../shared/sqs-client.ts')]);
    await sqsClient().send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: message.body.length > 0 ? message.body : '(empty)',
        MessageAttributes: {
          reason: { DataType: 'String', StringValue: message.reason.slice(0, 1_000) },
          sourceMessageId: { DataType: 'String', StringValue: message.messageId },
        },
      }),
    );
    return this.queueUrl;
  }
}

class FolderDeadLetter implements DeadLetter {
  private readonly folder: string;
  constructor(folder: string) {
    this.folder = folder;
  }
  async reject(message: RejectedMessage): Promise<string> {
    await mkdir(this.folder, { recursive: true });
    const safeId = message.messageId.replace(/[^A-Za-z0-9_-]/g, '_');
    const file = join(this.folder, `${Date.now()}-${safeId}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify({ reason: message.reason, messageId: message.messageId, body: message.body }));
    await rename(`${file}.tmp`, file);
    return file;
  }
}

/**
 * With a queue but no explicit dead-letter URL, poison messages are reported as failures and
 * reach the dead-letter queue through the queue's redrive policy instead. Without a queue (the
 * embedded default, the CLI) they go to a folder.
 */
export function deadLetterFor(config: Pick<Config, 'queueUrl' | 'deadLetterQueueUrl' | 'deadLetterDir'>): DeadLetter | undefined {
  if (config.deadLetterQueueUrl) return new SqsDeadLetter(config.deadLetterQueueUrl);
  if (!config.queueUrl) return new FolderDeadLetter(config.deadLetterDir);
  return undefined;
}
