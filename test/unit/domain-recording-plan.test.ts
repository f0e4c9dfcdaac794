/**
 * The recording invariants of functions/domain/recording-plan.ts, proved over generated runs:
 * whichever party dies and whatever the queue lag,
 *   - the recording of a call that was answered is never left deleted, and
 *   - the recording of a call that is over and was never answered never stays in the call's folder.
 *
 * The run is a model of the pipeline: fact messages (two workers, the webhook, the sweeper)
 * arrive shuffled, duplicated and late; each delivery is merged, the plan's commands go into a
 * second queue, and the modelled recording function executes them at random later moments and
 * reports what it did as facts that join the message queue (the real one does the same through
 * SQS). The object store is modelled as "file at its key" / "file in quarantine".
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MESSAGE_VERSION, type FactMessage, type RecordingCommand } from '../../functions/contract/facts.ts';
import type { CallState } from '../../functions/contract/record.ts';
import { isAnswered, isFinal, mergeStates, stateOf } from '../../functions/domain/merge.ts';
import { recordingCommands } from '../../functions/domain/recording-plan.ts';
import { scenarioArb } from '../support/fact-arbitraries.ts';

const CALL = 'RM_plan';
const FOLDER = 'sip-room-1/20261124T004838.120_RM_plan';

interface World {
  started: boolean;
  /** The egress finished uploading (a stopped egress uploads after it stops). */
  ended: boolean;
  atKey: boolean;
  quarantined: boolean;
  /** The recording function's own marker: a discard happened (a later start undoes itself). */
  discardMarker: boolean;
}

function recorderFact(kind: string, n: number, facts: FactMessage['facts']): FactMessage {
  return { v: MESSAGE_VERSION, kind: 'recording', callId: CALL, writer: `recording:${kind}-${n}`, seq: 1, cumulative: false, sentAtMs: Date.UTC(2026, 10, 24) + n, facts };
}

/** egress_ended facts whose delivery means the stopped egress's file has just landed at its key. */
const lateUploads = new WeakSet<FactMessage>();

/** What the modelled recording function does with one command; returns the facts it reports. */
function execute(command: RecordingCommand, world: World, n: number): FactMessage[] {
  switch (command.action) {
    case 'start':
      if (world.discardMarker || world.started) return [];
      world.started = true;
      world.atKey = true;
      return [recorderFact('egress', n, { recording: { egress: { EG_1: { status: 'active', atMs: n, key: command.key } } } })];
    case 'finish':
      return world.started ? [recorderFact('result', n, { recording: { egress: { EG_1: { status: 'complete', atMs: n, key: command.key, sizeBytes: 1_000 } } } })] : [];
    case 'discard': {
      world.discardMarker = true;
      if (world.atKey) {
        world.atKey = false;
        world.quarantined = true;
      }
      const reported = [recorderFact('discard', n, { recording: { discardedAtMs: n } })];
      if (world.started && !world.ended) {
        // The stopped egress uploads later and LiveKit reports egress_ended (through the webhook).
        world.ended = true;
        const ended = recorderFact('egress-ended', n, { recording: { egress: { EG_1: { status: 'complete', atMs: n, key: command.key, sizeBytes: 10 } } } });
        lateUploads.add(ended);
        reported.push(ended);
      }
      return reported;
    }
    case 'restore':
      if (world.quarantined) {
        world.quarantined = false;
        world.atKey = true;
      }
      return [recorderFact('restore', n, { recording: { restoredAtMs: n } })];
  }
}

describe('recording plan', () => {
  it('keeps answered recordings and removes never-answered ones, whatever the order and lag', () => {
    const arb = scenarioArb(CALL).chain((scenario) =>
      fc.record({
        scenario: fc.constant({
          // The generated recording facts are replaced by the modelled recording function's own.
          messages: scenario.messages.filter((m) => m.kind !== 'recording'),
        }),
        order: fc.shuffledSubarray([...Array(scenario.messages.length).keys()], { minLength: scenario.messages.length, maxLength: scenario.messages.length }),
        choices: fc.array(fc.nat(1_000), { minLength: 200, maxLength: 200 }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ scenario, order, choices }) => {
        // Prepare
        const messages: FactMessage[] = order.map((i) => scenario.messages[i]).filter((m): m is FactMessage => m !== undefined);
        const commands: RecordingCommand[] = [];
        const world: World = { started: false, ended: false, atKey: false, quarantined: false, discardMarker: false };
        let state: CallState | undefined;
        let step = 0;
        const pick = () => choices[step++ % choices.length] ?? 0;
        // Act: deliver messages and run commands in a generated interleaving until both queues are empty
        while (messages.length > 0 || commands.length > 0) {
          const deliver = commands.length === 0 || (messages.length > 0 && pick() % 2 === 0);
          if (deliver) {
            const [message] = messages.splice(pick() % Math.min(messages.length, 3), 1);
            if (!message) continue;
            if (lateUploads.has(message)) world.atKey = true;
            state = state ? mergeStates(state, stateOf(message)) : stateOf(message);
            commands.push(...recordingCommands([message], state, FOLDER, step));
          } else {
            const [command] = commands.splice(0, 1);
            if (!command) continue;
            // Facts the recording function reports join the queue at a random (lagging) place.
            for (const reported of execute(command, world, step)) messages.splice(pick() % (messages.length + 1), 0, reported);
          }
        }
        // Assess
        if (!state || !state.recording?.requested) return;
        if (isAnswered(state) && world.started) expect(world.atKey).toBe(true);
        if (isFinal(state) && !isAnswered(state)) expect(world.atKey).toBe(false);
      }),
      { numRuns: 3_000 },
    );
  });

  it('asks for nothing when the worker does not record', () => {
    const message: FactMessage = {
      v: MESSAGE_VERSION,
      kind: 'started',
      callId: CALL,
      writer: 'job:AJ_1',
      seq: 1,
      cumulative: true,
      sentAtMs: 1,
      facts: { roomName: 'r', startedAtMs: 1 },
    };
    expect(recordingCommands([message], stateOf(message), FOLDER, 1)).toEqual([]);
  });

  it('starts once on the first message and names the key inside the record folder', () => {
    const message: FactMessage = {
      v: MESSAGE_VERSION,
      kind: 'started',
      callId: CALL,
      writer: 'job:AJ_1',
      seq: 1,
      cumulative: true,
      sentAtMs: 1,
      facts: { roomName: 'sip-room-1', startedAtMs: 1, recording: { requested: true, bucket: 'recordings' } },
    };
    const [command, ...rest] = recordingCommands([message], stateOf(message), FOLDER, 5);
    expect(rest).toEqual([]);
    expect(command).toMatchObject({ action: 'start', key: `${FOLDER}/call_sip-room-1_20261124T004838.120_RM_plan.ogg`, bucket: 'recordings', roomName: 'sip-room-1' });
  });
});
