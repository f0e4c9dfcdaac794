/**
 * One sweep (the decisions are in functions/domain/sweep.ts):
 *
 *   1. the primary location lists the calls without an outcome whose last fact is older than
 *      CALLDATA_SWEEP_AFTER_MS;
 *   2. LiveKit says which of their rooms still exist (RoomServiceClient.listRooms, by name);
 *   3. each call whose room is gone gets the sweeper's closing fact message through the
 *      pipeline's fact sink (the persist queue, or the embedded persist step), so it is merged
 *      and stored like every other fact and the recording plan sees it too;
 *   4. with CALL_RECORDING on, discarded recordings held longer than DISCARD_HOLD_MS are purged.
 *
 * Nothing is closed when LiveKit cannot be asked: a room that may still exist keeps its call open.
 */
import { closingMessage, planSweep, quietBound, roomQuery, type LiveRoom } from '../domain/sweep.ts';
import { logger } from '../shared/logger.ts';
import type { OpenCall } from '../storage/backend.ts';
import type { Pipeline } from '../wiring.ts';
import { CallDataError, isRetryable } from '../errors.ts';

/** What the sweep needs of LiveKit's RoomServiceClient (functions/shared/livekit.ts makes the real one). */
export interface RoomLister {
  listRooms(names?: string[]): Promise<LiveRoom[]>;
}

export interface SweepOptions {
  pipeline: Pipeline;
  /** Undefined skips closing (no LiveKit to ask); the purge still runs. */
  rooms: RoomLister | undefined;
  /** Purges expired discarded recordings; returns how many it deleted. */
  purge?: (nowMs: number) => Promise<number>;
  now?: () => number;
  /** Most open calls looked at per sweep (oldest first). */
  limit?: number;
}

export interface SweepReport {
  /** Open calls quiet longer than the bound. */
  open: number;
  closed: string[];
  /** Open calls whose room still exists. */
  kept: number;
  failed: { callId: string; error: string }[];
  purged: number;
  purgeError?: string;
  /** Why closing was skipped, when it was. */
  skipped?: string;
}

/** Calls looked at per sweep; the rest wait for the next one (the oldest go first). */
export const SWEEP_LIMIT = 500;
/** Room names per ListRooms request. */
const NAMES_PER_REQUEST = 50;
/** Closing messages sent at once. */
const SEND_CONCURRENCY = 8;

/** A sweep that could not run at all (storage or LiveKit unavailable). */
export class SweepError extends CallDataError {
  constructor(message: string, cause: unknown) {
    super(message, { retryable: isRetryable(cause), cause });
  }
}

async function liveRooms(rooms: RoomLister, calls: readonly OpenCall[]): Promise<LiveRoom[]> {
  const { names, needsAll } = roomQuery(calls);
  try {
    if (needsAll) return await rooms.listRooms();
    const found: LiveRoom[] = [];
    for (let i = 0; i < names.length; i += NAMES_PER_REQUEST) found.push(...(await rooms.listRooms(names.slice(i, i + NAMES_PER_REQUEST))));
    return found;
  } catch (error) {
    throw new SweepError('LiveKit could not list rooms; no call was closed', error);
  }
}

async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(lanes);
}

export async function sweep(options: SweepOptions): Promise<SweepReport> {
  const now = options.now ?? Date.now;
  const { pipeline } = options;
  const report: SweepReport = { open: 0, closed: [], kept: 0, failed: [], purged: 0 };

  // The purge does not depend on storage or LiveKit; a failure there never stops the closing.
  const purging = options.purge
    ? options.purge(now()).then(
        (count) => {
          report.purged = count;
        },
        (error: unknown) => {
          report.purgeError = String((error as Error)?.message ?? error);
          logger.warn('purge of discarded recordings failed; the next sweep tries again', { error: error as Error });
        },
      )
    : Promise.resolve();

  try {
    if (!options.rooms) {
      report.skipped = 'no LiveKit to ask which rooms still exist';
      return report;
    }
    const primary = await pipeline.primary();
    if (!primary) {
      report.skipped = 'no location keeps call records';
      return report;
    }
    const startedAt = now();
    let open: OpenCall[];
    try {
      open = await primary.openCalls(quietBound(startedAt, pipeline.config.sweepAfterMs), options.limit ?? SWEEP_LIMIT);
    } catch (error) {
      throw new SweepError(`${primary.name}: open calls could not be listed`, error);
    }
    report.open = open.length;
    if (open.length === 0) return report;

    const rooms = await liveRooms(options.rooms, open);
    const plan = planSweep(open, rooms, startedAt, pipeline.config.sweepAfterMs);
    report.kept = plan.keep.length;
    if (plan.close.length === 0) return report;

    const sink = await pipeline.factSink();
    await inParallel(plan.close, SEND_CONCURRENCY, async (call) => {
      try {
        await sink.send(closingMessage(call, now()));
        report.closed.push(call.callId);
        logger.warn('open call closed by the sweeper: its room is gone and the agent stopped reporting', {
          callId: call.callId,
          lastFactAtMs: call.lastFactAtMs,
          quietForMs: startedAt - call.lastFactAtMs,
        });
      } catch (error) {
        report.failed.push({ callId: call.callId, error: String((error as Error)?.message ?? error) });
        logger.error('closing fact not delivered; the next sweep tries again', { callId: call.callId, error: error as Error });
      }
    });
    return report;
  } finally {
    await purging;
  }
}
