/**
 * The embedded default: with no queue, fact messages are handed to the persist step in-process
 * (the sender waits until they are stored), and recording commands run in the background, since
 * egress requests can take tens of seconds and must never hold back the call's next message.
 * `drainEmbedded` lets a shutting-down worker wait for background work.
 */
import { randomUUID } from 'node:crypto';
import { encodeMessage, type FactMessage, type RecordingCommand } from '../contract/facts.ts';
import { logger } from '../shared/logger.ts';
import { SendFailedError } from './errors.ts';
import type { CommandConsumer, CommandSink, FactConsumer, FactSink, SendReceipt } from './sink.ts';

const pending = new Set<Promise<unknown>>();

export class EmbeddedFactSink implements FactSink {
  readonly transport = 'embedded' as const;
  private readonly consume: FactConsumer;

  constructor(consume: FactConsumer) {
    this.consume = consume;
  }

  async send(message: FactMessage): Promise<SendReceipt> {
    // Validated and copied exactly as the queue would carry it.
    const body = encodeMessage(message);
    try {
      await this.consume([JSON.parse(body) as FactMessage]);
    } catch (cause) {
      throw new SendFailedError('the in-process pipeline failed', cause);
    }
    return { transport: 'embedded', messageId: randomUUID(), bytes: Buffer.byteLength(body, 'utf8'), offloaded: false };
  }
}

/** Attempts per command batch in the background before it is logged as given up. */
const COMMAND_ATTEMPTS = 3;

export class EmbeddedCommandSink implements CommandSink {
  private readonly consume: CommandConsumer;

  constructor(consume: CommandConsumer) {
    this.consume = consume;
  }

  async send(commands: readonly RecordingCommand[]): Promise<void> {
    if (commands.length === 0) return;
    const work = (async () => {
      for (let attempt = 1; attempt <= COMMAND_ATTEMPTS; attempt++) {
        try {
          await this.consume([...commands]);
          return;
        } catch (error) {
          if (attempt === COMMAND_ATTEMPTS) throw error;
          await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
        }
      }
    })().catch((error: unknown) => logger.error('embedded recording step gave up after retries', { commands: commands.length, error: error as Error }));
    pending.add(work);
    void work.finally(() => pending.delete(work));
  }
}

/** Waits (at most `timeoutMs`) for background work started in this process. True when none is left. */
export async function drainEmbedded(timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pending.size > 0) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...pending]), new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
    clearTimeout(timer);
  }
  return true;
}

export function embeddedPending(): number {
  return pending.size;
}
