/**
 * Sweeper Lambda, run by an EventBridge schedule (every 5 minutes, infra/calldata-stack.ts):
 * closes calls whose worker was lost and whose room_finished webhook never arrived, and purges
 * discarded recordings past their hold. Closing facts go to the persist queue
 * (CALLDATA_QUEUE_URL) like every other fact.
 *
 * A sweep that cannot run at all (storage or LiveKit unavailable, LiveKit credentials missing)
 * fails the invocation so it shows in the function's error metric; calls that could not be
 * closed are logged and simply wait for the next sweep.
 */
import type { Context } from 'aws-lambda';
import { getConfig } from '../config/config.ts';
import { lambdaHandler } from '../shared/lambda.ts';
import { logger } from '../shared/logger.ts';
import { preloadStorage } from '../shared/preload.ts';
import { pipelineFor } from '../wiring.ts';
import { requireLivekit } from '../config/livekit.ts';
import { roomLister } from '../shared/livekit.ts';
import { sweep, type SweepReport } from './sweep.ts';

export async function sweepScheduled(_event: unknown, _context: Context): Promise<SweepReport> {
  const config = getConfig();
  const access = requireLivekit(config, 'ask LiveKit which rooms still exist (sweeper)');
  const report = await sweep({
    pipeline: pipelineFor(config),
    rooms: await roomLister(access),
    purge: config.callRecording ? async (nowMs) => (await import('./purge.ts')).purgeDiscarded(config.s3, nowMs) : undefined,
  });
  logger.info('sweep done', { open: report.open, closed: report.closed.length, kept: report.kept, failed: report.failed.length, purged: report.purged, skipped: report.skipped });
  return report;
}

// Init loads the driver the locations select, so the first invocation does not wait for it.
await preloadStorage();

export const handler = lambdaHandler(sweepScheduled);
