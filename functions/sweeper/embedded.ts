/**
 * The sweeper on the embedded default (no CALLDATA_QUEUE_URL): the worker runs it in its main
 * process, once at start and then periodically on an unref'd timer, so a worker that restarts
 * after a crash closes the calls the crash left open. It never throws: a sweep that cannot run
 * logs one warning (again only after a sweep succeeded in between) and the worker carries on.
 *
 * With a queue the stack's scheduled sweeper Lambda does this instead.
 */
import type { Config } from '../config/config.ts';
import { logger } from '../shared/logger.ts';
import { pipelineFor, type Pipeline } from '../wiring.ts';
import { missingLivekit, requireLivekit } from '../config/livekit.ts';
import { roomLister } from '../shared/livekit.ts';
import { sweep, type RoomLister, type SweepReport } from './sweep.ts';

export interface EmbeddedSweeper {
  /** Runs one sweep now (skipped while one is running); resolves undefined when it could not run. */
  runOnce(): Promise<SweepReport | undefined>;
  stop(): void;
  /** False when there is nothing to sweep with (a queue is configured, or no LiveKit and no recording). */
  readonly active: boolean;
}

export interface EmbeddedSweeperOptions {
  /** Time between sweeps; default CALLDATA_SWEEP_AFTER_MS bounded to 5 s ... 5 min. */
  intervalMs?: number;
  /** For tests: LiveKit and pipeline stand-ins. */
  rooms?: RoomLister;
  pipeline?: Pipeline;
  /** Run the first sweep right away (default true). */
  runAtStart?: boolean;
}

const MAX_INTERVAL_MS = 5 * 60_000;
const MIN_INTERVAL_MS = 5_000;

export function sweepIntervalMs(config: Pick<Config, 'sweepAfterMs'>): number {
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, config.sweepAfterMs));
}

const inactive: EmbeddedSweeper = { runOnce: async () => undefined, stop: () => undefined, active: false };

export function startEmbeddedSweeper(config: Config, options: EmbeddedSweeperOptions = {}): EmbeddedSweeper {
  if (config.queueUrl) return inactive;
  const missing = missingLivekit(config.livekit);
  const noLivekit = missing.length > 0 && !options.rooms;
  if (noLivekit) {
    logger.warn('sweeper: calls left open by a lost worker are not closed, because LiveKit cannot be asked which rooms still exist', { missing: missing.join(', ') });
    if (!config.callRecording) return inactive;
  }

  let warned = false;
  let running: Promise<SweepReport | undefined> | undefined;
  const rooms: Promise<RoomLister> | undefined = options.rooms
    ? Promise.resolve(options.rooms)
    : missing.length > 0
      ? undefined
      : roomLister(requireLivekit(config, 'ask LiveKit which rooms still exist (sweeper)'));

  const once = async (): Promise<SweepReport | undefined> => {
    try {
      const report = await sweep({
        pipeline: options.pipeline ?? pipelineFor(config),
        rooms: rooms ? await rooms : undefined,
        purge: config.callRecording ? async (nowMs) => (await import('./purge.ts')).purgeDiscarded(config.s3, nowMs) : undefined,
      });
      warned = false;
      if (report.closed.length > 0 || report.failed.length > 0 || report.purged > 0) {
        logger.info('sweep done', { open: report.open, closed: report.closed.length, kept: report.kept, failed: report.failed.length, purged: report.purged });
      }
      return report;
    } catch (error) {
      if (!warned) {
        warned = true;
        logger.warn('sweep skipped: it will be tried again', { error: error as Error, cause: String(((error as Error)?.cause as Error | undefined)?.message ?? '') });
      }
      return undefined;
    }
  };

  const runOnce = (): Promise<SweepReport | undefined> => {
    if (running) return running;
    running = once().finally(() => {
      running = undefined;
    });
    return running;
  };

  const timer = setInterval(() => void runOnce(), options.intervalMs ?? sweepIntervalMs(config));
  timer.unref();
  if (options.runAtStart !== false) void runOnce();
  return { runOnce, stop: () => clearInterval(timer), active: true };
}
