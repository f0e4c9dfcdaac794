/**
 * The sweeper's pure decisions (functions/domain/sweep.ts): which open calls it closes, the
 * closing fact message and what that message does to a record, and which discarded recordings
 * are past their hold.
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage, MESSAGE_VERSION, WRITER_PATTERN, type FactMessage } from '../../functions/contract/facts.ts';
import { WORKER_LOST } from '../../functions/contract/vocabulary.ts';
import { mergeAll, mergeStates, stateOf } from '../../functions/domain/merge.ts';
import { DISCARD_HOLD_MS, DISCARD_PREFIX } from '../../functions/domain/recording-plan.ts';
import { chooseFolder, formatTime, renderMetadata, renderTranscription } from '../../functions/domain/render.ts';
import { closingMessage, expiredDiscards, isRoomSid, planSweep, quietBound, roomIsLive, roomQuery, sweeperWriter } from '../../functions/domain/sweep.ts';
import type { OpenCall } from '../../functions/storage/backend.ts';

const NOW = Date.UTC(2026, 10, 23, 20, 0, 0, 0);
const MINUTE = 60_000;
const SWEEP_AFTER = 10 * MINUTE;
const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);

function open(callId: string, roomName: string | undefined, quietForMs: number): OpenCall {
  return { callId, ...(roomName === undefined ? {} : { roomName }), lastFactAtMs: NOW - quietForMs };
}

/** What a worker that was lost mid-call had reported: answered (or not), two lines, no end. */
function workerFacts(callId: string, answered: boolean, lastAtMs: number): FactMessage {
  return {
    v: MESSAGE_VERSION,
    kind: 'progress',
    callId,
    writer: 'job:AJ_lost',
    seq: 3,
    cumulative: true,
    sentAtMs: lastAtMs,
    facts: {
      roomName: 'sip-room-7',
      startedAtMs: START,
      direction: { value: 'inbound', atMs: START },
      ...(answered
        ? {
            answeredAtMs: START + 800,
            conversation: [
              { id: 'i1', role: 'user', content: 'hello', interrupted: false, timestampMs: START + 2_000 },
              { id: 'i2', role: 'assistant', content: 'Hi, how can I help?', interrupted: false, timestampMs: START + 3_000 },
            ],
          }
        : {}),
    },
  };
}

describe('which open calls the sweeper closes', () => {
  it('recognises room SIDs as call ids', () => {
    // Prepare / Act / Assess
    expect(isRoomSid('RM_a1B2c3D4e5')).toBe(true);
    expect(isRoomSid('job_AJ_123')).toBe(false);
    expect(isRoomSid('RM_')).toBe(false);
  });

  it('keeps a call whose room (same SID) still exists, whatever its name', () => {
    // Prepare
    const call = open('RM_live1', 'room-a', 20 * MINUTE);

    // Act
    const live = roomIsLive(call, [{ name: 'room-a', sid: 'RM_live1' }]);
    const renamed = roomIsLive(call, [{ name: 'other', sid: 'RM_live1' }]);

    // Assess
    expect(live).toBe(true);
    expect(renamed).toBe(true);
  });

  it('closes a call whose room name now belongs to a new room instance (another SID)', () => {
    // Prepare
    const call = open('RM_old', 'reused-name', 20 * MINUTE);

    // Act
    const live = roomIsLive(call, [{ name: 'reused-name', sid: 'RM_new' }]);

    // Assess
    expect(live).toBe(false);
  });

  it('matches a call whose id is not a room SID by room name only', () => {
    // Prepare
    const call = open('job_AJ_1', 'room-b', 20 * MINUTE);

    // Act / Assess
    expect(roomIsLive(call, [{ name: 'room-b', sid: 'RM_any' }])).toBe(true);
    expect(roomIsLive(call, [{ name: 'room-c', sid: 'RM_any' }])).toBe(false);
    expect(roomIsLive(open('job_AJ_2', undefined, 20 * MINUTE), [{ name: 'room-b', sid: 'RM_any' }])).toBe(false);
  });

  it('asks LiveKit for the named rooms once each, and for every room only when a SID has no name', () => {
    // Prepare
    const calls = [open('RM_1', 'a', MINUTE), open('RM_2', 'a', MINUTE), open('job_3', 'b', MINUTE)];

    // Act
    const named = roomQuery(calls);
    const unnamed = roomQuery([...calls, open('RM_4', undefined, MINUTE)]);
    const unnamedJob = roomQuery([open('job_5', undefined, MINUTE)]);

    // Assess
    expect(named).toEqual({ names: ['a', 'b'], needsAll: false });
    expect(unnamed.needsAll).toBe(true);
    expect(unnamedJob).toEqual({ names: [], needsAll: false });
  });

  it('closes quiet calls whose rooms are gone and keeps the rest', () => {
    // Prepare
    const gone = open('RM_gone', 'room-gone', 30 * MINUTE);
    const live = open('RM_live', 'room-live', 30 * MINUTE);
    const recent = open('RM_recent', 'room-recent', 2 * MINUTE);
    const rooms = [{ name: 'room-live', sid: 'RM_live' }];

    // Act
    const plan = planSweep([gone, live, recent], rooms, NOW, SWEEP_AFTER);

    // Assess
    expect(plan.close.map((c) => c.callId)).toEqual(['RM_gone']);
    expect(plan.keep.map((c) => c.callId).sort()).toEqual(['RM_live', 'RM_recent']);
    expect(quietBound(NOW, SWEEP_AFTER)).toBe(NOW - SWEEP_AFTER);
  });

  it('never closes a call exactly at the bound', () => {
    // Prepare
    const atBound = open('RM_edge', 'edge', SWEEP_AFTER);

    // Act
    const plan = planSweep([atBound], [], NOW, SWEEP_AFTER);

    // Assess
    expect(plan.close).toEqual([]);
  });
});

describe('the closing fact message', () => {
  it('states that the call ended at its last fact and is over because its worker was lost, with the sweeper as the (weakest) source', () => {
    // Prepare
    const call = open('RM_abc123', 'sip-room-7', 15 * MINUTE);

    // Act
    const message = closingMessage(call, NOW);

    // Assess
    expect(message).toEqual({
      v: MESSAGE_VERSION,
      kind: 'sweeper',
      callId: 'RM_abc123',
      writer: 'sweeper:RM_abc123',
      seq: NOW,
      cumulative: false,
      sentAtMs: NOW,
      facts: {
        ended: { source: 'sweeper', atMs: call.lastFactAtMs },
        outcome: { source: 'sweeper', atMs: NOW, reason: WORKER_LOST.sweeper, endReason: 'worker_lost', evidence: 'sweeper' },
      },
    });
    expect(() => encodeMessage(message)).not.toThrow();
  });

  it('names a valid writer for the longest call id', () => {
    // Prepare
    const callId = `A${'b'.repeat(127)}`;

    // Act
    const writer = sweeperWriter(callId);

    // Assess
    expect(writer).toMatch(WRITER_PATTERN);
    expect(() => encodeMessage(closingMessage({ callId, lastFactAtMs: NOW - SWEEP_AFTER - 1 }, NOW))).not.toThrow();
  });

  it('closes an answered call as completed at its last fact, keeping the transcript, and says the worker was lost', () => {
    // Prepare
    const lastAt = START + 40_000;
    const stored = stateOf(workerFacts('RM_answered', true, lastAt));

    // Act
    const closed = mergeStates(stored, stateOf(closingMessage({ callId: 'RM_answered', lastFactAtMs: stored.lastFactAtMs }, NOW)));
    const folder = chooseFolder(closed, 'UTC') ?? '';
    const metadata = renderMetadata(closed, folder, 'UTC');
    const transcript = renderTranscription(closed, 'UTC');

    // Assess
    expect(metadata).toMatchObject({
      status: 'completed',
      answered: true,
      end_time: formatTime(lastAt, 'UTC'),
      duration: (lastAt - START) / 1000,
      end_reason: 'worker_lost',
      end_reason_detail: WORKER_LOST.sweeper,
    });
    expect(transcript?.conversation.map((i) => i.content)).toEqual(['hello', 'Hi, how can I help?']);
  });

  it('closes a never-answered call as failed', () => {
    // Prepare
    const stored = stateOf(workerFacts('RM_unanswered', false, START + 5_000));

    // Act
    const closed = mergeStates(stored, stateOf(closingMessage({ callId: 'RM_unanswered', lastFactAtMs: stored.lastFactAtMs }, NOW)));

    // Assess
    expect(renderMetadata(closed, chooseFolder(closed, 'UTC') ?? '', 'UTC')).toMatchObject({ status: 'failed', answered: false, end_reason: 'worker_lost', end_reason_detail: WORKER_LOST.sweeper });
    expect(renderTranscription(closed, 'UTC')).toBeUndefined();
  });

  it('gives way to the worker\'s own final report and to LiveKit\'s end time, whatever the order they arrive in', () => {
    // Prepare
    const progress = workerFacts('RM_late', true, START + 40_000);
    const sweeper = closingMessage({ callId: 'RM_late', lastFactAtMs: START + 40_000 }, NOW);
    const final: FactMessage = {
      ...progress,
      kind: 'ended',
      seq: 4,
      sentAtMs: START + 50_000,
      facts: { ...progress.facts, ended: { source: 'worker', atMs: START + 48_000, reason: 'caller hung up' }, outcome: { source: 'worker', atMs: START + 48_000, status: 'completed' } },
    };
    const participantLeft: FactMessage = { ...sweeper, kind: 'webhook', writer: 'webhook:pl', seq: 1, facts: { ended: { source: 'participant_left', atMs: START + 45_000 } } };

    // Act
    const workerWins = [mergeAll([final, sweeper, progress].map(stateOf)), mergeAll([sweeper, progress, final].map(stateOf))];
    const livekitEnd = mergeAll([progress, sweeper, participantLeft].map(stateOf));

    // Assess
    for (const state of workerWins) {
      expect(state.outcome?.source).toBe('worker');
      expect(state.ended).toMatchObject({ source: 'worker', atMs: START + 48_000 });
    }
    expect(livekitEnd.ended).toMatchObject({ source: 'participant_left', atMs: START + 45_000 });
    expect(renderMetadata(livekitEnd, 'x/y', 'UTC')).toMatchObject({ end_reason: 'worker_lost', end_reason_detail: WORKER_LOST.sweeper });
  });
});

describe('the purge of discarded recordings', () => {
  it('deletes only objects under the discard prefix held longer than the hold, and keeps objects of unknown age', () => {
    // Prepare
    const objects = [
      { key: `${DISCARD_PREFIX}/room/a/call.ogg`, lastModifiedMs: NOW - DISCARD_HOLD_MS - 1 },
      { key: `${DISCARD_PREFIX}/room/b/call.ogg`, lastModifiedMs: NOW - DISCARD_HOLD_MS },
      { key: `${DISCARD_PREFIX}/room/c/call.ogg`, lastModifiedMs: NOW - 1_000 },
      { key: `${DISCARD_PREFIX}/room/d/call.ogg`, lastModifiedMs: undefined },
      { key: 'room/e/call.ogg', lastModifiedMs: 0 },
    ];

    // Act
    const expired = expiredDiscards(objects, NOW);

    // Assess
    expect(expired).toEqual([`${DISCARD_PREFIX}/room/a/call.ogg`]);
    expect(DISCARD_HOLD_MS).toBe(15 * 24 * 60 * MINUTE);
  });
});
