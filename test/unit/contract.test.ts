/**
 * The wire contract (functions/contract/facts.ts): version-2 fact messages and recording
 * commands round-trip, everything invalid is refused with the field at fault named, and
 * version-1 snapshots still in queues are upgraded to the facts they state.
 */
import { describe, expect, it } from 'vitest';
import { InvalidSnapshotError, UnsupportedVersionError } from '../../functions/contract/errors.ts';
import {
  decodeMessage,
  decodeRecordingCommand,
  deriveItemId,
  encodeMessage,
  encodeRecordingCommand,
  MAX_TURNS_PER_MESSAGE,
  MAX_WIRE_BYTES,
  MESSAGE_VERSION,
  parseMessage,
  V1_WRITER,
  withItemIds,
  type FactMessage,
} from '../../functions/contract/facts.ts';

const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);

function v2(overrides: Partial<FactMessage> = {}): FactMessage {
  return {
    v: MESSAGE_VERSION,
    kind: 'progress',
    callId: 'RM_contract1',
    writer: 'job:AJ_contract',
    seq: 3,
    cumulative: true,
    sentAtMs: START + 6_000,
    facts: {
      roomName: 'sip-room-1',
      startedAtMs: START,
      direction: { value: 'inbound', atMs: START },
      userNumber: { value: '+919876543210', atMs: START },
      answeredAtMs: START + 500,
      recording: { requested: true, bucket: 'recordings' },
      conversation: [
        { id: 'i1', role: 'user', content: 'hello', interrupted: false, timestampMs: START + 1_000 },
        { id: 'i2', role: 'assistant', content: 'Hi!', interrupted: true, timestampMs: START + 2_000 },
      ],
    },
    ...overrides,
  };
}

/** A version-1 snapshot as workers of that version sent it. */
function v1(kind: 'started' | 'progress' | 'ended' | 'unanswered', extra: Record<string, unknown> = {}): Record<string, unknown> {
  const final = kind === 'ended' || kind === 'unanswered';
  return {
    v: 1,
    kind,
    callId: 'RM_legacy1',
    seq: 1_790_000_000_000_001,
    sentAtMs: START + 90_000,
    call: {
      roomName: 'legacy-room',
      direction: 'inbound',
      inboundTrunkId: 'ST_in',
      agentNumber: '+14155550100',
      userNumber: '+919876543210',
      startedAtMs: START,
      answered: kind !== 'unanswered',
      ...(kind === 'unanswered' ? {} : { answeredAtMs: START + 500 }),
      ...(final ? { endedAtMs: START + 90_000, endReason: 'caller hung up' } : {}),
      status: kind === 'unanswered' ? 'no_answer' : final ? 'completed' : 'in_progress',
    },
    recording: { key: 'legacy-room/20261123T191838.120_x/call.ogg', bucket: 'recordings', egressId: 'EG_1' },
    ...(kind === 'unanswered'
      ? {}
      : {
          conversation: [
            { role: 'user', content: 'hello', timestampMs: START + 1_000 },
            { role: 'user', content: 'hello', timestampMs: START + 1_000 },
            { role: 'assistant', content: 'Hi!', interrupted: true, timestampMs: START + 2_000 },
          ],
        }),
    ...extra,
  };
}

function issuesOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidSnapshotError);
    return (error as InvalidSnapshotError).issues.join(' ');
  }
  throw new Error('expected InvalidSnapshotError');
}

describe('version-2 fact messages', () => {
  it('round-trip through encode and decode unchanged', () => {
    // Prepare
    const message = v2();

    // Act
    const decoded = decodeMessage(encodeMessage(message));

    // Assess
    expect(decoded).toEqual(message);
  });

  it('fill in the defaults a producer may leave out', () => {
    // Prepare
    const body = JSON.parse(encodeMessage(v2())) as { cumulative?: boolean; facts: { conversation: { interrupted?: boolean }[] } };
    delete body.cumulative;
    delete body.facts.conversation[0]?.interrupted;

    // Act
    const parsed = parseMessage(body);

    // Assess
    expect(parsed.cumulative).toBe(false);
    expect(parsed.facts.conversation?.[0]?.interrupted).toBe(false);
  });

  it('accept the sweeper\'s, the webhook\'s and the recording function\'s kinds and sources', () => {
    // Prepare
    const messages: FactMessage[] = [
      v2({ kind: 'sweeper', writer: 'sweeper:RM_contract1', cumulative: false, facts: { ended: { source: 'sweeper', atMs: START }, outcome: { source: 'sweeper', atMs: START + 1 } } }),
      v2({ kind: 'webhook', writer: 'webhook:EV_1', cumulative: false, facts: { ended: { source: 'room_finished', atMs: START }, outcome: { source: 'webhook', atMs: START } } }),
      v2({ kind: 'recording', writer: 'recording:EG_1', cumulative: false, facts: { recording: { egress: { EG_1: { status: 'complete', atMs: START, sizeBytes: 10 } } } } }),
    ];

    // Act / Assess
    for (const message of messages) expect(decodeMessage(encodeMessage(message))).toEqual(message);
  });

  it('refuse an unknown version with UnsupportedVersionError', () => {
    // Prepare / Act / Assess
    expect(() => decodeMessage(JSON.stringify({ ...v2(), v: 3 }))).toThrow(UnsupportedVersionError);
    expect(() => decodeMessage(JSON.stringify({ ...v2(), v: undefined }))).toThrow(UnsupportedVersionError);
  });

  it('refuse text that is not JSON and bodies above the wire limit', () => {
    // Prepare / Act / Assess
    expect(() => decodeMessage('{"v":2,')).toThrow(/not JSON/);
    expect(() => decodeMessage(' '.repeat(MAX_WIRE_BYTES + 1))).toThrow(/exceeds/);
  });

  it('name every field at fault', () => {
    // Prepare
    const bad = { ...v2(), callId: '../x', writer: 'has space', seq: -1, facts: { outcome: { source: 'guess', atMs: 1 } } };

    // Act
    const issues = issuesOf(() => parseMessage(bad));

    // Assess
    for (const field of ['callId', 'writer', 'seq', 'facts.outcome.source']) expect(issues).toContain(field);
  });

  it('refuse a conversation and a conversation reference together', () => {
    // Prepare
    const both = { ...v2(), conversationRef: { bucket: 'abc', key: 'k', bytes: 1, sha256: 'a'.repeat(64), items: 1 } };

    // Act / Assess
    expect(() => parseMessage(both)).toThrow(InvalidSnapshotError);
    expect(() => encodeMessage(both)).toThrow(/mutually exclusive/);
  });

  it('never let a producer send anything invalid', () => {
    // Prepare / Act / Assess
    expect(() => encodeMessage({ ...v2(), writer: '' })).toThrow(InvalidSnapshotError);
  });
});

describe('per-turn latency facts', () => {
  it('fit in one SQS message even at the cap with the longest ids and every metric, and one more is refused by name', () => {
    // Prepare: the largest turn list the contract lets through (ids of 256 characters, five fractional metrics each)
    const turn = (i: number) => ({ id: `t${String(i).padStart(255, '0')}`, endOfUtteranceDelayMs: 86_399_999.123456789, transcriptionDelayMs: 86_399_999.123456789, llmTtftMs: 86_399_999.123456789, ttsTtfbMs: 86_399_999.123456789, e2eMs: 86_399_999.123456789 });
    const turns = Array.from({ length: MAX_TURNS_PER_MESSAGE }, (_, i) => turn(i));
    const { conversation: _conversation, ...facts } = v2().facts;
    // Act
    const body = encodeMessage(v2({ facts: { ...facts, turns } }));
    // Assess: under half the SQS limit, so the rest of the message (the conversation goes to S3 when large) keeps room
    expect(Buffer.byteLength(body, 'utf8')).toBeLessThan(MAX_WIRE_BYTES / 2);
    expect(decodeMessage(body).facts.turns).toHaveLength(MAX_TURNS_PER_MESSAGE);
    const tooMany = () => encodeMessage(v2({ facts: { ...facts, turns: [...turns, turn(MAX_TURNS_PER_MESSAGE)] } }));
    expect(tooMany).toThrow(InvalidSnapshotError);
    expect(tooMany).toThrow(/facts\.turns/);
  });
});

describe('transcript item ids', () => {
  it('are derived from the content and stay the same across messages', () => {
    // Prepare
    const item = { role: 'user' as const, content: 'hello', timestampMs: START };

    // Act
    const first = withItemIds([item]);
    const again = withItemIds([{ ...item }]);

    // Assess
    expect(first[0]?.id).toBe(deriveItemId(item));
    expect(again).toEqual(first);
  });

  it('keep two equal lines apart and keep given ids', () => {
    // Prepare
    const item = { role: 'user' as const, content: 'yes', timestampMs: START };

    // Act
    const items = withItemIds([item, item, { ...item, id: 'given' }]);

    // Assess
    expect(new Set(items.map((i) => i.id)).size).toBe(3);
    expect(items[2]?.id).toBe('given');
  });
});

describe('version-1 snapshots still in queues', () => {
  it('are upgraded to the facts they state, as a cumulative writer of their own', () => {
    // Prepare
    const body = JSON.stringify(v1('ended'));

    // Act
    const message = decodeMessage(body);

    // Assess
    expect(message).toMatchObject({
      v: MESSAGE_VERSION,
      kind: 'ended',
      callId: 'RM_legacy1',
      writer: V1_WRITER,
      seq: 1_790_000_000_000_001,
      cumulative: true,
      facts: {
        roomName: 'legacy-room',
        startedAtMs: START,
        direction: { value: 'inbound' },
        inboundTrunkId: { value: 'ST_in' },
        answeredAtMs: START + 500,
        ended: { source: 'worker', atMs: START + 90_000, reason: 'caller hung up' },
        outcome: { source: 'worker', status: 'completed' },
        recording: { requested: true, bucket: 'recordings' },
      },
    });
    expect(message.facts.conversation?.map((i) => i.content)).toEqual(['hello', 'hello', 'Hi!']);
    expect(new Set(message.facts.conversation?.map((i) => i.id)).size).toBe(3);
  });

  it('give the same item ids every time, so a redelivered snapshot adds nothing', () => {
    // Prepare
    const body = JSON.stringify(v1('progress'));

    // Act
    const [a, b] = [decodeMessage(body), decodeMessage(body)];

    // Assess
    expect(a.facts.conversation).toEqual(b.facts.conversation);
    expect(a.facts.outcome).toBeUndefined();
    expect(a.facts.ended).toBeUndefined();
  });

  it('state an unanswered call\'s reason as the worker\'s outcome, and nothing of an answer', () => {
    // Prepare / Act
    const message = decodeMessage(JSON.stringify(v1('unanswered')));

    // Assess
    expect(message.facts.answeredAtMs).toBeUndefined();
    expect(message.facts.outcome).toMatchObject({ source: 'worker', status: 'no_answer' });
  });

  it('are refused with the field at fault when malformed', () => {
    // Prepare / Act / Assess
    expect(issuesOf(() => decodeMessage(JSON.stringify(v1('ended', { callId: '../../etc/passwd' }))))).toContain('callId');
  });
});

describe('recording commands', () => {
  it('round-trip, and default to no egress ids', () => {
    // Prepare
    const command = { v: MESSAGE_VERSION, type: 'recording' as const, action: 'discard' as const, callId: 'RM_x', roomName: 'r', key: 'r/t/call.ogg', issuedAtMs: START };

    // Act
    const decoded = decodeRecordingCommand(encodeRecordingCommand(command));

    // Assess
    expect(decoded).toEqual({ ...command, egressIds: [] });
  });

  it('are read from version-1 snapshots on the recording queue as the command they meant', () => {
    // Prepare / Act
    const started = decodeRecordingCommand(JSON.stringify(v1('started')));
    const unanswered = decodeRecordingCommand(JSON.stringify(v1('unanswered')));
    const ended = decodeRecordingCommand(JSON.stringify(v1('ended')));
    const progress = decodeRecordingCommand(JSON.stringify(v1('progress')));
    const unrecorded = decodeRecordingCommand(JSON.stringify(v1('ended', { recording: undefined })));

    // Assess
    expect(started).toMatchObject({ action: 'start', callId: 'RM_legacy1', roomName: 'legacy-room', key: 'legacy-room/20261123T191838.120_x/call.ogg', egressIds: ['EG_1'] });
    expect(unanswered?.action).toBe('discard');
    expect(ended?.action).toBe('finish');
    expect(progress).toBeUndefined();
    expect(unrecorded).toBeUndefined();
  });

  it('refuse an unknown action or version', () => {
    // Prepare / Act / Assess
    expect(() => decodeRecordingCommand(JSON.stringify({ v: 2, type: 'recording', action: 'explode', callId: 'RM_x', roomName: 'r', key: 'k', issuedAtMs: 1 }))).toThrow(InvalidSnapshotError);
    expect(() => decodeRecordingCommand(JSON.stringify({ v: 7 }))).toThrow(UnsupportedVersionError);
  });
});
