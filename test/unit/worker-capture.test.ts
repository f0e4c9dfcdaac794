/**
 * The capture with LiveKit faked at the SDK edge: a fake JobContext / Room (an EventEmitter
 * with the rtc-node event names) and a fake AgentSession emitting `conversation_item_added`.
 * Every message the capture sends is encoded and decoded exactly as the real sinks and the
 * persist step do (contract v2).
 */
import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobContext, voice } from '@livekit/agents';
import { DisconnectReason, ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig, type Config } from '../../functions/config/config.ts';
import { decodeMessage, encodeMessage, type FactMessage } from '../../functions/contract/facts.ts';
import { mergeAll, stateOf } from '../../functions/domain/merge.ts';
import { drainEmbedded, EmbeddedCommandSink, embeddedPending } from '../../functions/transport/embedded-sink.ts';
import type { FactSink, SendReceipt } from '../../functions/transport/sink.ts';
import { attachCallData, writerFor, type CallDataCapture } from '../../worker/capture.ts';
import { endCall, HANGUP_DISABLED_REPLY, HANGUP_DONE_REPLY } from '../../worker/hangup.ts';
import { dialIfOutbound } from '../../worker/outbound.ts';

const CREATED_AT = Date.UTC(2026, 10, 23, 19, 18, 38, 120);

class FakeParticipant {
  identity: string;
  kind: ParticipantKind;
  attributes: Record<string, string>;
  disconnectReason: DisconnectReason | undefined;
  constructor(identity: string, kind: ParticipantKind, attributes: Record<string, string> = {}) {
    this.identity = identity;
    this.kind = kind;
    this.attributes = attributes;
  }
}

class FakeRoom extends EventEmitter {
  name = 'sip-room';
  isConnected = false;
  remoteParticipants = new Map<string, FakeParticipant>();
  connect(): void {
    this.isConnected = true;
    this.emit(RoomEvent.Connected);
  }
  join(p: FakeParticipant): void {
    this.remoteParticipants.set(p.identity, p);
    if (this.isConnected) this.emit(RoomEvent.ParticipantConnected, p);
  }
  setAttributes(p: FakeParticipant, changed: Record<string, string>): void {
    Object.assign(p.attributes, changed);
    this.emit(RoomEvent.ParticipantAttributesChanged, changed, p);
  }
  close(reason: DisconnectReason): void {
    this.isConnected = false;
    this.emit(RoomEvent.Disconnected, reason);
  }
  leave(p: FakeParticipant, reason: DisconnectReason): void {
    p.disconnectReason = reason;
    this.remoteParticipants.delete(p.identity);
    this.emit(RoomEvent.ParticipantDisconnected, p);
  }
}

class FakeJobContext {
  readonly room = new FakeRoom();
  readonly job: { id: string; metadata: string; room: { sid: string; name: string; creationTimeMs: bigint } };
  readonly shutdownCallbacks: (() => Promise<void>)[] = [];
  readonly shutdowns: string[] = [];
  roomDeleted = 0;
  constructor(metadata = '', createdAtMs = CREATED_AT, jobId = 'AJ_test') {
    this.job = { id: jobId, metadata, room: { sid: 'RM_TestRoom01', name: 'sip-room', creationTimeMs: BigInt(createdAtMs) } };
  }
  addShutdownCallback(cb: () => Promise<void>): void {
    this.shutdownCallbacks.push(cb);
  }
  shutdown(reason = ''): void {
    this.shutdowns.push(reason);
  }
  async deleteRoom(): Promise<void> {
    this.roomDeleted++;
  }
  /** What the agents runtime does at the end of a job. */
  async runShutdown(): Promise<void> {
    await Promise.all(this.shutdownCallbacks.map((cb) => cb()));
  }
}

/** Emits what AgentSession emits; each message carries an id as the agents ChatMessage does, unless told otherwise. */
class FakeSession extends EventEmitter {
  private counter = 0;
  readonly prefix: string;
  constructor(prefix = 'item_job1_') {
    super();
    this.prefix = prefix;
  }
  say(role: 'user' | 'assistant', text: string, interrupted = false, id: string | null = `${this.prefix}${++this.counter}`): void {
    const item = { type: 'message', role, content: [text], interrupted, createdAt: Date.now(), ...(id === null ? {} : { id }) };
    this.emit('conversation_item_added', { type: 'conversation_item_added', item, createdAt: Date.now() });
  }
  close(reason = 'participant_disconnected'): void {
    this.emit('close', { type: 'close', reason });
  }
}

class RecordingSink implements FactSink {
  readonly transport: 'sqs' | 'embedded' = 'sqs';
  readonly messages: FactMessage[] = [];
  down = false;
  async send(message: FactMessage): Promise<SendReceipt> {
    if (this.down) throw new Error('queue unreachable');
    // Exactly what the real sinks and the persist step do: validate, encode, decode.
    this.messages.push(decodeMessage(encodeMessage(message)));
    return { transport: 'sqs', messageId: String(this.messages.length), bytes: 0, offloaded: false };
  }
  get kinds(): string[] {
    return this.messages.map((m) => m.kind);
  }
  get last(): FactMessage {
    const last = this.messages.at(-1);
    if (!last) throw new Error('nothing sent');
    return last;
  }
}

const BASE_ENV = {
  SAVE_METADATA: 'true',
  SAVE_TRANSCRIPTION: 'true',
  CALL_RECORDING: 'true',
  AWS_S3_BUCKET: 'recordings',
  TIMEZONE: 'Asia/Kolkata',
  CALLDATA_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/snapshots',
  CALLDATA_RECORDING_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/recording',
};

function setup(env: Record<string, string> = {}, metadata = '', jobId = 'AJ_test', sink: RecordingSink = new RecordingSink(), session = new FakeSession()) {
  const config: Config = loadConfig({ ...BASE_ENV, ...env });
  const ctx = new FakeJobContext(metadata, CREATED_AT, jobId);
  const capture = attachCallData(ctx as unknown as JobContext, session as unknown as voice.AgentSession, {
    config,
    sink,
    progressIntervalMs: 1_000,
    answerTimeoutMs: 30_000,
    finalFlushMs: 5_000,
  });
  return { config, ctx, session, sink, capture };
}

const sipCaller = (callStatus = 'ringing') =>
  new FakeParticipant('sip_+919876543210', ParticipantKind.SIP, {
    'sip.callStatus': callStatus,
    'sip.phoneNumber': '+919876543210',
    'sip.trunkPhoneNumber': '+14155550100',
    'sip.trunkID': 'ST_inbound',
    'sip.callID': 'SCL_abc',
  });

async function settle(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

async function answeredCall(env: Record<string, string> = {}) {
  const h = setup(env);
  const caller = sipCaller();
  h.ctx.room.join(caller);
  h.ctx.room.connect();
  await settle();
  h.ctx.room.setAttributes(caller, { 'sip.callStatus': 'active' });
  await settle();
  return { ...h, caller };
}

/** Every string anywhere in a value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

describe('call data capture', () => {
  beforeEach(() => vi.useFakeTimers({ now: CREATED_AT + 2_000 }));
  afterEach(() => vi.useRealTimers());

  it('sends a started fact message at once: the job as writer, seq 1, cumulative, the room SID as call id', async () => {
    // Prepare + Act
    const { sink, capture } = setup();
    await settle();
    // Assess
    expect(sink.kinds).toEqual(['started']);
    const started = sink.last;
    expect(started).toMatchObject({ v: 2, kind: 'started', callId: 'RM_TestRoom01', writer: expect.stringMatching(/^job:AJ_test:[0-9a-f]{8}$/), seq: 1, cumulative: true, sentAtMs: CREATED_AT + 2_000 });
    expect(capture.writer).toMatch(/^job:AJ_test:[0-9a-f]{8}$/);
    expect(started.facts).toEqual({
      roomName: 'sip-room',
      startedAtMs: CREATED_AT,
      direction: { value: 'inbound', atMs: CREATED_AT + 2_000 },
      // Identifiers to cross-reference LiveKit's records: the job and the room SID.
      jobId: { value: 'AJ_test', atMs: CREATED_AT + 2_000 },
      roomSid: { value: 'RM_TestRoom01', atMs: CREATED_AT + 2_000 },
      // The worker asks for a recording; the persist step chooses where it goes.
      recording: { requested: true, bucket: 'recordings' },
    });
    expect(capture.enabled).toBe(true);
  });

  it('records an answered call: observations, coalesced progress, and a complete final message', async () => {
    // Prepare
    const { sink, session, ctx } = await answeredCall();
    // Act: a conversation of four turns in quick succession, then the job ends
    session.say('user', 'hello');
    session.say('assistant', 'Hi, how can I help?');
    session.say('user', 'what are your hours?');
    session.say('assistant', 'Nine to five.', true);
    await settle(1_000);
    await settle(3_000);
    await ctx.runShutdown();
    // Assess
    const kinds = sink.kinds;
    expect(kinds[0]).toBe('started');
    expect(kinds.at(-1)).toBe('ended');
    // Four turns inside one interval produce one progress message, not four.
    expect(kinds.filter((k) => k === 'progress').length).toBeLessThanOrEqual(2);
    const final = sink.last;
    const seenAt = CREATED_AT + 2_000;
    expect(final.facts).toMatchObject({
      roomName: 'sip-room',
      startedAtMs: CREATED_AT,
      direction: { value: 'inbound', atMs: seenAt },
      userNumber: { value: '+919876543210', atMs: seenAt },
      agentNumber: { value: '+14155550100', atMs: seenAt },
      inboundTrunkId: { value: 'ST_inbound', atMs: seenAt },
      sipCallId: { value: 'SCL_abc', atMs: seenAt },
      answeredAtMs: seenAt,
      ended: { source: 'worker', reason: 'job ended' },
      outcome: { source: 'worker', status: 'completed', reason: 'job ended' },
      recording: { requested: true, bucket: 'recordings' },
    });
    expect(final.facts.outboundTrunkId).toBeUndefined();
    expect(final.facts.ended?.atMs).toBe(final.facts.outcome?.atMs);
    expect(final.facts.ended?.atMs).toBeGreaterThanOrEqual(CREATED_AT);
    expect(final.facts.conversation?.map((i) => [i.id, i.role, i.content, i.interrupted])).toEqual([
      ['item_job1_1', 'user', 'hello', false],
      ['item_job1_2', 'assistant', 'Hi, how can I help?', false],
      ['item_job1_3', 'user', 'what are your hours?', false],
      ['item_job1_4', 'assistant', 'Nine to five.', true],
    ]);
    // One writer, numbered 1, 2, 3, ...; every message cumulative; only the last one final.
    expect(sink.messages.map((m) => m.seq)).toEqual(sink.messages.map((_, i) => i + 1));
    expect(sink.messages.every((m) => m.writer === sink.messages[0]?.writer && m.cumulative && m.callId === 'RM_TestRoom01')).toBe(true);
    expect(sink.messages.slice(0, -1).every((m) => m.facts.ended === undefined && m.facts.outcome === undefined)).toBe(true);
    // Observations keep the time they were first seen: no message says a number was seen later.
    expect(new Set(sink.messages.flatMap((m) => (m.facts.userNumber ? [m.facts.userNumber.atMs] : [])))).toEqual(new Set([seenAt]));
  });

  it('makes each message hold the whole view: merging all equals the last one alone', async () => {
    const { sink, session, ctx } = await answeredCall();
    for (let i = 0; i < 6; i++) {
      session.say(i % 2 ? 'assistant' : 'user', `line ${i}`);
      await settle(1_100);
    }
    await ctx.runShutdown();
    expect(sink.messages.length).toBeGreaterThan(3);
    const merged = mergeAll(sink.messages.map(stateOf));
    const lastOnly = stateOf(sink.last);
    expect({ ...merged, writers: {}, lastFactAtMs: 0 }).toEqual({ ...lastOnly, writers: {}, lastFactAtMs: 0 });
  });

  it('keeps item ids: the ChatMessage id when given, a derived id that stays the same across messages otherwise', async () => {
    const { sink, session, ctx } = await answeredCall();
    session.say('user', 'same words', false, null);
    session.say('user', 'same words', false, null);
    session.say('assistant', 'reply', false, 'item_given');
    await settle(1_000);
    const progress = sink.last.facts.conversation ?? [];
    session.say('user', 'later', false, null);
    await ctx.runShutdown();
    const final = sink.last.facts.conversation ?? [];
    // Assess: ids everywhere, distinct, and unchanged between the progress and the final message
    expect(progress.map((i) => i.id)).toEqual(final.slice(0, 3).map((i) => i.id));
    expect(final[2]?.id).toBe('item_given');
    expect(new Set(final.map((i) => i.id)).size).toBe(4);
    expect(final.every((i) => i.id.length > 0)).toBe(true);
  });

  it('formats no time and names no folder or recording key: times are epoch milliseconds', async () => {
    const { sink, session, ctx } = await answeredCall();
    session.say('user', 'hello');
    await ctx.runShutdown();
    for (const message of sink.messages) {
      for (const text of strings(message)) expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\d{8}T\d{6}|\+05:30|\.ogg$/);
      expect(Object.keys(message.facts.recording ?? {}).sort()).toEqual(['bucket', 'requested']);
      expect(message.facts.conversation?.every((i) => Number.isInteger(i.timestampMs)) ?? true).toBe(true);
    }
    // Nothing in the worker can format a time: it imports neither the renderer nor luxon.
    const dir = join(import.meta.dirname, '../../worker');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const source = readFileSync(join(dir, file), 'utf8');
      expect(source, file).not.toMatch(/(from|import\()\s*['"](luxon|[^'"]*domain\/render\.ts|[^'"]*storage\/paths\.ts)['"]/);
      expect(source, file).not.toMatch(/callPaths|snapshotSequence|FINAL_SEQUENCE_LEAD_MS/);
    }
  });

  it('never sends the conversation before the call is answered', async () => {
    const { sink, session, ctx } = setup();
    ctx.room.connect();
    session.say('assistant', 'Hello? Is anyone there?');
    await settle(5_000);
    expect(sink.messages.every((m) => m.facts.conversation === undefined)).toBe(true);
  });

  it('reports an unanswered call on timeout: outcome no_answer, no answer, no transcript, room deleted, no second message at exit', async () => {
    // Prepare: a SIP participant that keeps ringing
    const { sink, session, ctx } = setup();
    const caller = sipCaller();
    ctx.room.join(caller);
    ctx.room.connect();
    session.say('assistant', 'Hello?');
    // Act
    await settle(30_000);
    await settle(100);
    const sentBeforeExit = sink.messages.length;
    await ctx.runShutdown();
    // Assess
    const final = sink.last;
    expect(final.kind).toBe('unanswered');
    const end = { reason: 'nobody answered within the answer timeout', endReason: 'no_answer', evidence: 'answer_timeout' };
    expect(final.facts.outcome).toEqual({ source: 'worker', atMs: CREATED_AT + 32_000, status: 'no_answer', ...end });
    expect(final.facts.ended).toEqual({ source: 'worker', atMs: CREATED_AT + 32_000, ...end });
    expect(final.facts.answeredAtMs).toBeUndefined();
    expect(final.facts.conversation).toBeUndefined();
    expect(final.facts.recording).toEqual({ requested: true, bucket: 'recordings' });
    expect(final.facts.userNumber?.value).toBe('+919876543210');
    expect(ctx.roomDeleted).toBe(1);
    expect(sink.messages.length).toBe(sentBeforeExit);
    expect(sink.kinds.filter((k) => k === 'unanswered')).toHaveLength(1);
  });

  it('reports an unanswered call when the caller leaves before answering', async () => {
    const { sink, ctx } = setup();
    const caller = sipCaller();
    ctx.room.join(caller);
    ctx.room.connect();
    await settle();
    ctx.room.leave(caller, DisconnectReason.CLIENT_INITIATED);
    await settle();
    expect(sink.last.kind).toBe('unanswered');
    expect(sink.last.facts.outcome?.status).toBe('abandoned');
  });

  it('reports an unanswered call when the room closes before the caller’s leaving was seen', async () => {
    const { sink, ctx } = setup();
    ctx.room.join(sipCaller());
    ctx.room.connect();
    await settle();
    ctx.room.close(DisconnectReason.ROOM_CLOSED);
    await settle();
    await ctx.runShutdown();
    expect(sink.last.kind).toBe('unanswered');
    expect(sink.last.facts.outcome).toMatchObject({ status: 'abandoned', reason: 'room ended before the call was active (room_closed)' });
    expect(sink.kinds.filter((k) => k === 'unanswered')).toHaveLength(1);
  });

  it('ends the call when the answered caller hangs up and the session closes', async () => {
    const { sink, session, ctx, caller } = await answeredCall();
    session.say('user', 'bye');
    ctx.room.leave(caller, DisconnectReason.CLIENT_INITIATED);
    session.close();
    await ctx.runShutdown();
    expect(ctx.shutdowns).toEqual(['agent session closed']);
    expect(sink.last.kind).toBe('ended');
    expect(sink.last.facts.ended).toMatchObject({ source: 'worker', reason: 'caller hung up (client_initiated)' });
    expect(sink.last.facts.outcome).toMatchObject({ source: 'worker', status: 'completed' });
  });

  it('reports a job that ends while the call is still ringing as unanswered', async () => {
    const { sink, ctx } = setup();
    ctx.room.join(sipCaller());
    ctx.room.connect();
    await settle();
    await ctx.runShutdown();
    expect(sink.last.kind).toBe('unanswered');
    expect(sink.last.facts.outcome?.status).toBe('no_answer');
  });

  it('keeps trying while the queue is down and delivers the newest view when it returns', async () => {
    const { sink, session, ctx } = await answeredCall();
    sink.down = true;
    session.say('user', 'one');
    session.say('assistant', 'two');
    await settle(20_000);
    session.say('user', 'three');
    await settle(2_000);
    sink.down = false;
    await settle(15_000);
    expect(sink.last.facts.conversation?.map((i) => i.content)).toEqual(['one', 'two', 'three']);
    await ctx.runShutdown();
    expect(sink.last.kind).toBe('ended');
    // Failed attempts used sequence numbers too: delivered ones still only grow.
    const seqs = sink.messages.map((m) => m.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('omits the conversation when SAVE_TRANSCRIPTION=false', async () => {
    const { sink, session, ctx } = await answeredCall({ SAVE_TRANSCRIPTION: 'false' });
    session.say('user', 'hello');
    await ctx.runShutdown();
    expect(sink.messages.every((m) => m.facts.conversation === undefined)).toBe(true);
  });

  it('omits the recording when CALL_RECORDING=false', async () => {
    const { sink } = setup({ CALL_RECORDING: 'false' });
    await settle();
    expect(sink.last.facts.recording).toBeUndefined();
  });

  it('sends nothing at all when every call-data feature is off', async () => {
    const { sink, session, ctx, capture } = setup({ CALL_RECORDING: 'false', SAVE_METADATA: 'false', SAVE_TRANSCRIPTION: 'false' });
    session.say('user', 'hello');
    await settle(5_000);
    await ctx.runShutdown();
    expect(capture.enabled).toBe(false);
    expect(sink.messages).toHaveLength(0);
  });

  it('records an outbound call from the job metadata, and a busy callee as unanswered busy', async () => {
    // Prepare
    const metadata = JSON.stringify({ phone_number: '+14155550123', outbound_trunk_id: 'ST_out' });
    const { sink, capture } = setup({}, metadata);
    const api = {
      createSipParticipant: vi.fn(async () => {
        throw Object.assign(new Error('SIP call failed: 486 Busy Here'), { sipStatusCode: 486 });
      }),
    };
    // Act
    const result = await dialIfOutbound({ hints: { phoneNumber: '+14155550123', outboundTrunkId: 'ST_out' }, roomName: 'sip-room', capture, api });
    await settle();
    // Assess
    expect(result).toEqual({ dialed: true, answered: false, sipStatusCode: 486 });
    expect(api.createSipParticipant).toHaveBeenCalledWith('ST_out', '+14155550123', 'sip-room', expect.objectContaining({ waitUntilAnswered: true }));
    expect(sink.last.kind).toBe('unanswered');
    expect(sink.last.facts).toMatchObject({
      direction: { value: 'outbound' },
      outboundTrunkId: { value: 'ST_out' },
      userNumber: { value: '+14155550123' },
      outcome: { source: 'worker', status: 'busy' },
    });
  });

  it('does not dial when the job is inbound', async () => {
    const api = { createSipParticipant: vi.fn() };
    await expect(dialIfOutbound({ hints: {}, roomName: 'r', api })).resolves.toEqual({ dialed: false });
    expect(api.createSipParticipant).not.toHaveBeenCalled();
  });

  it('makes a re-dispatched job a new writer whose facts add to the first job’s', async () => {
    // Prepare: the first job's call, answered, two lines, then the job dies without a final word
    const first = await answeredCall();
    first.session.say('user', 'first half');
    first.session.say('assistant', 'noted');
    await settle(1_100);
    // Act: LiveKit dispatches the room again: a new job id, the same room
    vi.setSystemTime(CREATED_AT + 60_000);
    const second = setup({}, '', 'AJ_redispatched', new RecordingSink(), new FakeSession('item_job2_'));
    second.ctx.room.join(sipCaller('active'));
    second.ctx.room.connect();
    await settle();
    second.session.say('user', 'second half');
    second.session.say('assistant', 'goodbye');
    await second.ctx.runShutdown();
    // Assess: two writers, each numbered from 1, one call
    expect(first.capture.writer).toMatch(/^job:AJ_test:/);
    expect(second.capture.writer).toMatch(/^job:AJ_redispatched:/);
    expect(second.capture.callId).toBe(first.capture.callId);
    expect(second.sink.messages[0]).toMatchObject({ kind: 'started', seq: 1, writer: second.capture.writer });
    // The stored record is the merge: both halves, the first answer, the second job's outcome.
    const merged = mergeAll([...first.sink.messages, ...second.sink.messages].map(stateOf));
    expect(merged.conversation?.map((i) => i.content)).toEqual(['first half', 'noted', 'second half', 'goodbye']);
    expect(merged.answeredAtMs).toBe(CREATED_AT + 2_000);
    expect(merged.startedAtMs).toBe(CREATED_AT);
    expect(merged.outcome).toMatchObject({ source: 'worker', status: 'completed' });
    expect(merged.writers).toEqual({ [first.capture.writer]: first.sink.last.seq, [second.capture.writer]: second.sink.last.seq });
  });

  it('names writers by job id in the contract’s alphabet', () => {
    expect(writerFor({ id: 'AJ_abc123' }, 'p1')).toBe('job:AJ_abc123:p1');
    expect(writerFor({ id: 'AJ_abc123' })).not.toBe(writerFor({ id: 'AJ_abc123' }));
    expect(writerFor({ id: 'AJ with/odd chars' }, 'p1')).toBe('job:AJ_with_odd_chars:p1');
    expect(writerFor({ id: '' })).toMatch(/^job:[0-9a-f-]{36}$/);
  });
});

describe('shutdown on the embedded default', () => {
  it('waits for background recording work before the job ends', async () => {
    // Prepare: an embedded sink, and recording work running in the background
    const sink = new (class extends RecordingSink {
      override readonly transport = 'embedded' as const;
    })();
    const { ctx } = setup({}, '', 'AJ_embedded', sink);
    ctx.room.join(sipCaller('active'));
    ctx.room.connect();
    let finished = false;
    await new EmbeddedCommandSink(async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      finished = true;
    }).send([{ v: 2, type: 'recording', action: 'start', callId: 'RM_TestRoom01', roomName: 'sip-room', key: 'k', egressIds: [], issuedAtMs: Date.now() }]);
    expect(embeddedPending()).toBe(1);
    // Act
    await ctx.runShutdown();
    // Assess
    expect(finished).toBe(true);
    expect(await drainEmbedded(0)).toBe(true);
    expect(sink.last.kind).toBe('ended');
  });
});

describe('end-call tool', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  async function toolCall(enabled: boolean, capture?: CallDataCapture) {
    const ctx = new FakeJobContext();
    const order: string[] = [];
    const waitForPlayout = vi.fn(async () => {
      order.push('playout');
    });
    ctx.deleteRoom = async () => {
      order.push('delete');
      ctx.roomDeleted++;
    };
    const reply = await endCall({ ctx: ctx as unknown as JobContext, enabled, capture }, waitForPlayout);
    return { reply, ctx, order, waitForPlayout };
  }

  it('waits for the agent to finish speaking and then deletes the room', async () => {
    const { reply, ctx, order } = await toolCall(true);
    expect(order).toEqual(['playout', 'delete']);
    expect(ctx.roomDeleted).toBe(1);
    expect(reply).toBe(HANGUP_DONE_REPLY);
  });

  it('does nothing and tells the model to carry on when HANGUP_CALL=false', async () => {
    const { reply, ctx, waitForPlayout } = await toolCall(false);
    expect(reply).toBe(HANGUP_DISABLED_REPLY);
    expect(ctx.roomDeleted).toBe(0);
    expect(waitForPlayout).not.toHaveBeenCalled();
  });

  it('records that the agent ended the call', async () => {
    const { ctx, capture, sink } = await answeredCall();
    await endCall({ ctx: ctx as unknown as JobContext, enabled: true, capture }, async () => undefined);
    await ctx.runShutdown();
    expect(sink.last.facts.ended?.reason).toBe('agent hung up (end_call tool)');
  });
});
