/**
 * The persist step (functions/domain/persist.ts): where records live, how a batch becomes one
 * delta per call, how every location gets the merge and a failing one fails only what it was
 * asked to store, and which recording commands a stored batch calls for.
 * The same step behind the Lambda on the real SQS path: test/integration/persist-sqs.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MESSAGE_VERSION, type FactMessage } from '../../functions/contract/facts.ts';
import type { CallState } from '../../functions/contract/record.ts';
import { mergeStates, stateOf } from '../../functions/domain/merge.ts';
import { commandsFor, deltasOf, locationPlan, persistFacts, type PersistFlags } from '../../functions/domain/persist.ts';
import type { CallDelta, CallPage, MergeOutcome, OpenCall, StorageBackend, StoredCall } from '../../functions/storage/backend.ts';
import { BackendUnavailableError } from '../../functions/storage/errors.ts';

const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);
const FLAGS: PersistFlags = { callRecording: false, saveMetadata: true, saveTranscription: true, metadataLocation: 'Call_Metadata', transcriptionLocation: 'Transcriptions' };

function message(callId: string, seq: number, overrides: Partial<FactMessage> = {}): FactMessage {
  return {
    v: MESSAGE_VERSION,
    kind: seq === 1 ? 'started' : 'progress',
    callId,
    writer: 'job:AJ_1',
    seq,
    cumulative: true,
    sentAtMs: START + seq * 1_000,
    facts: {
      roomName: 'room',
      startedAtMs: START,
      direction: { value: 'inbound', atMs: START },
      recording: { requested: true, bucket: 'recordings' },
      ...(seq > 1 ? { answeredAtMs: START + 500, conversation: [{ id: `i${seq}`, role: 'user', content: `line ${seq}`, interrupted: false, timestampMs: START + seq * 1_000 }] } : {}),
    },
    ...overrides,
  };
}

/** Keeps merged records in memory; fails when told to. A unit-test edge, not a backend. */
class MemoryStore implements StorageBackend {
  readonly name: string;
  readonly rows = new Map<string, CallState>();
  readonly batches: CallDelta[][] = [];
  failing = false;

  constructor(name: string) {
    this.name = name;
  }

  async queryCalls(): Promise<CallPage> {
    return { calls: [] };
  }

  async merge(deltas: readonly CallDelta[]): Promise<MergeOutcome[]> {
    if (this.failing) throw new BackendUnavailableError(this.name, `${this.name} is down`);
    this.batches.push([...deltas]);
    return deltas.map((delta) => {
      const current = this.rows.get(delta.callId);
      const state = current ? mergeStates(current, delta.state) : delta.state;
      this.rows.set(delta.callId, state);
      return { callId: delta.callId, changed: true, location: `${this.name}:${delta.callId}`, state, folder: `room/${delta.callId}` };
    });
  }

  async read(): Promise<StoredCall | undefined> {
    return undefined;
  }

  async openCalls(): Promise<OpenCall[]> {
    return [];
  }

  async close(): Promise<void> {}
}

describe('where records live', () => {
  it('keeps both documents in one place when both locations are the same', () => {
    // Prepare / Act
    const plan = locationPlan({ ...FLAGS, transcriptionLocation: 'Call_Metadata' });

    // Assess
    expect(plan).toEqual([{ location: 'Call_Metadata', documents: ['metadata', 'transcription'] }]);
  });

  it('lists the metadata location first (the primary), then the transcription location', () => {
    // Prepare / Act
    const plan = locationPlan({ ...FLAGS, metadataLocation: 'postgres://db/calls', transcriptionLocation: 's3' });

    // Assess
    expect(plan).toEqual([
      { location: 'postgres://db/calls', documents: ['metadata'] },
      { location: 's3', documents: ['transcription'] },
    ]);
  });

  it('honours SAVE_METADATA and SAVE_TRANSCRIPTION independently', () => {
    // Prepare / Act / Assess
    expect(locationPlan({ ...FLAGS, saveMetadata: false })).toEqual([{ location: 'Transcriptions', documents: ['transcription'] }]);
    expect(locationPlan({ ...FLAGS, saveTranscription: false })).toEqual([{ location: 'Call_Metadata', documents: ['metadata'] }]);
    expect(locationPlan({ ...FLAGS, saveMetadata: false, saveTranscription: false })).toEqual([]);
  });

  it('keeps the record (no documents) in the recordings bucket when only recording is on', () => {
    // Prepare / Act / Assess
    expect(locationPlan({ ...FLAGS, saveMetadata: false, saveTranscription: false, callRecording: true })).toEqual([{ location: 's3', documents: [] }]);
  });
});

describe('a batch as deltas', () => {
  it('gives one delta per call: the merge of its messages', () => {
    // Prepare
    const batch = [message('RM_a', 1), message('RM_b', 1), message('RM_a', 3), message('RM_a', 2)];

    // Act
    const deltas = deltasOf(batch);

    // Assess
    expect(deltas.map((d) => d.callId)).toEqual(['RM_a', 'RM_b']);
    expect(deltas[0]?.state.conversation?.map((i) => i.id)).toEqual(['i2', 'i3']);
    expect(deltas[0]?.state.writers).toEqual({ 'job:AJ_1': 3 });
  });

  it('offers the fast path only when every message of the call came from one cumulative writer', () => {
    // Prepare
    const sweeper: FactMessage = { ...message('RM_a', 1), kind: 'sweeper', writer: 'sweeper:RM_a', cumulative: false, facts: { outcome: { source: 'sweeper', atMs: START } } };

    // Act
    const [worker] = deltasOf([message('RM_a', 1), message('RM_a', 2)]);
    const [mixed] = deltasOf([message('RM_a', 1), sweeper]);
    const [alone] = deltasOf([sweeper]);

    // Assess
    expect(worker?.cumulativeWriter).toEqual({ writer: 'job:AJ_1', seq: 2 });
    expect(mixed?.cumulativeWriter).toBeUndefined();
    expect(alone?.cumulativeWriter).toBeUndefined();
  });
});

describe('persisting a batch', () => {
  it('merges the whole batch into every location in one call each', async () => {
    // Prepare
    const metadata = new MemoryStore('metadata');
    const transcripts = new MemoryStore('transcripts');
    const batch = [message('RM_a', 1), message('RM_a', 2), message('RM_b', 1)];

    // Act
    const outcomes = await persistFacts(batch, [
      { location: 'metadata', backend: metadata },
      { location: 'transcripts', backend: transcripts },
    ]);

    // Assess
    expect(metadata.batches).toHaveLength(1);
    expect(transcripts.batches).toHaveLength(1);
    expect([...outcomes.values()].every((o) => o.error === undefined && o.locations.length === 2)).toBe(true);
    expect(outcomes.get('RM_a')?.merged?.location).toBe('metadata:RM_a');
  });

  it('fails the calls a location could not store, and still stores them where it could (merging again is harmless)', async () => {
    // Prepare
    const metadata = new MemoryStore('metadata');
    const transcripts = new MemoryStore('transcripts');
    transcripts.failing = true;

    // Act
    const outcomes = await persistFacts([message('RM_a', 2)], [
      { location: 'metadata', backend: metadata },
      { location: 'transcripts', backend: transcripts },
    ]);

    // Assess
    expect(outcomes.get('RM_a')?.error).toBeInstanceOf(BackendUnavailableError);
    expect(metadata.rows.has('RM_a')).toBe(true);
  });

  it('asks the recording step to start when a recording worker\'s first message is stored, and for nothing of a failed call', async () => {
    // Prepare
    const store = new MemoryStore('primary');
    const batch = [message('RM_a', 1)];
    const outcomes = await persistFacts(batch, [{ location: 'primary', backend: store }]);
    const failed = new Map(outcomes);
    failed.set('RM_a', { ...(outcomes.get('RM_a') as NonNullable<ReturnType<typeof outcomes.get>>), error: new Error('down') });

    // Act
    const commands = commandsFor(batch, outcomes, START + 10_000);
    const none = commandsFor(batch, failed, START + 10_000);

    // Assess
    expect(commands).toEqual([expect.objectContaining({ action: 'start', callId: 'RM_a', roomName: 'room', key: 'room/RM_a/call_room_RM_a.ogg', bucket: 'recordings', issuedAtMs: START + 10_000 })]);
    expect(none).toEqual([]);
  });

  it('asks for a discard when the sweeper closes a recorded call nobody answered', async () => {
    // Prepare
    const store = new MemoryStore('primary');
    await persistFacts([message('RM_c', 1)], [{ location: 'primary', backend: store }]);
    const closing: FactMessage = {
      v: MESSAGE_VERSION,
      kind: 'sweeper',
      callId: 'RM_c',
      writer: 'sweeper:RM_c',
      seq: START + 900_000,
      cumulative: false,
      sentAtMs: START + 900_000,
      facts: { ended: { source: 'sweeper', atMs: START + 1_000 }, outcome: { source: 'sweeper', atMs: START + 900_000 } },
    };

    // Act
    const outcomes = await persistFacts([closing], [{ location: 'primary', backend: store }]);
    const commands = commandsFor([closing], outcomes, START + 900_001);

    // Assess
    expect(stateOf(closing).outcome?.source).toBe('sweeper');
    expect(commands.map((c) => c.action)).toEqual(['discard']);
  });
});
