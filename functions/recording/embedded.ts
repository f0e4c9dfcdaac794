/**
 * The recording function on the embedded default (no queue): the in-process sink hands each
 * started / unanswered / ended snapshot to it after the persist handler. Egress requests can
 * take tens of seconds (LiveKit answers 503 only after ~23 s when no egress service runs), so
 * the work runs in the background and never holds back the next snapshot; the worker awaits
 * `drainEmbeddedRecording()` at shutdown so a discard is not cut short.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { logger } from '../shared/logger.ts';

const RECORDING_KINDS = new Set(['started', 'unanswered', 'ended']);
const pending = new Set<Promise<unknown>>();

export type EmbeddedConsumer = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

/** The consumer registered by transport/embedded-sink.ts when CALL_RECORDING=true. */
export function embeddedRecordingConsumer(): EmbeddedConsumer {
  return async (event, context) => {
    const relevant = event.Records.filter((record) => {
      const kind = /"kind":"([a-z]+)"/.exec(record.body)?.[1];
      return kind !== undefined && RECORDING_KINDS.has(kind);
    });
    if (relevant.length === 0) return { batchItemFailures: [] };
    const work = (async () => {
      const { recordingBatch } = await import('./handler.ts');
      // Retries inside the recorder are bounded; what is left (e.g. storage down) is logged.
      for (let attempt = 1; attempt <= 3; attempt++) {
        const response = await recordingBatch({ Records: relevant }, context);
        if (response.batchItemFailures.length === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
      logger.error('embedded recording step gave up after retries', { messages: relevant.length });
    })().catch((error: unknown) => logger.error('embedded recording step failed', { error: error as Error }));
    pending.add(work);
    void work.finally(() => pending.delete(work));
    return { batchItemFailures: [] };
  };
}

/** Waits (at most `timeoutMs`) for background recording work started in this process. */
export async function drainEmbeddedRecording(timeoutMs: number): Promise<boolean> {
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

export function embeddedRecordingPending(): number {
  return pending.size;
}
