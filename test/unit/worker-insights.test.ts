/**
 * How the worker turns the agents SDK's own objects into call-insight facts: the chat messages'
 * per-turn metrics, the session's CloseEvent, function_tools_executed, the usage LiveKit's
 * ModelUsageCollector aggregates, answering-machine verdicts, SIP attributes and dial failures.
 * The SDK objects are the real ones (ChatMessage, createCloseEvent, ModelUsageCollector, ...);
 * only the room and the session's event emitter are stand-ins, as in worker-capture.test.ts.
 */
import { EventEmitter } from 'node:events';
import { APIConnectionError, llm, metrics, voice, type JobContext } from '@livekit/agents';
import { DisconnectReason, ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { decodeMessage, encodeMessage, MAX_TURNS_PER_MESSAGE, MAX_WIRE_BYTES, TOOL_CALL_BUDGET_BYTES, type FactMessage } from '../../functions/contract/facts.ts';
import { mergeAll, stateOf } from '../../functions/domain/merge.ts';
import { renderMetadata } from '../../functions/domain/render.ts';
import type { FactSink, SendReceipt } from '../../functions/transport/sink.ts';
import { attachCallData } from '../../worker/capture.ts';
import { conversationItem } from '../../worker/conversation.ts';
import { endCall } from '../../worker/hangup.ts';
import { closeFacts, evidenceText, toolCallsFrom, usageFrom } from '../../worker/metrics.ts';
import { reasonForDisconnect, reasonForSipStatus } from '../../worker/sip.ts';

const CREATED_AT = Date.UTC(2026, 10, 23, 19, 18, 38, 120);
/** The error a CloseEvent carries (LLMError here). */
type CloseError = NonNullable<Parameters<typeof voice.createCloseEvent>[1]>;

function llmMetrics(promptTokens: number, completionTokens: number): metrics.LLMMetrics {
  return {
    type: 'llm_metrics',
    label: 'openai.LLM',
    requestId: 'req',
    timestamp: Date.now(),
    durationMs: 800,
    ttftMs: 300,
    cancelled: false,
    completionTokens,
    promptTokens,
    promptCachedTokens: 16,
    totalTokens: promptTokens + completionTokens,
    tokensPerSecond: 10,
    metadata: { modelProvider: 'openai', modelName: 'gpt-4.1-mini' },
  };
}

function ttsMetrics(characters: number, audioMs: number): metrics.TTSMetrics {
  return {
    type: 'tts_metrics',
    label: 'cartesia.TTS',
    requestId: 'req',
    timestamp: Date.now(),
    ttfbMs: 120,
    durationMs: 400,
    audioDurationMs: audioMs,
    cancelled: false,
    charactersCount: characters,
    streamed: true,
    metadata: { modelProvider: 'cartesia', modelName: 'sonic-2' },
  };
}

function sttMetrics(audioMs: number): metrics.STTMetrics {
  return { type: 'stt_metrics', label: 'deepgram.STT', requestId: 'req', timestamp: Date.now(), durationMs: 0, audioDurationMs: audioMs, streamed: true, metadata: { modelProvider: 'deepgram', modelName: 'nova-3' } };
}

/** What AgentSession.usage returns: the collector's entries with zero values left out. */
function sessionUsage(collector: metrics.ModelUsageCollector) {
  return { modelUsage: collector.flatten().map((u) => metrics.filterZeroValues(u)) };
}

describe('mapping SDK objects into facts', () => {
  it('takes a chat message’s per-turn metrics (seconds) as milliseconds, and none when nothing was measured', () => {
    // Prepare: an assistant message as AgentActivity builds it, and a user message without metrics
    const assistant = new llm.ChatMessage({ role: 'assistant', content: 'Hi there', id: 'item_a', metrics: { llmNodeTtft: 0.3124, ttsNodeTtfb: 0.15, e2eLatency: 1.2 } });
    const user = new llm.ChatMessage({ role: 'user', content: 'hello', id: 'item_u', metrics: { transcriptionDelay: 0.25, endOfTurnDelay: 0.5 } });
    const bare = new llm.ChatMessage({ role: 'user', content: 'typed', id: 'item_t' });
    // Act
    const [a, u, b] = [assistant, user, bare].map((m) => conversationItem(m, 0));
    // Assess
    expect(a?.metrics).toEqual({ llmTtftMs: 312, ttsTtfbMs: 150, e2eMs: 1_200 });
    expect(u?.metrics).toEqual({ transcriptionDelayMs: 250, endOfUtteranceDelayMs: 500 });
    expect(b).toBeDefined();
    expect(b?.metrics).toBeUndefined();
  });

  it('reads every CloseReason, and an error on any of them, from the SDK’s CloseEvent', () => {
    const error: CloseError = { type: 'llm_error', timestamp: 0, label: 'inference.LLM', error: new APIConnectionError({ message: 'Connection error.' }), recoverable: false };
    for (const reason of Object.values(voice.CloseReason)) {
      const plain = closeFacts(voice.createCloseEvent(reason));
      expect(plain).toEqual({ closeReason: reason, closeError: false, detail: `agent session closed (${reason})` });
    }
    const failed = closeFacts(voice.createCloseEvent(voice.CloseReason.ERROR, error));
    expect(failed.closeError).toBe(true);
    expect(failed.detail).toBe('agent session closed (error: llm_error from inference.LLM: Connection error.)');
  });

  it('pairs function calls with their outputs by call id (function_tools_executed)', () => {
    // Prepare: two calls, the outputs in the other order
    const calls = [
      new llm.FunctionCall({ callId: 'call_1', name: 'lookup_order', args: '{"order":42}', createdAt: CREATED_AT }),
      new llm.FunctionCall({ callId: 'call_2', name: 'end_call', args: '{}', createdAt: CREATED_AT + 5 }),
    ];
    const outputs = [
      new llm.FunctionCallOutput({ callId: 'call_2', output: 'The call has been ended.', isError: false }),
      new llm.FunctionCallOutput({ callId: 'call_1', output: 'order not found', isError: true }),
    ];
    // Act
    const mapped = toolCallsFrom(voice.createFunctionToolsExecutedEvent({ functionCalls: calls, functionCallOutputs: outputs }), 0);
    // Assess
    expect(mapped).toEqual([
      { id: 'call_1', name: 'lookup_order', arguments: '{"order":42}', output: 'order not found', isError: true, atMs: CREATED_AT },
      { id: 'call_2', name: 'end_call', arguments: '{}', output: 'The call has been ended.', isError: false, atMs: CREATED_AT + 5 },
    ]);
  });

  it('takes usage per model from what LiveKit’s ModelUsageCollector aggregates, leaving out interruption usage', () => {
    // Prepare: the metrics a session collects over two turns
    const collector = new metrics.ModelUsageCollector();
    for (const m of [llmMetrics(120, 30), llmMetrics(200, 40), ttsMetrics(64, 2_100.4), sttMetrics(3_500.6)]) collector.collect(m);
    collector.collect({ type: 'interruption_metrics', timestamp: 0, totalDuration: 1, predictionDuration: 1, detectionDelay: 1, numInterruptions: 1, numBackchannels: 0, numRequests: 3 });
    // Act
    const usage = usageFrom(sessionUsage(collector).modelUsage);
    // Assess
    expect(usage).toEqual([
      { kind: 'llm', provider: 'openai', model: 'gpt-4.1-mini', promptTokens: 320, completionTokens: 70, promptCachedTokens: 32 },
      { kind: 'tts', provider: 'cartesia', model: 'sonic-2', characters: 64, audioMs: 2_100 },
      { kind: 'stt', provider: 'deepgram', model: 'nova-3', audioMs: 3_501 },
    ]);
  });

  it('maps unanswered SIP outcomes through the one end-reason table', () => {
    expect([486, 600, 603, 403, 480, 408, 487, 404, 503, undefined].map(reasonForSipStatus)).toEqual([
      'busy',
      'busy',
      'declined',
      'declined',
      'no_answer',
      'no_answer',
      'no_answer',
      'failed',
      'failed',
      'failed',
    ]);
    expect(reasonForDisconnect(DisconnectReason.USER_REJECTED)).toBe('declined');
    expect(reasonForDisconnect(DisconnectReason.USER_UNAVAILABLE)).toBe('no_answer');
    expect(reasonForDisconnect(DisconnectReason.SIP_TRUNK_FAILURE)).toBe('failed');
    expect(reasonForDisconnect(DisconnectReason.CLIENT_INITIATED)).toBe('abandoned');
    expect(reasonForDisconnect(undefined)).toBe('abandoned');
    expect(evidenceText({ closeReason: 'error', closeError: true, disconnectReason: 'CLIENT_INITIATED' })).toBe('close:error disconnect:CLIENT_INITIATED');
    expect(evidenceText({ closeReason: 'user_initiated', closeError: true })).toBe('close:user_initiated+error');
    expect(evidenceText({})).toBeUndefined();
  });
});

class FakeRoom extends EventEmitter {
  name = 'sip-room';
  isConnected = false;
  remoteParticipants = new Map<string, { identity: string; kind: ParticipantKind; attributes: Record<string, string>; disconnectReason?: DisconnectReason }>();
}

/** The session as the capture sees it: AgentSession's events, and its `usage` getter over a real collector. */
class FakeSession extends EventEmitter {
  readonly collector = new metrics.ModelUsageCollector();
  get usage() {
    return sessionUsage(this.collector);
  }
  item(message: llm.ChatMessage): void {
    this.emit('conversation_item_added', voice.createConversationItemAddedEvent(message));
  }
  metric(m: metrics.AgentMetrics): void {
    this.collector.collect(m);
    this.emit('metrics_collected', voice.createMetricsCollectedEvent({ metrics: m }));
    this.emit('session_usage_updated', voice.createSessionUsageUpdatedEvent({ usage: this.usage }));
  }
}

class Sink implements FactSink {
  readonly transport = 'sqs' as const;
  readonly messages: FactMessage[] = [];
  async send(message: FactMessage): Promise<SendReceipt> {
    this.messages.push(decodeMessage(encodeMessage(message)));
    return { transport: 'sqs', messageId: String(this.messages.length), bytes: 0, offloaded: false };
  }
  get last(): FactMessage {
    const last = this.messages.at(-1);
    if (!last) throw new Error('nothing sent');
    return last;
  }
}

function call(env: Record<string, string> = {}, callStatus = 'active', jobId = 'AJ_insights') {
  const config = loadConfig({ SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', TIMEZONE: 'UTC', CALLDATA_QUEUE_URL: 'http://127.0.0.1:1/q', ...env });
  const room = new FakeRoom();
  const shutdownCallbacks: (() => Promise<void>)[] = [];
  const ctx = {
    room,
    job: { id: jobId, metadata: '', room: { sid: 'RM_insights', name: 'sip-room', creationTimeMs: BigInt(CREATED_AT) } },
    addShutdownCallback: (cb: () => Promise<void>) => shutdownCallbacks.push(cb),
    addParticipantEntrypoint: () => undefined,
    shutdown: () => undefined,
    deleteRoom: async () => undefined,
  };
  const session = new FakeSession();
  const sink = new Sink();
  const capture = attachCallData(ctx as unknown as JobContext, session as unknown as voice.AgentSession, { config, sink, progressIntervalMs: 1_000, answerTimeoutMs: 30_000, finalFlushMs: 2_000 });
  const caller = {
    identity: 'sip_+919876543210',
    kind: ParticipantKind.SIP,
    attributes: { 'sip.callStatus': callStatus, 'sip.phoneNumber': '+919876543210', 'sip.trunkID': 'ST_in', 'sip.callID': 'SCL_1', 'sip.ruleID': 'SDR_main' } as Record<string, string>,
    disconnectReason: undefined as DisconnectReason | undefined,
  };
  room.remoteParticipants.set(caller.identity, caller);
  room.isConnected = true;
  room.emit(RoomEvent.Connected);
  const hangUp = (reason: DisconnectReason) => {
    caller.disconnectReason = reason;
    room.remoteParticipants.delete(caller.identity);
    room.emit(RoomEvent.ParticipantDisconnected, caller);
  };
  const end = async () => {
    await Promise.all(shutdownCallbacks.map((cb) => cb()));
    return sink.last;
  };
  return { capture, session, sink, ctx, hangUp, end };
}

const metadataOf = (messages: readonly FactMessage[]) => renderMetadata(mergeAll(messages.map(stateOf)), 'sip-room/x', 'UTC');

describe('the capture’s insight facts', () => {
  beforeEach(() => vi.useFakeTimers({ now: CREATED_AT + 2_000 }));
  afterEach(() => vi.useRealTimers());

  it('carries identifiers, per-turn latency, usage and caller_hangup for a call the caller hangs up', async () => {
    // Prepare: an answered call with one measured turn and usage
    const { session, sink, hangUp, end } = call();
    await vi.advanceTimersByTimeAsync(0);
    session.item(new llm.ChatMessage({ role: 'user', content: 'hello', id: 'item_1', metrics: { endOfTurnDelay: 0.4, transcriptionDelay: 0.2 } }));
    session.item(new llm.ChatMessage({ role: 'assistant', content: 'Hi!', id: 'item_2', metrics: { llmNodeTtft: 0.35, ttsNodeTtfb: 0.12, e2eLatency: 0.9 } }));
    session.metric(llmMetrics(100, 20));
    session.metric(ttsMetrics(3, 900));
    // Act: the caller hangs up; the session closes; the job ends
    hangUp(DisconnectReason.CLIENT_INITIATED);
    session.emit('close', voice.createCloseEvent(voice.CloseReason.PARTICIPANT_DISCONNECTED));
    const final = await end();
    // Assess: the facts
    expect(final.facts).toMatchObject({
      jobId: { value: 'AJ_insights' },
      roomSid: { value: 'RM_insights' },
      sipCallId: { value: 'SCL_1' },
      dispatchRuleId: { value: 'SDR_main' },
      inboundTrunkId: { value: 'ST_in' },
      outcome: { source: 'worker', status: 'completed', endReason: 'caller_hangup', evidence: 'close:participant_disconnected disconnect:CLIENT_INITIATED' },
    });
    expect(final.facts.conversation?.map((i) => i.metrics)).toEqual([
      { endOfUtteranceDelayMs: 400, transcriptionDelayMs: 200 },
      { llmTtftMs: 350, ttsTtfbMs: 120, e2eMs: 900 },
    ]);
    expect(final.facts.usage).toEqual({
      [final.writer]: [
        { kind: 'llm', provider: 'openai', model: 'gpt-4.1-mini', promptTokens: 100, completionTokens: 20, promptCachedTokens: 16 },
        { kind: 'tts', provider: 'cartesia', model: 'sonic-2', characters: 3, audioMs: 900 },
      ],
    });
    expect(final.facts.toolCalls).toBeUndefined();
    // ... and what the stored metadata says
    expect(metadataOf(sink.messages)).toMatchObject({
      status: 'completed',
      end_reason: 'caller_hangup',
      job_id: 'AJ_insights',
      room_sid: 'RM_insights',
      sip_call_id: 'SCL_1',
      trunk_id: 'ST_in',
      dispatch_rule_id: 'SDR_main',
      latency: { llm_ttft: { p50_ms: 350, p90_ms: 350, max_ms: 350, count: 1 }, e2e: { p50_ms: 900, p90_ms: 900, max_ms: 900, count: 1 } },
      usage: [
        { type: 'llm_usage', provider: 'openai', model: 'gpt-4.1-mini', input_tokens: 100, input_cached_tokens: 16, output_tokens: 20 },
        { type: 'tts_usage', provider: 'cartesia', model: 'sonic-2', characters_count: 3, audio_duration_ms: 900 },
      ],
    });
  });

  it('sends per-turn latency with metadata alone (no transcript), so the stored metadata still has the latency summary', async () => {
    // Prepare: metadata on, transcripts off; two measured turns and one unmeasured
    const { session, sink, hangUp, end } = call({ SAVE_TRANSCRIPTION: 'false' });
    await vi.advanceTimersByTimeAsync(0);
    session.item(new llm.ChatMessage({ role: 'user', content: 'hello', id: 'item_1', metrics: { endOfTurnDelay: 0.4, transcriptionDelay: 0.2 } }));
    session.item(new llm.ChatMessage({ role: 'assistant', content: 'Hi!', id: 'item_2', metrics: { llmNodeTtft: 0.35, ttsNodeTtfb: 0.12, e2eLatency: 0.9 } }));
    session.item(new llm.ChatMessage({ role: 'user', content: 'thanks', id: 'item_3' }));
    // Act: a progress message goes out for the measured turns; then the caller hangs up
    await vi.advanceTimersByTimeAsync(1_500);
    const progress = sink.last;
    hangUp(DisconnectReason.CLIENT_INITIATED);
    const final = await end();
    // Assess: no transcript travels, the turns do (by item id), and the summary is rendered from them
    expect(progress.kind).toBe('progress');
    expect(progress.facts.turns).toHaveLength(2);
    expect(final.facts.conversation).toBeUndefined();
    expect(final.facts.turns).toEqual([
      { id: 'item_1', endOfUtteranceDelayMs: 400, transcriptionDelayMs: 200 },
      { id: 'item_2', llmTtftMs: 350, ttsTtfbMs: 120, e2eMs: 900 },
    ]);
    expect(metadataOf(sink.messages)?.latency).toEqual({
      end_of_utterance_delay: { p50_ms: 400, p90_ms: 400, max_ms: 400, count: 1 },
      transcription_delay: { p50_ms: 200, p90_ms: 200, max_ms: 200, count: 1 },
      llm_ttft: { p50_ms: 350, p90_ms: 350, max_ms: 350, count: 1 },
      tts_ttfb: { p50_ms: 120, p90_ms: 120, max_ms: 120, count: 1 },
      e2e: { p50_ms: 900, p90_ms: 900, max_ms: 900, count: 1 },
    });
  });

  it('sends no turn latency when metadata is off (transcript items keep their own metrics)', async () => {
    // Prepare: transcripts only
    const { session, hangUp, end } = call({ SAVE_METADATA: 'false' });
    await vi.advanceTimersByTimeAsync(0);
    session.item(new llm.ChatMessage({ role: 'assistant', content: 'Hi!', id: 'item_2', metrics: { llmNodeTtft: 0.35 } }));
    // Act
    hangUp(DisconnectReason.CLIENT_INITIATED);
    const final = await end();
    // Assess
    expect(final.facts.turns).toBeUndefined();
    expect(final.facts.conversation?.[0]?.metrics).toEqual({ llmTtftMs: 350 });
  });

  it('caps a long call’s turn list at its first MAX_TURNS_PER_MESSAGE turns, each message holding all the earlier ones did, inside one SQS message', async () => {
    // Prepare: metadata only; more measured turns than the cap, with the longest ids the contract allows
    const { session, sink, hangUp, end } = call({ SAVE_TRANSCRIPTION: 'false' });
    await vi.advanceTimersByTimeAsync(0);
    const id = (i: number) => `item_${String(i).padStart(251, '0')}`;
    for (let i = 0; i < MAX_TURNS_PER_MESSAGE / 2; i++) session.item(new llm.ChatMessage({ role: 'assistant', content: 'x', id: id(i), metrics: { llmNodeTtft: 86_399.123456789, ttsNodeTtfb: 86_399.987654321, e2eLatency: 86_399.5 } }));
    await vi.advanceTimersByTimeAsync(1_500);
    const early = sink.last;
    for (let i = MAX_TURNS_PER_MESSAGE / 2; i < MAX_TURNS_PER_MESSAGE + 200; i++) session.item(new llm.ChatMessage({ role: 'user', content: 'y', id: id(i), metrics: { endOfTurnDelay: 86_399.25, transcriptionDelay: 86_399.75 } }));
    // Act
    hangUp(DisconnectReason.CLIENT_INITIATED);
    const final = await end();
    // Assess: the first turns are kept (a prefix, so the earlier message's turns are all still there) and the body fits SQS
    expect(early.facts.turns).toHaveLength(MAX_TURNS_PER_MESSAGE / 2);
    expect(final.facts.turns).toHaveLength(MAX_TURNS_PER_MESSAGE);
    expect(final.facts.turns?.[0]?.id).toBe(id(0));
    expect(final.facts.turns?.at(-1)?.id).toBe(id(MAX_TURNS_PER_MESSAGE - 1));
    const finalIds = new Set(final.facts.turns?.map((t) => t.id));
    expect(early.facts.turns?.every((t) => finalIds.has(t.id))).toBe(true);
    expect(Buffer.byteLength(encodeMessage(final), 'utf8')).toBeLessThan(MAX_WIRE_BYTES / 2);
    expect(metadataOf(sink.messages)?.latency?.llm_ttft?.count).toBe(MAX_TURNS_PER_MESSAGE / 2);
  });

  it('keeps the first tool calls within TOOL_CALL_BUDGET_BYTES, so with the most turns a message still fits SQS', async () => {
    // Prepare: metadata and tool calls on; the most turns, then tool calls with the largest texts the worker keeps
    const { session, sink, hangUp, end } = call({ SAVE_TRANSCRIPTION: 'false', SAVE_TOOL_CALLS: 'true' });
    await vi.advanceTimersByTimeAsync(0);
    const id = (i: number) => `item_${String(i).padStart(251, '0')}`;
    for (let i = 0; i < MAX_TURNS_PER_MESSAGE; i++) session.item(new llm.ChatMessage({ role: 'assistant', content: 'x', id: id(i), metrics: { llmNodeTtft: 86_399.1, ttsNodeTtfb: 86_399.9, e2eLatency: 86_399.5 } }));
    const big = 'é'.repeat(70_000);
    const toolCall = (n: number) =>
      voice.createFunctionToolsExecutedEvent({
        functionCalls: [new llm.FunctionCall({ callId: `call_${n}`, name: 'search', args: big, createdAt: CREATED_AT + n })],
        functionCallOutputs: [new llm.FunctionCallOutput({ callId: `call_${n}`, output: big, isError: false })],
      });
    for (let n = 0; n < 2; n++) session.emit('function_tools_executed', toolCall(n));
    await vi.advanceTimersByTimeAsync(1_500);
    const early = sink.last;
    for (let n = 2; n < 40; n++) session.emit('function_tools_executed', toolCall(n));
    // Act
    hangUp(DisconnectReason.CLIENT_INITIATED);
    const final = await end();
    // Assess: a prefix of the tool calls within the budget, every earlier one still there, and the body fits SQS
    const calls = final.facts.toolCalls ?? [];
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.length).toBeLessThan(40);
    expect(calls.map((c) => c.id)).toEqual(calls.map((_, n) => `call_${n}`));
    expect(Buffer.byteLength(JSON.stringify(calls), 'utf8')).toBeLessThanOrEqual(TOOL_CALL_BUDGET_BYTES + 1_024);
    expect(early.facts.toolCalls?.every((c) => calls.some((k) => k.id === c.id))).toBe(true);
    expect(Buffer.byteLength(encodeMessage(final), 'utf8')).toBeLessThan(MAX_WIRE_BYTES);
    expect(() => decodeMessage(encodeMessage(final))).not.toThrow();
  });

  it('stores a session that closes with an error as failed / agent_error, never completed', async () => {
    // Prepare
    const { session, sink, end } = call();
    await vi.advanceTimersByTimeAsync(0);
    session.item(new llm.ChatMessage({ role: 'user', content: 'hello', id: 'item_1' }));
    const error: CloseError = { type: 'llm_error', timestamp: 0, label: 'inference.LLM', error: new APIConnectionError({ message: 'Connection error.' }), recoverable: false };
    // Act: the LLM cannot be reached; AgentSession closes with CloseReason.ERROR
    session.emit('close', voice.createCloseEvent(voice.CloseReason.ERROR, error));
    const final = await end();
    // Assess
    expect(final.facts.outcome).toMatchObject({ status: 'failed', endReason: 'agent_error', reason: 'agent session closed (error: llm_error from inference.LLM: Connection error.)' });
    expect(metadataOf(sink.messages)).toMatchObject({ status: 'failed', end_reason: 'agent_error', end_reason_detail: expect.stringContaining('Connection error.') });
  });

  it('takes the room closing before the caller’s departure was seen as the caller hanging up, not the session’s closing after it', async () => {
    // Prepare
    const { ctx, session, end } = call();
    await vi.advanceTimersByTimeAsync(0);
    // Act: LiveKit closes the emptied room first; then the job's shutdown closes the session (user_initiated)
    ctx.room.isConnected = false;
    ctx.room.emit(RoomEvent.Disconnected, DisconnectReason.ROOM_CLOSED);
    session.emit('close', voice.createCloseEvent(voice.CloseReason.USER_INITIATED));
    const final = await end();
    // Assess
    expect(final.facts.outcome).toMatchObject({ status: 'completed', endReason: 'caller_hangup', evidence: 'disconnect:ROOM_CLOSED', reason: 'room disconnected (room_closed)' });
  });

  it('records the hangup tool as agent_hangup', async () => {
    const { capture, ctx, session, end } = call();
    await vi.advanceTimersByTimeAsync(0);
    await endCall({ ctx: ctx as unknown as JobContext, enabled: true, capture }, async () => undefined);
    session.emit('close', voice.createCloseEvent(voice.CloseReason.JOB_SHUTDOWN));
    const final = await end();
    expect(final.facts.outcome).toMatchObject({ status: 'completed', endReason: 'agent_hangup', reason: 'agent hung up (end_call tool)' });
  });

  it('keeps tool calls only with SAVE_TOOL_CALLS=true, as their own list', async () => {
    for (const save of [false, true]) {
      // Prepare
      const { session, sink, end } = call({ SAVE_TOOL_CALLS: String(save) });
      await vi.advanceTimersByTimeAsync(0);
      // Act
      session.emit(
        'function_tools_executed',
        voice.createFunctionToolsExecutedEvent({
          functionCalls: [new llm.FunctionCall({ callId: 'call_1', name: 'lookup_order', args: '{"order":42}', createdAt: CREATED_AT + 3_000 })],
          functionCallOutputs: [new llm.FunctionCallOutput({ callId: 'call_1', output: 'shipped', isError: false })],
        }),
      );
      const final = await end();
      // Assess
      const metadata = metadataOf(sink.messages);
      if (save) {
        expect(final.facts.toolCalls).toEqual([{ id: 'call_1', name: 'lookup_order', arguments: '{"order":42}', output: 'shipped', isError: false, atMs: CREATED_AT + 3_000 }]);
        expect(metadata?.tool_calls).toEqual([{ id: 'call_1', name: 'lookup_order', arguments: '{"order":42}', output: 'shipped', is_error: false, timestamp: '2026-11-23T19:18:41.120Z' }]);
      } else {
        expect(sink.messages.every((m) => m.facts.toolCalls === undefined)).toBe(true);
        expect(metadata?.tool_calls).toBeUndefined();
      }
      // The conversation's items keep the spec's shape either way.
      expect(final.facts.conversation ?? []).toEqual([]);
    }
  });

  it('records a voicemail verdict of answering-machine detection', async () => {
    const { capture, sink, end } = call();
    await vi.advanceTimersByTimeAsync(0);
    capture.answeringMachineResult({ category: 'machine-vm', isMachine: true });
    const final = await end();
    expect(final.facts.answeringMachine).toEqual({ result: 'machine-vm', isMachine: true, atMs: CREATED_AT + 2_000 });
    expect(metadataOf(sink.messages)).toMatchObject({ end_reason: 'voicemail', answering_machine: { result: 'machine-vm', is_machine: true } });
  });

  it('records the SIP status of a failed outbound dial with its reason phrase', async () => {
    const { capture, sink } = call({}, 'dialing');
    capture.dialFailed(486, 'outbound dial failed with SIP 486');
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.last.kind).toBe('unanswered');
    expect(sink.last.facts).toMatchObject({ sipStatus: { code: 486, text: 'Busy Here' }, outcome: { status: 'busy', endReason: 'busy', evidence: 'sip:486' } });
  });
});
