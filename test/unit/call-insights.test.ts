/**
 * The insight lines `calldata calls show` prints and the browse page shows
 * (functions/domain/call-insights.ts): one wording for the end reason, the SIP status, the
 * latency summary, the usage and the estimated cost, and nothing for what a call did not measure.
 */
import { describe, expect, it } from 'vitest';
import { MESSAGE_VERSION, type FactMessage } from '../../functions/contract/facts.ts';
import type { MetadataDocument } from '../../functions/contract/record.ts';
import { insightLines } from '../../functions/domain/call-insights.ts';
import { metadataOf } from '../../functions/domain/calls.ts';
import { stateOf } from '../../functions/domain/merge.ts';
import { renderMetadata } from '../../functions/domain/render.ts';

const BASE: MetadataDocument = {
  call_id: 'RM_x',
  room_name: 'room',
  call_direction: 'inbound',
  agent_number: null,
  user_number: null,
  start_time: '2026-11-23T19:18:38.120Z',
  end_time: '2026-11-23T19:19:38.120Z',
  duration: 60,
  timezone: 'UTC',
  answered: true,
  status: 'completed',
};

describe('insight lines', () => {
  it('say every insight of a call in a fixed order, in words', () => {
    // Prepare: a call with every insight
    const metadata: MetadataDocument = {
      ...BASE,
      status: 'failed',
      end_reason: 'agent_error',
      end_reason_detail: 'agent session closed (error: llm_error)',
      sip_status_code: 503,
      sip_status: 'Service Unavailable',
      latency: { e2e: { p50_ms: 900, p90_ms: 1_500, max_ms: 1_700, count: 12 }, llm_ttft: { p50_ms: 300, p90_ms: 500, max_ms: 650, count: 1 } },
      usage: [
        { type: 'llm_usage', provider: 'openai', model: 'gpt-4.1-mini', input_tokens: 12_345, input_cached_tokens: 1_000, output_tokens: 1 },
        { type: 'tts_usage', model: 'sonic-2', characters_count: 1, audio_duration_ms: 1_250 },
        { type: 'stt_usage', provider: 'deepgram', model: 'nova-3', audio_duration_ms: 61_040 },
      ],
      estimated_cost: { currency: 'EUR', total: 1234.5, lines: [{ model: 'openai/gpt-4.1-mini', kind: 'llm', cost: 1234.5 }], unpriced: ['deepgram/nova-3', 'sonic-2'] },
    };
    // Act
    const lines = insightLines(metadata);
    // Assess: latency in LiveKit's metric order whatever the document's key order; counts with separators
    expect(lines).toEqual([
      { field: 'end_reason', label: 'Ended', lines: ['agent_error — agent session closed (error: llm_error)'] },
      { field: 'sip_status', label: 'SIP status', lines: ['503 Service Unavailable'] },
      { field: 'latency', label: 'Latency', lines: ['LLM first token: p50 300 ms · p90 500 ms · max 650 ms (1 turn)', 'end to end: p50 900 ms · p90 1500 ms · max 1700 ms (12 turns)'] },
      {
        field: 'usage',
        label: 'Usage',
        lines: ['LLM openai/gpt-4.1-mini: 12,345 input tokens (1,000 cached), 1 output token', 'TTS sonic-2: 1 character, 1.3 s of audio', 'STT deepgram/nova-3: 61 s of audio'],
      },
      { field: 'estimated_cost', label: 'Estimated cost', lines: ['1,234.5 EUR in total', 'openai/gpt-4.1-mini (llm): 1,234.5 EUR', 'not priced: deepgram/nova-3, sonic-2'] },
    ]);
  });

  it('say only what is known: a detail without a reason, a code without a text, nothing for a call that measured nothing', () => {
    expect(insightLines({ ...BASE, end_reason_detail: 'job ended' })).toEqual([{ field: 'end_reason', label: 'Ended', lines: ['job ended'] }]);
    expect(insightLines({ ...BASE, end_reason: 'busy', sip_status_code: 486 })).toEqual([
      { field: 'end_reason', label: 'Ended', lines: ['busy'] },
      { field: 'sip_status', label: 'SIP status', lines: ['486'] },
    ]);
    expect(insightLines({ ...BASE, latency: {}, usage: [] })).toEqual([]);
    expect(insightLines(undefined)).toEqual([]);
  });
});

describe('the metadata a reader shows', () => {
  it('has every field in the order render writes it, whatever order the store kept the JSON keys in', () => {
    // Prepare: a call with every optional field, rendered, and stored with its keys reversed (as some databases return JSON)
    const at = Date.UTC(2026, 10, 23, 19, 18, 38, 120);
    const seen = (value: string) => ({ value, atMs: at });
    const message: FactMessage = {
      v: MESSAGE_VERSION,
      kind: 'ended',
      callId: 'RM_order',
      writer: 'job:AJ_order:a',
      seq: 2,
      cumulative: true,
      sentAtMs: at + 60_000,
      facts: {
        roomName: 'room',
        startedAtMs: at,
        direction: { value: 'inbound', atMs: at },
        inboundTrunkId: seen('ST_in'),
        agentNumber: seen('+14155550100'),
        userNumber: seen('+919876543210'),
        sipCallId: seen('SCL_1'),
        jobId: seen('AJ_order'),
        roomSid: seen('RM_order'),
        dispatchRuleId: seen('SDR_1'),
        answeredAtMs: at + 1_000,
        sipStatus: { code: 200, text: 'OK', atMs: at },
        ended: { source: 'worker', atMs: at + 60_000, reason: 'caller hung up', endReason: 'caller_hangup' },
        outcome: { source: 'worker', atMs: at + 60_000, status: 'completed', reason: 'caller hung up', endReason: 'caller_hangup' },
        recording: { requested: true, bucket: 'b', egress: { EG_1: { status: 'complete', atMs: at + 61_000, key: 'room/x/call.ogg', bucket: 'b', sizeBytes: 10, durationMs: 59_000 } } },
        turns: [{ id: 'i1', llmTtftMs: 300 }],
        usage: { 'job:AJ_order:a': [{ kind: 'llm', model: 'm', promptTokens: 1, completionTokens: 1 }] },
        toolCalls: [{ id: 'c1', name: 'end_call', arguments: '{}', atMs: at + 59_000 }],
        answeringMachine: { result: 'human', isMachine: false, atMs: at + 2_000 },
      },
    };
    const state = stateOf(message);
    const rendered = renderMetadata(state, 'room/x', 'UTC', { priceTable: { currency: 'USD', models: {} } }) as MetadataDocument;
    const reversed = Object.fromEntries(Object.entries(rendered).reverse()) as unknown as MetadataDocument;
    // Act
    const shown = metadataOf({ state, folder: 'room/x', documents: { metadata: reversed } }, 'UTC');
    // Assess: every field of the rich call (all but outbound_trunk_id and recording_error), in render's order
    expect(Object.keys(rendered)).toHaveLength(33);
    expect(Object.keys(shown ?? {})).toEqual(Object.keys(rendered));
  });
});
