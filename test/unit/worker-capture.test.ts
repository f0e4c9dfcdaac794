/**
 * The capture with LiveKit faked at the SDK edge: a fake JobContext / Room (an EventEmitter
 * with the rtc-node event names) and a fake AgentSession emitting `conversation_item_added`.
 * Every snapshot the capture sends is validated against the real contract.
 */
import { EventEmitter } from 'node:events';
import type { JobContext, voice } from '@livekit/agents';
import { DisconnectReason, ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig, type Config } from '../../functions/config/config.ts';
import { parseSnapshot, type Snapshot } from '../../functions/contract/snapshot.ts';
import { callPaths } from '../../functions/storage/paths.ts';
import type { SendReceipt, SnapshotSink } from '../../functions/transport/sink.ts';
import { attachCallData, type CallDataCapture } from '../../worker/capture.ts';
import { endCall, HANGUP_DISABLED_REPLY, HANGUP_DONE_REPLY } from '../../worker/hangup.ts';
import { dialIfOutbound } from '../../worker/outbound.ts';

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
  constructor(metadata = '', createdAtMs = Date.now()) {
    this.job = { id: 'AJ_test', metadata, room: { sid: 'RM_TestRoom01', name: 'sip-room', creationTimeMs: BigInt(createdAtMs) } };
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

class FakeSession extends EventEmitter {
  say(role: 'user' | 'assistant', text: string, interrupted = false): void {
    this.emit('conversation_item_added', { type: 'conversation_item_added', item: { type: 'message', role, content: [text], interrupted, createdAt: Date.now() }, createdAt: Date.now() });
  }
  close(reason = 'participant_disconnected'): void {
    this.emit('close', { type: 'close', reason });
  }
}

class RecordingSink implements SnapshotSink {
  readonly transport = 'sqs' as const;
  readonly snapshots: Snapshot[] = [];
  down = false;
  async send(snapshot: Snapshot): Promise<SendReceipt> {
    if (this.down) throw new Error('queue unreachable');
    // Exactly what the real sinks do first: validate against the contract.
    this.snapshots.push(parseSnapshot(JSON.parse(JSON.stringify(snapshot))));
    return { transport: 'sqs', messageId: String(this.snapshots.length), bytes: 0, offloaded: false };
  }
  get kinds(): string[] {
    return this.snapshots.map((s) => s.kind);
  }
  get last(): Snapshot {
    const last = this.snapshots.at(-1);
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

function setup(env: Record<string, string> = {}, metadata = '') {
  const config: Config = loadConfig({ ...BASE_ENV, ...env });
  const ctx = new FakeJobContext(metadata);
  const session = new FakeSession();
  const sink = new RecordingSink();
  const capture = attachCallData(ctx as unknown as JobContext, session as unknown as voice.AgentSession, {
    config,
    sink,
    progressIntervalMs: 1_000,
    answerTimeoutMs: 30_000,
    finalFlushMs: 5_000,
  });
  return { config, ctx, session, sink, capture };
}

const sipCaller = () =>
  new FakeParticipant('sip_+919876543210', ParticipantKind.SIP, {
    'sip.callStatus': 'ringing',
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

describe('call data capture', () => {
  beforeEach(() => vi.useFakeTimers({ now: Date.UTC(2026, 10, 23, 19, 18, 38, 120) }));
  afterEach(() => vi.useRealTimers());

  it('sends a started snapshot at once with the room SID as call id and the recording key', async () => {
    // Prepare + Act
    const { sink, capture } = setup();
    await settle();
    // Assess
    expect(sink.kinds).toEqual(['started']);
    const started = sink.last;
    const paths = callPaths('sip-room', started.call.startedAtMs, 'Asia/Kolkata', 'RM_TestRoom01');
    expect(started.callId).toBe('RM_TestRoom01');
    expect(started.recording).toEqual({ key: `${paths.folder}/${paths.recordingFile}`, bucket: 'recordings' });
    expect(started.recording?.key).toMatch(/^sip-room\/20261124T004838\.120_stRoom01\/call_sip-room_20261124T004838\.120_stRoom01\.ogg$/);
    expect(started.call).toMatchObject({ answered: false, status: 'in_progress', direction: 'inbound' });
    expect(started.conversation).toBeUndefined();
    expect(capture.enabled).toBe(true);
  });

  it('records an answered call: numbers from SIP attributes, coalesced progress, and a complete final snapshot', async () => {
    // Prepare
    const { sink, session, ctx } = await answeredCall();
    // Act: a conversation of four turns in quick succession, then the job ends
    session.say('user', 'hello');
    session.say('assistant', 'Hi, how can I help?');
    session.say('user', 'what are your hours?');
    session.say('assistant', 'Nine to five.', true);
    await settle(1_000);
    await ctx.runShutdown();
    // Assess
    const kinds = sink.kinds;
    expect(kinds[0]).toBe('started');
    expect(kinds.at(-1)).toBe('ended');
    // Four turns inside one interval produce one progress snapshot, not four.
    expect(kinds.filter((k) => k === 'progress').length).toBeLessThanOrEqual(2);
    const final = sink.last;
    expect(final.call).toMatchObject({
      answered: true,
      status: 'completed',
      userNumber: '+919876543210',
      agentNumber: '+14155550100',
      inboundTrunkId: 'ST_inbound',
      sipCallId: 'SCL_abc',
    });
    expect(final.call.endedAtMs).toBeGreaterThanOrEqual(final.call.startedAtMs);
    expect(final.conversation?.map((i) => [i.role, i.content, i.interrupted])).toEqual([
      ['user', 'hello', false],
      ['assistant', 'Hi, how can I help?', false],
      ['user', 'what are your hours?', false],
      ['assistant', 'Nine to five.', true],
    ]);
    expect(sink.snapshots.every((s) => s.recording?.key === final.recording?.key)).toBe(true);
    const seqs = sink.snapshots.map((s) => s.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('marks the call answered as soon as the SIP participant is active', async () => {
    const { sink } = await answeredCall();
    expect(sink.last.call.answered).toBe(true);
    expect(sink.last.call.answeredAtMs).toBeDefined();
  });

  it('never sends the conversation before the call is answered', async () => {
    const { sink, session, ctx } = setup();
    ctx.room.connect();
    session.say('assistant', 'Hello? Is anyone there?');
    await settle(5_000);
    expect(sink.snapshots.every((s) => s.conversation === undefined)).toBe(true);
  });

  it('reports an unanswered call on timeout: answered=false, no transcript, room deleted, no second record at exit', async () => {
    // Prepare: a SIP participant that keeps ringing
    const { sink, session, ctx } = setup();
    const caller = sipCaller();
    ctx.room.join(caller);
    ctx.room.connect();
    session.say('assistant', 'Hello?');
    // Act
    await settle(30_000);
    await settle(100);
    const sentBeforeExit = sink.snapshots.length;
    await ctx.runShutdown();
    // Assess
    const final = sink.last;
    expect(final.kind).toBe('unanswered');
    expect(final.call).toMatchObject({ answered: false, status: 'no_answer' });
    expect(final.call.endedAtMs).toBeDefined();
    expect(final.conversation).toBeUndefined();
    expect(final.recording?.key).toBeDefined();
    expect(ctx.roomDeleted).toBe(1);
    expect(sink.snapshots.length).toBe(sentBeforeExit);
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
    expect(sink.last.call.status).toBe('abandoned');
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
    expect(sink.last.call).toMatchObject({ status: 'abandoned', endReason: 'room ended before the call was active (room_closed)' });
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
    expect(sink.last.call.endReason).toBe('caller hung up (client_initiated)');
  });

  it('reports a job that ends while the call is still ringing as unanswered', async () => {
    const { sink, ctx } = setup();
    ctx.room.join(sipCaller());
    ctx.room.connect();
    await settle();
    await ctx.runShutdown();
    expect(sink.last.kind).toBe('unanswered');
    expect(sink.last.call.status).toBe('no_answer');
  });

  it('keeps trying while the queue is down and delivers the newest state when it returns', async () => {
    const { sink, session, ctx } = await answeredCall();
    sink.down = true;
    session.say('user', 'one');
    session.say('assistant', 'two');
    await settle(20_000);
    session.say('user', 'three');
    await settle(2_000);
    sink.down = false;
    await settle(15_000);
    expect(sink.last.conversation?.map((i) => i.content)).toEqual(['one', 'two', 'three']);
    await ctx.runShutdown();
    expect(sink.last.kind).toBe('ended');
  });

  it('omits the conversation when SAVE_TRANSCRIPTION=false', async () => {
    const { sink, session, ctx } = await answeredCall({ SAVE_TRANSCRIPTION: 'false' });
    session.say('user', 'hello');
    await ctx.runShutdown();
    expect(sink.snapshots.every((s) => s.conversation === undefined)).toBe(true);
  });

  it('omits the recording when CALL_RECORDING=false', async () => {
    const { sink } = setup({ CALL_RECORDING: 'false' });
    await settle();
    expect(sink.last.recording).toBeUndefined();
  });

  it('sends nothing at all when every call-data feature is off', async () => {
    const { sink, session, ctx, capture } = setup({ CALL_RECORDING: 'false', SAVE_METADATA: 'false', SAVE_TRANSCRIPTION: 'false' });
    session.say('user', 'hello');
    await settle(5_000);
    await ctx.runShutdown();
    expect(capture.enabled).toBe(false);
    expect(sink.snapshots).toHaveLength(0);
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
    expect(sink.last.call).toMatchObject({ direction: 'outbound', outboundTrunkId: 'ST_out', userNumber: '+14155550123', status: 'busy' });
  });

  it('does not dial when the job is inbound', async () => {
    const api = { createSipParticipant: vi.fn() };
    await expect(dialIfOutbound({ hints: {}, roomName: 'r', api })).resolves.toEqual({ dialed: false });
    expect(api.createSipParticipant).not.toHaveBeenCalled();
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
    expect(sink.last.call.endReason).toBe('agent hung up (end_call tool)');
  });
});
