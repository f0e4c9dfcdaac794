/**
 * The webhook domain: what LiveKit's room_finished and egress_ended events change in a call's
 * record. The call id is the room SID (the worker uses it too), so no index is needed.
 *
 * room_finished  a call whose record is still open (no end time: the worker died or never
 *                reported the end) is finalized with the room's end time; its transcript is
 *                already stored up to the last snapshot. Never-answered calls lose their recording.
 * egress_ended   the recording's outcome (file, size, duration, status) is recorded and merged.
 */
import type { EgressInfo } from 'livekit-server-sdk';
import { CALL_ID_PATTERN, type Snapshot } from '../contract/snapshot.ts';
import { logger } from '../shared/logger.ts';
import type { Recorder } from '../recording/recorder.ts';

/** endReason of a call closed by room_finished instead of by its worker. */
export const FINALIZED_BY_WEBHOOK = 'room_finished: the agent did not report the end of the call';

export interface RoomFinished {
  sid: string;
  name: string;
  /** When LiveKit reported the room finished (ms). */
  finishedAtMs: number;
}

export type FinalizeResult = 'finalized' | 'already_final' | 'unknown_call' | 'updated';

/** The snapshot as the worker would have ended it, had it lived. */
export function finalizedSnapshot(snapshot: Snapshot, finishedAtMs: number): Snapshot {
  if (snapshot.call.endedAtMs !== undefined) return snapshot;
  const answered = snapshot.call.answered;
  return {
    ...snapshot,
    kind: answered ? 'ended' : 'unanswered',
    call: {
      ...snapshot.call,
      endedAtMs: Math.max(finishedAtMs, snapshot.call.startedAtMs),
      // A call that never became active is unanswered; with no SIP outcome known it failed.
      status: answered ? 'completed' : 'failed',
      endReason: FINALIZED_BY_WEBHOOK,
    },
    // Unanswered calls keep no conversation (and metadata is all the record holds anyway).
    conversation: undefined,
  };
}

export class CallFinalizer {
  private readonly recorder: Recorder;
  private readonly callRecording: boolean;
  private readonly saveMetadata: boolean;

  constructor(recorder: Recorder, flags: { callRecording: boolean; saveMetadata: boolean }) {
    this.recorder = recorder;
    this.callRecording = flags.callRecording;
    this.saveMetadata = flags.saveMetadata;
  }

  async roomFinished(room: RoomFinished): Promise<FinalizeResult> {
    if (!CALL_ID_PATTERN.test(room.sid)) return 'unknown_call';
    if (!this.saveMetadata) return 'unknown_call';
    let wasOpen = false;
    let answered = true;
    // The sequence starts at the room's end: snapshots sent before it can no longer reopen the
    // record, while a live worker's own final snapshot (sent after the room closed) still wins.
    const outcome = await this.recorder.merge(room.sid, undefined, {
      minSeq: room.finishedAtMs * 1000,
      finalize: (snapshot) => {
        wasOpen = snapshot.call.endedAtMs === undefined;
        answered = snapshot.call.answered;
        return finalizedSnapshot(snapshot, room.finishedAtMs);
      },
    });
    if (!outcome || outcome.result === 'missing' || outcome.result === 'unreadable') return 'unknown_call';
    if (wasOpen) {
      logger.warn('open call finalized by room_finished', { callId: room.sid, answered });
      if (!answered && this.callRecording) {
        await this.recorder.discard(room.sid, { reason: 'never answered' });
        await this.recorder.merge(room.sid);
      }
      return 'finalized';
    }
    return outcome.result === 'applied' ? 'updated' : 'already_final';
  }

  async egressEnded(info: EgressInfo): Promise<'recorded' | 'ignored'> {
    return this.recorder.onEgressEnded(info);
  }
}
