/**
 * Call insights in the stored record: how the new facts merge (end reason, SIP status,
 * identifiers, usage per writer, tool calls, per-turn latency, answering machine) and how the
 * metadata and transcript render them, next to the spec's fields they must not disturb.
 */
import { EgressStatus } from 'livekit-server-sdk';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, MESSAGE_VERSION, type CallFacts, type FactMessage } from '../../functions/contract/facts.ts';
import type { CallState } from '../../functions/contract/record.ts';
import { EGRESS_STATUSES } from '../../functions/contract/vocabulary.ts';
import { endReasonFromDisconnect, sumUsage, type PriceTable, type UsageEntry } from '../../functions/domain/insights/index.ts';
import { mergeAll, stateOf } from '../../functions/domain/merge.ts';
import { renderMetadata, renderTranscription } from '../../functions/domain/render.ts';
import { DISCONNECT_REASONS, webhookFacts } from '../../functions/domain/webhook-facts.ts';
import { deliveryArb, scenarioArb } from '../support/fact-arbitraries.ts';

const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);
const CALL = 'RM_insight';
const FOLDER = 'room/20261123T191838.120_RM_insight';

function message(writer: string, seq: number, facts: CallFacts, kind: FactMessage['kind'] = 'progress', sentAtMs = START + seq * 1_000): FactMessage {
  return { v: MESSAGE_VERSION, kind, callId: CALL, writer, seq, cumulative: writer.startsWith('job:'), sentAtMs, facts };
}

/** A worker's messages of an answered call: started, then its final word. */
function answeredCall(writer: string, final: Partial<Omit<NonNullable<CallFacts['outcome']>, 'source'>>, extra: CallFacts = {}): FactMessage[] {
  const base: CallFacts = { roomName: 'room', startedAtMs: START, direction: { value: 'inbound', atMs: START }, answeredAtMs: START + 1_000 };
  const end = { atMs: START + 60_000, ...final };
  return [
    message(writer, 1, base, 'started'),
    message(writer, 2, { ...base, ...extra, ended: { source: 'worker', ...end }, outcome: { source: 'worker', status: 'completed', ...end } }, 'ended'),
  ];
}

const render = (messages: readonly FactMessage[], options = {}) => renderMetadata(mergeAll(messages.map(stateOf)), FOLDER, 'UTC', options);

describe('the contract', () => {
  it('still reads a version-2 message without any of the insight fields', () => {
    const older = { v: 2, kind: 'ended', callId: CALL, writer: 'job:AJ_old:1', seq: 3, cumulative: true, sentAtMs: START, facts: { outcome: { source: 'worker', atMs: START, status: 'completed', reason: 'job ended' } } };
    expect(decodeMessage(JSON.stringify(older)).facts.outcome).toEqual(older.facts.outcome);
  });

  it('carries every insight field through encode and decode unchanged', () => {
    const facts: CallFacts = {
      jobId: { value: 'AJ_1', atMs: START },
      roomSid: { value: CALL, atMs: START },
      dispatchRuleId: { value: 'SDR_1', atMs: START },
      sipStatus: { code: 486, text: 'Busy Here', atMs: START },
      ended: { source: 'worker', atMs: START, endReason: 'busy', evidence: 'sip:486' },
      outcome: { source: 'worker', atMs: START, status: 'busy', endReason: 'busy', evidence: 'sip:486' },
      usage: { 'job:AJ_1:a': [{ kind: 'llm', provider: 'openai', model: 'gpt-4.1-mini', promptTokens: 10, completionTokens: 2, promptCachedTokens: 0 }] },
      toolCalls: [{ id: 'call_1', name: 'end_call', arguments: '{}', output: 'done', isError: false, atMs: START }],
      answeringMachine: { result: 'human', isMachine: false, atMs: START },
      conversation: [{ id: 'i1', role: 'assistant', content: 'hi', interrupted: false, timestampMs: START, metrics: { llmTtftMs: 300, e2eMs: 900 } }],
      turns: [{ id: 'i1', llmTtftMs: 300, e2eMs: 900 }],
    };
    const message = { v: MESSAGE_VERSION, kind: 'unanswered' as const, callId: CALL, writer: 'job:AJ_1:a', seq: 1, cumulative: true, sentAtMs: START, facts };
    expect(decodeMessage(encodeMessage(message)).facts).toEqual(facts);
  });

  it('refuses an end reason outside the taxonomy and a SIP status that is not one', () => {
    const bad = (facts: unknown) => () => encodeMessage({ v: MESSAGE_VERSION, kind: 'ended', callId: CALL, writer: 'job:x', seq: 1, sentAtMs: START, facts } as never);
    expect(bad({ outcome: { source: 'worker', atMs: START, endReason: 'hung_up' } })).toThrow(/invalid fact message/);
    expect(bad({ sipStatus: { code: 99, atMs: START } })).toThrow(/invalid fact message/);
  });
});

describe('end reason and status', () => {
  it('keeps the worker’s end reason over LiveKit’s participant_left and over an inferred worker_lost', () => {
    // Prepare: the worker says the agent hung up; LiveKit says the caller's leg was removed; the room finished
    const worker = answeredCall('job:AJ_1:a', { endReason: 'agent_hangup', evidence: 'hangup_tool', reason: 'agent hung up (end_call tool)' });
    const left = webhookFacts({ event: 'participant_left', id: 'EV_pl', createdAt: 1_795_461_600n, room: { sid: CALL }, participant: { kind: 3, disconnectReason: 1 } }, { nowMs: START });
    const finished = webhookFacts({ event: 'room_finished', id: 'EV_rf', createdAt: 1_795_461_700n, room: { sid: CALL, name: 'room' } }, { nowMs: START });
    if (left.kind !== 'facts' || finished.kind !== 'facts') throw new Error('webhook facts expected');
    // Act + Assess: whatever the order
    for (const order of [[...worker, left.message, finished.message], [finished.message, left.message, ...worker]]) {
      expect(render(order)).toMatchObject({ status: 'completed', end_reason: 'agent_hangup', end_reason_detail: 'agent hung up (end_call tool)' });
    }
    // Without the worker's final word: LiveKit's room_finished infers a lost worker.
    expect(render([worker[0] as FactMessage, left.message, finished.message])).toMatchObject({ status: 'completed', end_reason: 'worker_lost' });
  });

  it('renders a session error as failed / agent_error even when the recording completed', () => {
    const worker = answeredCall('job:AJ_1:a', { status: 'failed', endReason: 'agent_error', reason: 'agent session closed (error: llm_error)' });
    const egress = message('recording:EG_1', 1, { recording: { egress: { EG_1: { status: 'complete', atMs: START + 61_000, key: 'k.ogg', sizeBytes: 10, durationMs: 59_000 } } } }, 'recording');
    expect(render([...worker, egress])).toMatchObject({ status: 'failed', end_reason: 'agent_error', recording_status: 'complete' });
    // An older worker that said completed with agent_error (no status of its own) is not shown as completed either.
    const older = answeredCall('job:AJ_2:a', { status: 'completed', endReason: 'agent_error' });
    expect(render(older)?.status).toBe('failed');
  });

  it('derives the end reason of an older worker’s unanswered outcome from its status', () => {
    for (const [status, endReason] of [
      ['no_answer', 'no_answer'],
      ['busy', 'busy'],
      ['declined', 'declined'],
      ['abandoned', 'caller_hangup'],
    ] as const) {
      const base: CallFacts = { roomName: 'room', startedAtMs: START, direction: { value: 'outbound', atMs: START } };
      const msgs = [message('job:old', 1, { ...base, outcome: { source: 'worker', atMs: START + 5_000, status } }, 'unanswered')];
      expect(render(msgs)).toMatchObject({ status, end_reason: endReason, answered: false });
    }
  });

  it('takes the SIP participant’s every DisconnectReason from participant_left', () => {
    DISCONNECT_REASONS.forEach((name, value) => {
      const facts = webhookFacts({ event: 'participant_left', id: `EV_${value}`, room: { sid: CALL }, participant: { kind: 3, disconnectReason: value } }, { nowMs: START });
      if (facts.kind !== 'facts') throw new Error('facts expected');
      const expected = value === 0 ? undefined : endReasonFromDisconnect(name);
      expect(facts.message.facts.ended?.endReason, name).toBe(expected);
    });
  });

  it('renders the SIP status code and text when known', () => {
    const base: CallFacts = { roomName: 'room', startedAtMs: START, direction: { value: 'outbound', atMs: START }, sipStatus: { code: 486, text: 'Busy Here', atMs: START + 3_000 } };
    const msgs = [message('job:AJ_1:a', 1, { ...base, outcome: { source: 'worker', atMs: START + 3_000, status: 'busy', endReason: 'busy', evidence: 'sip:486' } }, 'unanswered')];
    expect(render(msgs)).toMatchObject({ status: 'busy', end_reason: 'busy', sip_status_code: 486, sip_status: 'Busy Here' });
  });
});

describe('recording facts from egress_ended', () => {
  it('maps every LiveKit EgressStatus value to its own recording_status, with duration, size and egress id', () => {
    const answered = answeredCall('job:AJ_1:a', { endReason: 'caller_hangup' });
    for (let value = 0; value <= 6; value++) {
      // Prepare: egress_ended as LiveKit sends it (the enum as a number; the file in ns and bytes)
      const event = webhookFacts(
        {
          event: 'egress_ended',
          id: `EV_eg${value}`,
          createdAt: 1_795_461_700n,
          egressInfo: { egressId: 'EG_main', roomId: CALL, status: value, fileResults: [{ filename: 'room/x/call.ogg', size: 48_000n, duration: 59_500_000_000n }] },
        },
        { nowMs: START },
      );
      if (event.kind !== 'facts') throw new Error(`facts expected for ${value}`);
      // Act
      const metadata = render([...answered, event.message]);
      // Assess: LiveKit's own name for the number, in the metadata's words (COMPLETE = 3 is `complete`)
      const name = EgressStatus[value]?.replace(/^EGRESS_/, '').toLowerCase();
      expect(metadata?.recording_status, String(value)).toBe(name);
      expect(metadata?.recording_status).toBe(EGRESS_STATUSES[value]);
      expect(metadata?.egress_id).toBe('EG_main');
      const over = value >= 3;
      expect(metadata?.recording_size_bytes).toBe(over ? 48_000 : undefined);
      expect(metadata?.recording_duration_ms).toBe(over ? 59_500 : undefined);
      expect(metadata?.recording_duration).toBe(over ? 59.5 : undefined);
    }
  });
});

describe('usage', () => {
  const llmUsage = (promptTokens: number, completionTokens: number): UsageEntry => ({ kind: 'llm', provider: 'openai', model: 'gpt-4.1-mini', promptTokens, completionTokens });

  it('adds a re-dispatched job’s usage, and never doubles a duplicate or an earlier cumulative report', () => {
    // Prepare: job 1 reports twice (cumulative), job 2 once; job 1's last message arrives twice
    const first = [message('job:AJ_1:a', 1, { usage: { 'job:AJ_1:a': [llmUsage(100, 10)] } }), message('job:AJ_1:a', 2, { usage: { 'job:AJ_1:a': [llmUsage(250, 30)] } })];
    const second = [message('job:AJ_2:b', 1, { usage: { 'job:AJ_2:b': [llmUsage(50, 5), { kind: 'stt', model: 'nova-3', audioMs: 4_000 }] } })];
    const call = answeredCall('job:AJ_2:b', { endReason: 'caller_hangup' });
    // Act
    const metadata = render([...call, ...first, first[1] as FactMessage, ...second, first[0] as FactMessage]);
    // Assess
    expect(metadata?.usage).toEqual([
      { type: 'llm_usage', provider: 'openai', model: 'gpt-4.1-mini', input_tokens: 300, input_cached_tokens: 0, output_tokens: 35 },
      { type: 'stt_usage', model: 'nova-3', audio_duration_ms: 4_000 },
    ]);
  });

  it('estimates the cost with a price table, naming what it cannot price', () => {
    const table: PriceTable = { currency: 'USD', models: { 'openai/gpt-4.1-mini': { promptPer1M: 0.4, completionPer1M: 1.6 } } };
    const call = answeredCall('job:AJ_1:a', { endReason: 'caller_hangup' }, { usage: { 'job:AJ_1:a': [llmUsage(1_000_000, 500_000), { kind: 'stt', model: 'nova-3', audioMs: 60_000 }] } });
    expect(render(call)?.estimated_cost).toBeUndefined();
    expect(render(call, { priceTable: table })?.estimated_cost).toEqual({ currency: 'USD', total: 1.2, lines: [{ model: 'openai/gpt-4.1-mini', kind: 'llm', cost: 1.2 }], unpriced: ['nova-3'] });
  });

  it('is, whatever the delivery, the sum over writers of each writer’s newest report', () => {
    const arb = scenarioArb(CALL).chain((scenario) => deliveryArb(scenario).map((batches) => ({ scenario, batches })));
    fc.assert(
      fc.property(arb, ({ scenario, batches }) => {
        // Prepare: per writer, the usage of its highest-numbered message
        const newest = new Map<string, { seq: number; usage: UsageEntry[] }>();
        for (const m of scenario.messages) {
          const usage = m.facts.usage?.[m.writer];
          const current = newest.get(m.writer);
          if (usage && (!current || current.seq < m.seq)) newest.set(m.writer, { seq: m.seq, usage });
        }
        const expected = sumUsage([...newest.values()].map((n) => n.usage));
        // Act
        let stored: CallState | undefined;
        for (const batch of batches) stored = stored ? mergeAll([stored, ...batch.map(stateOf)]) : mergeAll(batch.map(stateOf));
        // Assess
        const total = sumUsage(Object.values(stored?.usage ?? {}));
        expect(total).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  }, 60_000);
});

describe('latency, tool calls, identifiers and answering machine', () => {
  it('summarizes per-turn latency per call and keeps each turn’s metrics beside the spec’s item fields', () => {
    // Prepare: three assistant turns and a user turn with measured delays
    const items = [
      { id: 'u1', role: 'user' as const, content: 'hi', interrupted: false, timestampMs: START + 1_000, metrics: { endOfUtteranceDelayMs: 400, transcriptionDelayMs: 200 } },
      { id: 'a1', role: 'assistant' as const, content: 'hello', interrupted: false, timestampMs: START + 2_000, metrics: { llmTtftMs: 300, ttsTtfbMs: 100, e2eMs: 900 } },
      { id: 'a2', role: 'assistant' as const, content: 'sure', interrupted: false, timestampMs: START + 3_000, metrics: { llmTtftMs: 500, e2eMs: 1_500 } },
      { id: 'a3', role: 'assistant' as const, content: 'bye', interrupted: true, timestampMs: START + 4_000 },
    ];
    const call = answeredCall('job:AJ_1:a', { endReason: 'caller_hangup' }, { conversation: items });
    const state = mergeAll(call.map(stateOf));
    // Act
    const metadata = renderMetadata(state, FOLDER, 'UTC');
    const transcript = renderTranscription(state, 'UTC');
    // Assess
    expect(metadata?.latency).toEqual({
      end_of_utterance_delay: { p50_ms: 400, p90_ms: 400, max_ms: 400, count: 1 },
      transcription_delay: { p50_ms: 200, p90_ms: 200, max_ms: 200, count: 1 },
      llm_ttft: { p50_ms: 300, p90_ms: 500, max_ms: 500, count: 2 },
      tts_ttfb: { p50_ms: 100, p90_ms: 100, max_ms: 100, count: 1 },
      e2e: { p50_ms: 900, p90_ms: 1_500, max_ms: 1_500, count: 2 },
    });
    expect(transcript?.conversation[1]).toEqual({ role: 'assistant', content: 'hello', interrupted: false, timestamp: '2026-11-23T19:18:40.120Z', metrics: { llm_ttft_ms: 300, tts_ttfb_ms: 100, e2e_ms: 900 } });
    // An item without metrics has exactly the spec's keys.
    expect(Object.keys(transcript?.conversation[3] ?? {})).toEqual(['role', 'content', 'interrupted', 'timestamp']);
  });

  it('summarizes latency from the turn facts alone (metadata without transcripts), counting a turn the transcript also holds once', () => {
    // Prepare: job 1 sent only turn facts; job 2 sent turns and its transcript (same ids, same values);
    // an older record's transcript item carries metrics no turn fact names
    const first = answeredCall('job:AJ_1:a', { endReason: 'caller_hangup' }, { turns: [{ id: 'a1', llmTtftMs: 300, e2eMs: 900 }, { id: 'u1', endOfUtteranceDelayMs: 400 }] });
    const secondItems = [
      { id: 'a2', role: 'assistant' as const, content: 'sure', interrupted: false, timestampMs: START + 3_000, metrics: { llmTtftMs: 500 } },
      { id: 'a3', role: 'assistant' as const, content: 'ok', interrupted: false, timestampMs: START + 4_000, metrics: { llmTtftMs: 700 } },
    ];
    const second = answeredCall('job:AJ_2:b', { endReason: 'caller_hangup' }, { turns: [{ id: 'a2', llmTtftMs: 500 }], conversation: secondItems });
    // Act
    const alone = render(first);
    const both = render([...first, ...second]);
    // Assess: no transcript was needed; a2 counts once, a3 (transcript only) counts too
    expect(alone?.latency).toEqual({
      end_of_utterance_delay: { p50_ms: 400, p90_ms: 400, max_ms: 400, count: 1 },
      llm_ttft: { p50_ms: 300, p90_ms: 300, max_ms: 300, count: 1 },
      e2e: { p50_ms: 900, p90_ms: 900, max_ms: 900, count: 1 },
    });
    expect(both?.latency?.llm_ttft).toEqual({ p50_ms: 500, p90_ms: 700, max_ms: 700, count: 3 });
  });

  it('merges two reports of one turn that disagree to the same value in any order', () => {
    // Prepare: two jobs name the same turn id with different values
    const a = answeredCall('job:AJ_1:a', {}, { turns: [{ id: 't1', llmTtftMs: 300 }] });
    const b = answeredCall('job:AJ_2:b', {}, { turns: [{ id: 't1', llmTtftMs: 450 }] });
    // Act
    const ab = mergeAll([...a, ...b].map(stateOf));
    const ba = mergeAll([...b, ...a].map(stateOf));
    // Assess: one turn, the same one both ways
    expect(ab.turns).toHaveLength(1);
    expect(ab.turns).toEqual(ba.turns);
  });

  it('renders no latency, usage, tool calls or answering machine for a call that measured none', () => {
    const metadata = render(answeredCall('job:AJ_1:a', { endReason: 'caller_hangup' }));
    for (const key of ['latency', 'usage', 'estimated_cost', 'tool_calls', 'answering_machine', 'sip_status_code', 'egress_id']) expect(metadata, key).not.toHaveProperty(key);
  });

  it('merges tool calls by id, keeps identifiers, and renders the answering machine’s verdict', () => {
    const call = answeredCall(
      'job:AJ_1:a',
      { endReason: 'voicemail' },
      {
        jobId: { value: 'AJ_1', atMs: START },
        roomSid: { value: CALL, atMs: START },
        sipCallId: { value: 'SCL_1', atMs: START },
        outboundTrunkId: { value: 'ST_out', atMs: START },
        dispatchRuleId: { value: 'SDR_1', atMs: START },
        answeringMachine: { result: 'machine-vm', isMachine: true, atMs: START + 4_000 },
        toolCalls: [{ id: 'call_1', name: 'end_call', arguments: '{}', output: 'The call has been ended.', atMs: START + 50_000 }],
      },
    );
    // The re-dispatched job reports the same tool call again and one of its own.
    const again = message('job:AJ_2:b', 1, {
      toolCalls: [
        { id: 'call_1', name: 'end_call', arguments: '{}', output: 'The call has been ended.', atMs: START + 50_000 },
        { id: 'call_0', name: 'lookup', arguments: '{"q":1}', atMs: START + 20_000 },
      ],
    });
    const metadata = render([...call, again]);
    expect(metadata).toMatchObject({
      end_reason: 'voicemail',
      job_id: 'AJ_1',
      room_sid: CALL,
      sip_call_id: 'SCL_1',
      trunk_id: 'ST_out',
      dispatch_rule_id: 'SDR_1',
      answering_machine: { result: 'machine-vm', is_machine: true },
    });
    expect(metadata?.tool_calls?.map((c) => c.id)).toEqual(['call_0', 'call_1']);
  });
});
