/**
 * fast-check generators of what the parties of one call say: two workers' jobs (the second a
 * re-dispatch), the webhook, the recording function and the sweeper. Used by the pure merge
 * property test and by the per-backend property tests.
 */
import fc from 'fast-check';
import { MESSAGE_VERSION, type CallFacts, type ConversationItem, type FactMessage, type ToolCallFact, type TurnFact, type UsageEntryFact } from '../../functions/contract/facts.ts';
import { END_REASONS, END_SOURCES, FINAL_STATUSES, EGRESS_STATUSES } from '../../functions/contract/vocabulary.ts';

const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);

export interface Scenario {
  callId: string;
  messages: FactMessage[];
}

function message(callId: string, writer: string, seq: number, kind: FactMessage['kind'], cumulative: boolean, sentAtMs: number, facts: CallFacts): FactMessage {
  return { v: MESSAGE_VERSION, kind, callId, writer, seq, cumulative, sentAtMs, facts: JSON.parse(JSON.stringify(facts)) as CallFacts };
}

const text = fc.string({ maxLength: 12 });

const latencyMs = fc.option(fc.integer({ min: 1, max: 5_000 }), { nil: undefined });
/** A turn's latency, as the worker sends it (only measured metrics present), or none. */
const metricsArb = fc.option(
  fc
    .record({ endOfUtteranceDelayMs: latencyMs, transcriptionDelayMs: latencyMs, llmTtftMs: latencyMs, ttsTtfbMs: latencyMs, e2eMs: latencyMs })
    .map((m) => JSON.parse(JSON.stringify(m)) as NonNullable<ConversationItem['metrics']>),
  { nil: undefined },
);

const itemArb = (prefix: string) =>
  fc
    .record({
      id: fc.integer({ min: 0, max: 30 }).map((n) => `${prefix}${n}`),
      role: fc.constantFrom('user' as const, 'assistant' as const),
      content: text,
      interrupted: fc.boolean(),
      timestampMs: fc.integer({ min: START, max: START + 120_000 }),
      metrics: metricsArb,
    })
    .map(({ metrics, ...item }): ConversationItem => (metrics && Object.keys(metrics).length > 0 ? { ...item, metrics } : item));

/**
 * Per-turn latency facts beyond the transcript's: ids from a pool both jobs draw from, so two
 * writers sometimes report the same turn with different values (the merge must still agree).
 */
const sharedTurnArb = fc
  .record({
    id: fc.integer({ min: 0, max: 5 }).map((n) => `turn-${n}`),
    metrics: fc.record({ endOfUtteranceDelayMs: latencyMs, transcriptionDelayMs: latencyMs, llmTtftMs: latencyMs, ttsTtfbMs: latencyMs, e2eMs: latencyMs }),
  })
  .map(({ id, metrics }): TurnFact => JSON.parse(JSON.stringify({ id, ...metrics })) as TurnFact);

/** The turns a job's items measured, as the worker sends them (by item id), then the shared ones. */
function turnsOf(items: readonly ConversationItem[], shared: readonly TurnFact[]): TurnFact[] {
  const own = items.flatMap((item): TurnFact[] => (item.metrics ? [{ id: item.id, ...item.metrics }] : []));
  return [...own, ...shared];
}

/** The models a job may use: usage is cumulative per writer, so each message's counts only grow. */
const MODELS = [
  { kind: 'llm' as const, provider: 'openai', model: 'gpt-4.1-mini' },
  { kind: 'tts' as const, provider: 'cartesia', model: 'sonic-2' },
  { kind: 'stt' as const, model: 'nova-3' },
];

function usageAt(step: number, perStep: readonly number[]): UsageEntryFact[] {
  return MODELS.slice(0, perStep.length).map((m, i) => {
    const n = (perStep[i] ?? 0) * (step + 1);
    if (m.kind === 'llm') return { ...m, promptTokens: n * 10, completionTokens: n, promptCachedTokens: n * 2 };
    if (m.kind === 'tts') return { ...m, characters: n * 7, audioMs: n * 300 };
    return { ...m, audioMs: n * 1_000 };
  });
}

const toolCallArb = (prefix: string) =>
  fc.record({
    id: fc.integer({ min: 0, max: 6 }).map((n) => `${prefix}call_${n}`),
    name: fc.constantFrom('end_call', 'lookup_order'),
    arguments: fc.constantFrom('{}', '{"order":1}'),
    output: fc.option(text, { nil: undefined }),
    atMs: fc.integer({ min: START, max: START + 120_000 }),
  }).map((call): ToolCallFact => JSON.parse(JSON.stringify(call)) as ToolCallFact);

/**
 * One worker job's messages: cumulative snapshots of its growing view. `steps` decides, per
 * message, how many new items it adds and whether the answer or the end happened by then.
 */
function workerArb(callId: string, writer: string, roomName: string, offsetMs: number) {
  return fc
    .record({
      items: fc.uniqueArray(itemArb(`${writer}-`), { selector: (i) => i.id, maxLength: 8 }),
      count: fc.integer({ min: 1, max: 5 }),
      answerAt: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
      finalAt: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
      status: fc.constantFrom(...FINAL_STATUSES),
      userNumber: fc.constantFrom('+14155550100', '+919876543210'),
      startSkewMs: fc.integer({ min: -2_000, max: 2_000 }),
      endReason: fc.option(fc.constantFrom(...END_REASONS), { nil: undefined }),
      sipCode: fc.option(fc.constantFrom(404, 480, 486, 603), { nil: undefined }),
      usage: fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 3 }),
      tools: fc.uniqueArray(toolCallArb(`${writer}-`), { selector: (c) => c.id, maxLength: 3 }),
      amd: fc.option(fc.constantFrom('human', 'machine-vm', 'uncertain'), { nil: undefined }),
      ruleId: fc.option(fc.constantFrom('SDR_a', 'SDR_b'), { nil: undefined }),
      // SAVE_TRANSCRIPTION: without it the job sends only the turns' latency, not the items.
      transcript: fc.boolean(),
      sharedTurns: fc.uniqueArray(sharedTurnArb, { selector: (t) => t.id, maxLength: 3 }),
    })
    .map(({ items, count, answerAt, finalAt, status, userNumber, startSkewMs, endReason, sipCode, usage, tools, amd, ruleId, transcript, sharedTurns }) => {
      const allTurns = turnsOf(items, sharedTurns);
      const messages: FactMessage[] = [];
      for (let step = 0; step < count; step++) {
        const at = START + offsetMs + step * 2_000;
        const answered = answerAt !== undefined && step >= answerAt;
        const final = finalAt !== undefined && step >= finalAt && step === count - 1;
        const conversation: ConversationItem[] = answered ? items.slice(0, Math.ceil(((step + 1) * items.length) / count)) : [];
        // Cumulative, like the worker's: each message's turns are a prefix of the job's list.
        const turns = answered ? allTurns.slice(0, Math.ceil(((step + 1) * allTurns.length) / count)) : [];
        messages.push(
          message(callId, writer, step + 1, step === 0 ? 'started' : final ? (answered ? 'ended' : 'unanswered') : 'progress', true, at, {
            roomName,
            startedAtMs: START + startSkewMs,
            direction: { value: 'inbound', atMs: START + offsetMs },
            userNumber: { value: userNumber, atMs: at },
            jobId: { value: writer.split(':')[1] ?? writer, atMs: START + offsetMs },
            roomSid: { value: callId, atMs: START + offsetMs },
            ...(ruleId ? { dispatchRuleId: { value: ruleId, atMs: START + offsetMs } } : {}),
            ...(answered ? { answeredAtMs: START + offsetMs + (answerAt ?? 0) * 2_000 } : {}),
            ...(final && sipCode !== undefined && !answered ? { sipStatus: { code: sipCode, atMs: at } } : {}),
            ...(final
              ? {
                  ended: { atMs: at, source: 'worker' as const, reason: 'caller hung up', ...(endReason ? { endReason, evidence: 'close:participant_disconnected' } : {}) },
                  outcome: { source: 'worker' as const, atMs: at, status: answered ? 'completed' : status, ...(endReason ? { endReason } : {}) },
                }
              : {}),
            ...(usage.length > 0 ? { usage: { [writer]: usageAt(step, usage) } } : {}),
            ...(answered && tools.length > 0 ? { toolCalls: tools.slice(0, Math.ceil(((step + 1) * tools.length) / count)) } : {}),
            ...(amd && step > 0 ? { answeringMachine: { result: amd, atMs: START + offsetMs + 2_000, isMachine: amd.startsWith('machine') } } : {}),
            recording: { requested: true, bucket: 'recordings' },
            ...(answered && transcript ? { conversation } : {}),
            ...(turns.length > 0 ? { turns } : {}),
          }),
        );
      }
      return messages;
    });
}

/** Facts the webhook, the recording function and the sweeper contribute (each message its own writer). */
function othersArb(callId: string, roomName: string) {
  const webhook = fc.oneof(
    fc.integer({ min: 0, max: 60_000 }).map((d) =>
      message(callId, `webhook:pl-${d}`, 1, 'webhook', false, START + d, {
        roomName,
        startedAtMs: START,
        ended: { atMs: START + d, source: 'participant_left', reason: 'sip participant left', ...(d % 3 === 0 ? {} : { endReason: d % 3 === 1 ? 'caller_hangup' : 'agent_hangup', evidence: 'disconnect:CLIENT_INITIATED' }) },
      }),
    ),
    fc.integer({ min: 20_000, max: 90_000 }).map((d) =>
      message(callId, `webhook:rf-${d}`, 1, 'webhook', false, START + d, {
        roomName,
        startedAtMs: START,
        ended: { atMs: START + d, source: 'room_finished' },
        outcome: { source: 'webhook', atMs: START + d, reason: 'worker lost', endReason: 'worker_lost', evidence: 'room_finished' },
      }),
    ),
  );
  const recording = fc.oneof(
    fc
      .record({
        id: fc.constantFrom('EG_a', 'EG_b'),
        status: fc.constantFrom(...EGRESS_STATUSES),
        size: fc.option(fc.nat(10_000), { nil: undefined }),
        duration: fc.option(fc.nat(600_000), { nil: undefined }),
        d: fc.nat(90_000),
      })
      .map(({ id, status, size, duration, d }) =>
        message(callId, `recording:${id}-${status}-${d}`, 1, 'recording', false, START + d, {
          recording: {
            egress: {
              [id]: { status, atMs: START + d, key: `room/${callId}/call.ogg`, ...(size === undefined ? {} : { sizeBytes: size }), ...(duration === undefined ? {} : { durationMs: duration }) },
            },
          },
        }),
      ),
    fc.nat(90_000).map((d) => message(callId, `recording:discard-${d}`, 1, 'recording', false, START + d, { recording: { discardedAtMs: START + d } })),
    fc.nat(90_000).map((d) => message(callId, `recording:restore-${d}`, 1, 'recording', false, START + d, { recording: { restoredAtMs: START + d } })),
    fc.nat(90_000).map((d) => message(callId, `recording:error-${d}`, 1, 'recording', false, START + d, { recording: { startError: { atMs: START + d, error: 'egress unavailable' } } })),
  );
  const sweeper = fc.integer({ min: 30_000, max: 600_000 }).map((d) =>
    message(callId, `sweeper:${d}`, 1, 'sweeper', false, START + d, {
      ended: { atMs: START + d - 30_000, source: END_SOURCES[3] },
      outcome: { source: 'sweeper', atMs: START + d, reason: 'worker lost' },
    }),
  );
  return fc.array(fc.oneof(webhook, recording, sweeper), { maxLength: 6 });
}

/** Every message one call's parties send, in send order per writer. */
export function scenarioArb(callId: string, roomName = 'sip-room-1'): fc.Arbitrary<Scenario> {
  return fc
    .record({
      first: workerArb(callId, 'job:AJ_first', roomName, 0),
      second: fc.option(workerArb(callId, 'job:AJ_second', roomName, 30_000), { nil: undefined }),
      others: othersArb(callId, roomName),
    })
    .map(({ first, second, others }) => ({ callId, messages: [...first, ...(second ?? []), ...others] }));
}

/**
 * A delivery schedule for a scenario: the messages shuffled, some duplicated, cut into
 * batches. Each batch is what one persist invocation receives.
 */
export function deliveryArb(scenario: Scenario): fc.Arbitrary<FactMessage[][]> {
  const n = scenario.messages.length;
  return fc
    .record({
      order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      duplicates: fc.array(fc.nat(Math.max(0, n - 1)), { maxLength: 4 }),
      cuts: fc.array(fc.nat(n + 4), { maxLength: 4 }),
    })
    .map(({ order, duplicates, cuts }) => {
      const sequence = [...order, ...duplicates].map((i) => scenario.messages[i] as FactMessage);
      const points = [...new Set(cuts.filter((c) => c > 0 && c < sequence.length))].sort((a, b) => a - b);
      const batches: FactMessage[][] = [];
      let from = 0;
      for (const point of [...points, sequence.length]) {
        if (point > from) batches.push(sequence.slice(from, point));
        from = point;
      }
      return batches;
    });
}
