/**
 * When the recording function is asked to act, decided from a persisted batch and the merged
 * record it produced (never from one party's view alone):
 *
 *   start    a worker's first message arrived, the worker records (CALL_RECORDING=true), the
 *            record has no egress and no failed start yet, and the call is not over
 *   finish   a worker reported the answered call's end: stop the egress and collect its result
 *   discard  the call is over and nobody ever answered it: stop the egress and move the file out
 *            of the call's folder. Also when an egress result arrives for such a call (egress
 *            uploads after it stops, so a late file is moved again)
 *   restore  an answer fact arrived for a call whose recording was discarded (the record's answer
 *            was lagging in the queue when the webhook or sweeper closed the call): move it back
 *
 * Invariants (test/unit/domain-recording-plan.test.ts): an answered call's recording is never
 * discarded without a restore following; a call that is over and never answered always gets a
 * discard. A discard moves the file to a quarantine prefix that is purged after a hold longer
 * than any queue's retention (DISCARD_HOLD_MS), so no answer can arrive after the purge.
 */
import { MESSAGE_VERSION, type FactMessage, type RecordingCommand } from '../contract/facts.ts';
import type { CallState } from '../contract/record.ts';
import { TERMINAL_EGRESS_STATUSES, type RecordingAction } from '../contract/vocabulary.ts';
import { isAnswered, isFinal } from './merge.ts';
import { isDiscarded, mainEgress, recordingKey } from './render.ts';

/** Discarded recordings are kept out of sight this long before they are purged (SQS keeps messages at most 14 days). */
export const DISCARD_HOLD_MS = 15 * 24 * 60 * 60 * 1000;
/** Where discarded recordings wait for the purge, inside the recordings bucket. */
export const DISCARD_PREFIX = '_calldata-discarded';

function actionsFor(batch: readonly FactMessage[], state: CallState): RecordingAction[] {
  const recording = state.recording;
  if (!recording?.requested) return [];
  const answered = isAnswered(state);
  const final = isFinal(state);
  const egress = Object.values(recording.egress ?? {});
  const actions: RecordingAction[] = [];

  if (!final && egress.length === 0 && !recording.startError && batch.some((m) => m.kind === 'started')) actions.push('start');

  if (final && answered) {
    if (batch.some((m) => m.facts.outcome?.source === 'worker') && egress.some((e) => !TERMINAL_EGRESS_STATUSES.has(e.status))) actions.push('finish');
    if (isDiscarded(state)) actions.push('restore');
  }

  if (final && !answered) {
    const closing = batch.some((m) => m.facts.outcome !== undefined);
    const lateFile = batch.some((m) => Object.values(m.facts.recording?.egress ?? {}).some((e) => TERMINAL_EGRESS_STATUSES.has(e.status)));
    // Discarding is idempotent: every closing fact and every late file asks again.
    if (closing || lateFile) actions.push('discard');
  }
  return [...new Set(actions)];
}

/** The commands for one call after a batch was merged into `state`, stored in `folder`. */
export function recordingCommands(batch: readonly FactMessage[], state: CallState, folder: string, nowMs: number): RecordingCommand[] {
  if (!folder || state.roomName === undefined) return [];
  const egress = mainEgress(state);
  const key = egress?.key ?? recordingKey(folder);
  const bucket = egress?.bucket ?? state.recording?.bucket;
  return actionsFor(batch, state).map((action) => ({
    v: MESSAGE_VERSION,
    type: 'recording' as const,
    action,
    callId: state.callId,
    roomName: state.roomName as string,
    key,
    ...(bucket ? { bucket } : {}),
    egressIds: Object.keys(state.recording?.egress ?? {}).slice(0, 16),
    issuedAtMs: nowMs,
  }));
}
