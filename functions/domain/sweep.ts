/**
 * The sweeper's decisions, pure: which open calls to close, the fact message that closes one,
 * and which discarded recordings are past their hold.
 *
 * A call is open while no party reported its outcome. Its worker normally does; LiveKit's
 * room_finished webhook closes what a lost worker left open. When that webhook is lost too (not
 * configured, the endpoint was down, LiveKit gave up), the sweeper closes the call once
 *
 *   - its last fact is older than CALLDATA_SWEEP_AFTER_MS, and
 *   - LiveKit no longer has its room: the call id is the room SID, so a room of the same name
 *     with another SID is a new room instance and does not keep the old call open. A call id that
 *     is not a room SID (a job-derived id) can only be matched by the room's name.
 *
 * The closing facts say only what the sweeper knows: the call ended no later than its last fact
 * (`ended.atMs` = the record's lastFactAtMs, the weakest end source), and it is over with an
 * inferred outcome (no status: it follows `answered`, see render.ts). Every stronger fact that
 * arrives later (the worker's own final report stuck in a queue) still wins in the merge.
 */
import { MESSAGE_VERSION, type FactMessage } from '../contract/facts.ts';
import { WORKER_LOST } from '../contract/vocabulary.ts';
import type { OpenCall } from '../storage/backend.ts';
import { DISCARD_HOLD_MS, DISCARD_PREFIX } from './recording-plan.ts';

/** A room LiveKit reports as existing (RoomServiceClient.listRooms). */
export interface LiveRoom {
  name: string;
  sid?: string;
}

/** LiveKit room SIDs: `RM_` and a base-62 tail. Such a call id names exactly one room instance. */
const ROOM_SID = /^RM_[A-Za-z0-9]+$/;

export function isRoomSid(callId: string): boolean {
  return ROOM_SID.test(callId);
}

/** Calls whose last fact is older than this are candidates. */
export function quietBound(nowMs: number, sweepAfterMs: number): number {
  return nowMs - sweepAfterMs;
}

/** True while LiveKit still has the room of this call. */
export function roomIsLive(call: Pick<OpenCall, 'callId' | 'roomName'>, rooms: readonly LiveRoom[]): boolean {
  if (rooms.some((room) => room.sid !== undefined && room.sid !== '' && room.sid === call.callId)) return true;
  // The call's own room instance is gone; a room of the same name is another call's.
  if (isRoomSid(call.callId)) return false;
  return call.roomName !== undefined && rooms.some((room) => room.name === call.roomName);
}

/** The room names to ask LiveKit about, and whether some call can only be matched against every room. */
export function roomQuery(calls: readonly Pick<OpenCall, 'callId' | 'roomName'>[]): { names: string[]; needsAll: boolean } {
  const names = new Set<string>();
  let needsAll = false;
  for (const call of calls) {
    if (call.roomName !== undefined) names.add(call.roomName);
    // A room SID without a known name: only the full list can show whether that room exists.
    else if (isRoomSid(call.callId)) needsAll = true;
  }
  return { names: [...names], needsAll };
}

export interface SweepPlan {
  close: OpenCall[];
  /** Still in a live room, or not quiet long enough. */
  keep: OpenCall[];
}

export function planSweep(open: readonly OpenCall[], rooms: readonly LiveRoom[], nowMs: number, sweepAfterMs: number): SweepPlan {
  const bound = quietBound(nowMs, sweepAfterMs);
  const plan: SweepPlan = { close: [], keep: [] };
  for (const call of open) {
    // Storage already filters by the bound; a clock step between the query and now must not close a live call.
    if (call.lastFactAtMs >= bound || roomIsLive(call, rooms)) plan.keep.push(call);
    else plan.close.push(call);
  }
  return plan;
}

/** The sweeper's writer id for a call: one writer per call, its sequence is the sweep's time. */
export function sweeperWriter(callId: string): string {
  return `sweeper:${callId}`;
}

/** The fact message that closes a call whose worker was lost and whose room is gone. */
export function closingMessage(call: Pick<OpenCall, 'callId' | 'lastFactAtMs'>, nowMs: number): FactMessage {
  return {
    v: MESSAGE_VERSION,
    kind: 'sweeper',
    callId: call.callId,
    writer: sweeperWriter(call.callId),
    seq: nowMs,
    cumulative: false,
    sentAtMs: nowMs,
    facts: {
      ended: { source: 'sweeper', atMs: call.lastFactAtMs },
      // The sweeper knows why it closes the call: the worker never sent its final word.
      outcome: { source: 'sweeper', atMs: nowMs, reason: WORKER_LOST.sweeper, endReason: 'worker_lost', evidence: 'sweeper' },
    },
  };
}

/** An object under the discard prefix as S3 lists it. */
export interface DiscardedObject {
  key: string;
  lastModifiedMs: number | undefined;
}

/** `_calldata-discarded/`: what ListObjectsV2 is asked for. */
export const DISCARD_LIST_PREFIX = `${DISCARD_PREFIX}/`;

/** Keys of discarded recordings held longer than DISCARD_HOLD_MS (an object of unknown age is kept). */
export function expiredDiscards(objects: readonly DiscardedObject[], nowMs: number): string[] {
  const bound = nowMs - DISCARD_HOLD_MS;
  return objects.filter((o) => o.key.startsWith(DISCARD_LIST_PREFIX) && o.lastModifiedMs !== undefined && o.lastModifiedMs < bound).map((o) => o.key);
}
