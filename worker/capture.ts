/**
 * Call-data capture for a LiveKit agent: one call in the agent's entrypoint,
 *
 *   const capture = attachCallData(ctx, session);
 *
 * and the call's metadata, transcript and recording are taken care of: a started message at
 * once, answer detection, the conversation from `conversation_item_added`, coalesced progress
 * messages, and a final message from the job's shutdown callback. Messages go through the
 * configured fact sink (SQS, or the embedded in-process pipeline) and never block the agent.
 *
 * What the worker sends are facts (contract v2, functions/contract/facts.ts): the job is one
 * writer (`job:<LiveKit job id>`), numbers its messages 1, 2, 3, ... and every message holds the
 * job's whole view (`cumulative`). The stored record is the merge of every writer's facts, so a
 * job re-dispatched to the same room (a new writer) adds to what the first job said instead of
 * replacing it. The worker formats no time and chooses no folder or recording key: the persist
 * step does, once, from the merged record (functions/domain/render.ts).
 *
 * The call id is the room SID: unique per room instance and what LiveKit's webhooks name,
 * so the webhook function finds the call without an index, and a re-dispatched job finds it too.
 */
import { randomUUID } from 'node:crypto';
import type { JobContext, voice } from '@livekit/agents';
import { RoomEvent, type DisconnectReason, type RemoteParticipant } from '@livekit/rtc-node';
import { getConfig, type Config } from '../functions/config/config.ts';
import {
  CALL_ID_PATTERN,
  deriveItemId,
  MAX_ID_LENGTH,
  MAX_TOOL_CALLS_PER_MESSAGE,
  MAX_TURNS_PER_MESSAGE,
  TOOL_CALL_BUDGET_BYTES,
  MESSAGE_VERSION,
  WRITER_PATTERN,
  type CallFacts,
  type ConversationItem,
  type FactMessage,
  type Observed,
  type ToolCallFact,
  type TurnFact,
} from '../functions/contract/facts.ts';
import type { EndReason, FinalStatus, UnansweredReason, WorkerMessageKind } from '../functions/contract/vocabulary.ts';
import { amdEndReason, decideEndReason, sipStatusText, type ModelUsageLike } from '../functions/domain/insights/index.ts';
import { endReasonOfStatus } from '../functions/domain/unanswered-end-reason.ts';
import { logger } from '../functions/shared/logger.ts';
import { redactPhone } from '../functions/shared/redact.ts';
import type { FactSink } from '../functions/transport/sink.ts';
import { AnswerDetector, type ParticipantLike, type UnansweredEvidence } from './answer.ts';
import { callParties, parseJobMetadata, sipDetails, type CallParties, type JobHints, type SipDetails } from './call-info.ts';
import { conversationItem, type CapturedItem, type ChatMessageLike } from './conversation.ts';
import { closeFacts, evidenceText, toolCallsFrom, usageFrom, type AmdPredictionLike, type CloseEventLike, type FunctionToolsExecutedLike } from './metrics.ts';
import { CoalescingSender } from './sender.ts';
import { describeDisconnect, disconnectReasonName, reasonForDisconnect } from './sip.ts';

export interface CallDataOptions {
  /** Defaults to the process configuration (getConfig()). */
  config?: Config;
  /** Defaults to pipelineFor(config).factSink(): SQS when CALLDATA_QUEUE_URL is set, else embedded. */
  sink?: FactSink;
  /** Least time between two progress messages (ms). Default 2000. */
  progressIntervalMs?: number;
  /** Overrides CALLDATA_ANSWER_TIMEOUT_MS. */
  answerTimeoutMs?: number;
  /** How long the shutdown callback keeps trying to deliver the final message (ms). Default 15000. */
  finalFlushMs?: number;
  /** What to do with the room once the call is known to be unanswered. Default 'delete_room' (stops the ringing). */
  onUnanswered?: 'delete_room' | 'shutdown' | 'none';
  /** End the job when the agent session closes (e.g. the caller hung up). Default true. */
  shutdownOnSessionClose?: boolean;
  now?: () => number;
}

const MAX_REASON = 500;

/** The call id: the room SID (RM_...), or a job-derived id when the job carries no room SID. */
export function callIdFor(job: { id: string; room?: { sid?: string } }): string {
  const sid = job.room?.sid ?? '';
  if (CALL_ID_PATTERN.test(sid)) return sid;
  const fallback = `job_${job.id}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);
  return CALL_ID_PATTERN.test(fallback) ? fallback : `job_${Date.now()}`;
}

/**
 * The writer id of a job: `job:<LiveKit job id>:<instance>`. LiveKit gives every dispatch (and
 * every re-dispatch of a room) a new job id, so a re-dispatched job is a new writer. The instance
 * part is new for every capture: a job process that is restarted with the same job id starts with
 * an empty view, so it must not count as the same cumulative writer (storage would let its first
 * messages replace what the earlier process said).
 */
export function writerFor(job: { id?: string }, instance: string = randomUUID().slice(0, 8)): string {
  const id = (job.id ?? '').replace(/[^A-Za-z0-9_.:@-]/g, '_').slice(0, 180);
  const writer = `job:${id}:${instance}`;
  return id && WRITER_PATTERN.test(writer) ? writer : `job:${randomUUID()}`;
}

/** The call's start: the room's creation time (stable if the job is restarted), else now. */
export function startTimeFor(room: { creationTimeMs?: bigint; creationTime?: bigint } | undefined, now: number): number {
  const fromMs = room?.creationTimeMs ? Number(room.creationTimeMs) : 0;
  const fromS = room?.creationTime ? Number(room.creationTime) * 1000 : 0;
  const created = fromMs > 0 ? fromMs : fromS;
  return created > 0 && created <= now && now - created < 24 * 60 * 60 * 1000 ? created : now;
}

/** The observed fields of a call (facts.ts): each a value and when this job saw it. */
const OBSERVED_FIELDS = ['direction', 'inboundTrunkId', 'outboundTrunkId', 'agentNumber', 'userNumber', 'sipCallId', 'dispatchRuleId', 'jobId', 'roomSid'] as const;
type ObservedField = (typeof OBSERVED_FIELDS)[number];

/** The agents session as the capture reads it beyond its events. */
interface SessionLike {
  readonly usage?: { modelUsage?: readonly ModelUsageLike[] };
}

export class CallDataCapture {
  readonly callId: string;
  /** This job as a writer of facts: `job:<job id>:<instance>`. */
  readonly writer: string;
  readonly roomName: string;
  readonly startedAtMs: number;
  /** False when none of CALL_RECORDING, SAVE_METADATA, SAVE_TRANSCRIPTION is on. */
  readonly enabled: boolean;
  /** CALL_RECORDING=true: the messages ask for a recording (the persist step starts it). */
  readonly recordingRequested: boolean;
  readonly detector: AnswerDetector;

  private readonly ctx: JobContext;
  private readonly config: Config;
  private readonly options: CallDataOptions;
  private readonly now: () => number;
  private readonly hints: JobHints;
  private readonly sender: CoalescingSender;
  private readonly items: CapturedItem[] = [];
  /** Items before this index all have their ids (derived ones included). */
  private idsUpTo = 0;
  /** Occurrences of each derived id so far, so equal items get distinct ids. */
  private readonly derived = new Map<string, number>();
  /** Per-turn latency of the first measured items (at most MAX_TURNS_PER_MESSAGE), by item id. */
  private readonly turns: TurnFact[] = [];
  /** Items before this index were looked at for `turns`. */
  private turnsUpTo = 0;
  private readonly observed: Partial<Record<ObservedField, Observed>> = {};
  private sip: SipDetails = {};
  private parties: CallParties;
  private answeredAtMs: number | undefined;
  private endedAtMs: number | undefined;
  /** end_reason_detail: why the call ended, in words (the first explanation wins). */
  private endReason: string | undefined;
  /** What LiveKit and the agent said about the end so far (decideEndReason's input). */
  private readonly evidence: UnansweredEvidence = {};
  /** The agent's room connection ended: a session closed after that closes because of it. */
  private roomGone = false;
  private endReasonCode: EndReason | undefined;
  private endEvidence: string | undefined;
  private sipStatus: CallFacts['sipStatus'];
  private answeringMachine: CallFacts['answeringMachine'];
  private readonly jobId: string | undefined;
  private readonly roomSid: string | undefined;
  private session: SessionLike | undefined;
  /** The newest `session_usage_updated` usage (the session's whole usage so far). */
  private lastUsage: SessionLike['usage'];
  /** function_tools_executed events not yet converted (converted when a message is built). */
  private readonly toolEvents: { event: FunctionToolsExecutedLike; atMs: number }[] = [];
  private readonly toolCalls: ToolCallFact[] = [];
  private toolCallBytes = 0;
  private toolCallsOmitted = 0;
  private status: FinalStatus | undefined;
  private finalKind: 'ended' | 'unanswered' | undefined;
  private seq = 0;
  private startedDelivered = false;
  private finalDelivered = false;
  private finished: Promise<void> | undefined;
  private readonly detach: (() => void)[] = [];
  private sinkPromise: Promise<FactSink> | undefined;

  constructor(ctx: JobContext, session: voice.AgentSession | undefined, options: CallDataOptions = {}) {
    this.ctx = ctx;
    this.options = options;
    this.config = options.config ?? getConfig();
    this.now = options.now ?? Date.now;
    const now = this.now();
    this.callId = callIdFor(ctx.job);
    this.writer = writerFor(ctx.job);
    this.roomName = ctx.job.room?.name || ctx.room.name || this.callId;
    this.startedAtMs = startTimeFor(ctx.job.room, now);
    this.hints = parseJobMetadata(ctx.job.metadata);
    this.parties = callParties(this.hints, this.sip);
    this.jobId = ctx.job.id ? ctx.job.id.slice(0, MAX_ID_LENGTH) : undefined;
    this.roomSid = ctx.job.room?.sid ? ctx.job.room.sid.slice(0, MAX_ID_LENGTH) : undefined;
    this.observe(now);
    this.enabled = this.config.callRecording || this.config.saveMetadata || this.config.saveTranscription;
    this.recordingRequested = this.config.callRecording;

    this.sender = new CoalescingSender({
      sink: () => this.sink(),
      build: () => this.build(),
      minIntervalMs: options.progressIntervalMs ?? 2_000,
      now: this.now,
      onSent: (message) => {
        if (message.kind === 'started') this.startedDelivered = true;
        if (message.kind === 'unanswered' || message.kind === 'ended') this.finalDelivered = true;
      },
      onFailed: (message, error, failures) => {
        // Log the first failure and then every tenth, so an outage does not flood the logs.
        if (failures === 1 || failures % 10 === 0) {
          logger.warn('call data message not delivered yet; will retry', { callId: this.callId, kind: message.kind, failures, error: (error as Error).message });
        }
      },
    });

    this.detector = new AnswerDetector(
      {
        answered: (participant, atMs) => this.onAnswered(participant, atMs),
        unanswered: (reason, detail, atMs, evidence) => this.onUnanswered(reason, detail, atMs, evidence),
        callerLeft: (participant, detail, atMs) => {
          this.evidence.disconnectReason ??= disconnectReasonName(participant.disconnectReason);
          this.ended(`caller hung up (${detail})`, atMs);
        },
      },
      { timeoutMs: options.answerTimeoutMs ?? this.config.answerTimeoutMs, now: this.now },
    );

    this.listen(session);
    ctx.addShutdownCallback(() => this.finish());
    logger.info('call data capture started', {
      callId: this.callId,
      writer: this.writer,
      direction: this.parties.direction,
      userNumber: redactPhone(this.parties.userNumber),
      recording: this.recordingRequested,
    });
    if (this.enabled) this.sender.urgent();
  }

  private sink(): Promise<FactSink> {
    if (!this.sinkPromise) {
      // The wiring (and with it the persist step, on the embedded default) loads on first send.
      const sink = this.options.sink ? Promise.resolve(this.options.sink) : import('../functions/wiring.ts').then(({ pipelineFor }) => pipelineFor(this.config).factSink());
      this.sinkPromise = sink;
      // A sink that could not be created (e.g. a driver failed to load) is tried again on the next send.
      sink.catch(() => {
        if (this.sinkPromise === sink) this.sinkPromise = undefined;
      });
    }
    return this.sinkPromise;
  }

  private observedValue(field: ObservedField): string | undefined {
    if (field === 'jobId') return this.jobId;
    if (field === 'roomSid') return this.roomSid;
    return this.parties[field];
  }

  /** Takes the parties' current values as observations; a value keeps the time it was first seen. */
  private observe(atMs: number): boolean {
    let changed = false;
    for (const field of OBSERVED_FIELDS) {
      const value = this.observedValue(field);
      if (value === undefined || this.observed[field]?.value === value) continue;
      this.observed[field] = { value, atMs };
      changed = true;
    }
    return changed;
  }

  private listen(session: voice.AgentSession | undefined): void {
    const room = this.ctx.room;
    const onConnected = () => this.scanParticipants();
    const onJoined = (p: RemoteParticipant) => this.seen(p);
    const onAttributes = (_changed: Record<string, string>, p: { identity: string }) => {
      const remote = room.remoteParticipants.get(p.identity);
      if (remote) this.statusChanged(remote);
    };
    const onLeft = (p: RemoteParticipant) => this.detector.left(p as ParticipantLike);
    const onDisconnected = (reason?: DisconnectReason) => this.roomDisconnected(reason);
    room.on(RoomEvent.Connected, onConnected);
    room.on(RoomEvent.ParticipantConnected, onJoined);
    room.on(RoomEvent.ParticipantAttributesChanged, onAttributes);
    room.on(RoomEvent.ParticipantDisconnected, onLeft);
    room.on(RoomEvent.Disconnected, onDisconnected);
    this.detach.push(() => {
      room.off(RoomEvent.Connected, onConnected);
      room.off(RoomEvent.ParticipantConnected, onJoined);
      room.off(RoomEvent.ParticipantAttributesChanged, onAttributes);
      room.off(RoomEvent.ParticipantDisconnected, onLeft);
      room.off(RoomEvent.Disconnected, onDisconnected);
    });
    if (room.isConnected) this.scanParticipants();
    // ctx.connect() hands every participant already in the room (and each later one) to the
    // participant entrypoints; rtc-node emits no ParticipantConnected for those present at connect.
    try {
      this.ctx.addParticipantEntrypoint(async (_ctx, participant) => this.seen(participant));
    } catch {
      // A fake or older JobContext without participant entrypoints: the room events suffice.
    }

    if (session) {
      this.session = session as unknown as SessionLike;
      // Each handler only stores what it got and marks the view dirty: conversion happens when a message is built.
      const handlers: Record<string, (event: never) => void> = {
        conversation_item_added: (event: { item: unknown; createdAt?: number }) => this.onConversationItem(event.item as ChatMessageLike, event.createdAt),
        close: (event: CloseEventLike) => this.onSessionClose(event),
        session_usage_updated: (event: { usage?: SessionLike['usage'] }) => {
          this.lastUsage = event.usage;
        },
      };
      if (this.config.saveToolCalls) {
        handlers.function_tools_executed = (event: FunctionToolsExecutedLike) => {
          this.toolEvents.push({ event, atMs: this.now() });
          if (this.enabled && this.detector.state === 'answered') this.sender.touch();
        };
      }
      for (const [name, handler] of Object.entries(handlers)) session.on(name as never, handler as never);
      this.detach.push(() => {
        for (const [name, handler] of Object.entries(handlers)) session.off(name as never, handler as never);
      });
    }
  }

  /** The session closed: why (CloseReason, and an error if any) is evidence for the end reason. */
  private onSessionClose(event: CloseEventLike): void {
    const close = closeFacts(event);
    // A session that closes after the room went away closes because of it (the job's shutdown
    // closes it as `user_initiated`): only an error then says something about the end.
    if (!this.roomGone) this.evidence.closeReason ??= close.closeReason;
    if (close.closeError) this.evidence.closeError = true;
    if (close.closeError) logger.warn('agent session closed with an error', { callId: this.callId, detail: close.detail });
    // An error explains the end better than whatever was noted before it (e.g. the room closing).
    if (close.closeError && this.finalKind === undefined) this.endReason = close.detail;
    this.ended(close.detail, this.now());
    if (this.options.shutdownOnSessionClose !== false) this.ctx.shutdown('agent session closed');
  }

  /**
   * The agent left the room. Before an answer this means the call is over unanswered: the
   * room closes a moment after the caller leaves, often before the participant's own
   * disconnect event reaches us.
   */
  private roomDisconnected(reason: DisconnectReason | undefined): void {
    this.roomGone = true;
    const detail = describeDisconnect(reason);
    if (this.detector.state === 'waiting') {
      this.detector.markUnanswered(reasonForDisconnect(reason), `room ended before the call was active (${detail})`, { disconnectReason: disconnectReasonName(reason) });
    } else {
      // The room closing (or being deleted) takes the SIP leg with it; when the caller's own departure
      // was not seen first, this is what ended the call. The agent leaving on its own (CLIENT_INITIATED) says nothing.
      const name = disconnectReasonName(reason);
      if (name !== 'CLIENT_INITIATED' && name !== 'UNKNOWN_REASON') this.evidence.disconnectReason ??= name;
      this.ended(`room disconnected (${detail})`, this.now());
    }
  }

  private scanParticipants(): void {
    for (const participant of this.ctx.room.remoteParticipants.values()) this.seen(participant);
  }

  private seen(participant: RemoteParticipant): void {
    this.detector.seen(participant as ParticipantLike);
    this.refreshParties(participant);
  }

  private statusChanged(participant: RemoteParticipant): void {
    this.detector.statusChanged(participant as ParticipantLike);
    this.refreshParties(participant);
  }

  private refreshParties(participant: RemoteParticipant): void {
    if (participant.identity !== this.detector.caller) return;
    const details = sipDetails(participant.attributes);
    const same =
      details.userNumber === this.sip.userNumber &&
      details.agentNumber === this.sip.agentNumber &&
      details.trunkId === this.sip.trunkId &&
      details.sipCallId === this.sip.sipCallId &&
      details.ruleId === this.sip.ruleId;
    if (same) return;
    this.sip = details;
    this.parties = callParties(this.hints, details);
    if (this.observe(this.now()) && this.enabled && !this.finalKind) this.sender.touch();
  }

  /** The capture's per-event work: convert, append, mark dirty. Kept allocation-light for the agent's loop. */
  onConversationItem(item: ChatMessageLike, createdAt?: number): void {
    if (!this.enabled || this.finalKind === 'unanswered') return;
    const entry = conversationItem(item, createdAt ?? this.now());
    if (!entry) return;
    this.items.push(entry);
    // The transcript changed, or (metadata alone) the latency summary did.
    if (this.detector.state === 'answered' && (this.config.saveTranscription || (this.config.saveMetadata && entry.metrics))) this.sender.touch();
  }

  private onAnswered(participant: ParticipantLike | undefined, atMs: number): void {
    this.answeredAtMs = atMs;
    if (participant) this.refreshParties(participant as RemoteParticipant);
    logger.info('call answered', { callId: this.callId, waitedMs: atMs - this.startedAtMs });
    if (this.enabled) this.sender.urgent();
  }

  private onUnanswered(reason: UnansweredReason, detail: string, atMs: number, evidence: UnansweredEvidence): void {
    this.status = reason;
    this.endReason = detail.slice(0, MAX_REASON);
    Object.assign(this.evidence, evidence);
    // The detector's status and the end reason come from the same rules (worker/sip.ts delegates to decideEndReason).
    this.endReasonCode = Object.keys(evidence).length > 0 ? decideEndReason({ ...evidence, answered: false }).endReason : endReasonOfStatus(reason);
    this.endEvidence = evidenceText(evidence);
    this.endedAtMs = atMs;
    this.finalKind = 'unanswered';
    logger.info('call unanswered', { callId: this.callId, reason, userNumber: redactPhone(this.parties.userNumber) });
    if (this.enabled) this.sender.urgent();
    const action = this.options.onUnanswered ?? 'delete_room';
    if (action === 'delete_room') void this.ctx.deleteRoom().catch(() => undefined);
    else if (action === 'shutdown') this.ctx.shutdown('call unanswered');
  }

  /** Records why and when the call ended (first caller wins); the final message is sent at shutdown. */
  ended(reason: string, atMs: number = this.now()): void {
    if (this.finalKind === 'unanswered') return;
    this.endedAtMs ??= atMs;
    this.endReason ??= reason.slice(0, MAX_REASON);
  }

  /** The agent hung up (the end-call tool): the end reason is `agent_hangup`. */
  agentHungUp(detail = 'agent hung up (end_call tool)'): void {
    this.evidence.hangupTool = true;
    this.ended(detail);
  }

  /** The agent handed the call on (e.g. a SIP transfer): the end reason is `transfer`. */
  transferred(detail = 'call transferred'): void {
    this.evidence.transferred = true;
    this.ended(detail);
  }

  /** The agent ended the call because it reached its maximum duration: `max_duration` (status limit_reached). */
  maxDurationReached(detail = 'maximum call duration reached'): void {
    this.evidence.maxDurationReached = true;
    this.ended(detail);
  }

  /**
   * LiveKit's answering-machine detection gave its verdict (AMD's `amd_prediction` event):
   * kept in the metadata, and a voicemail verdict makes the end reason `voicemail`.
   * Wire it with `amd.on('amd_prediction', (e) => capture.answeringMachineResult(e))`.
   */
  answeringMachineResult(prediction: AmdPredictionLike): void {
    const result = typeof prediction.category === 'string' && prediction.category ? prediction.category.slice(0, 64) : undefined;
    if (!result) return;
    this.answeringMachine = { result, atMs: this.now(), ...(typeof prediction.isMachine === 'boolean' ? { isMachine: prediction.isMachine } : {}) };
    if (amdEndReason(result) === 'voicemail') this.evidence.voicemail = true;
    if (this.enabled && !this.finalKind) this.sender.touch();
  }

  /** For the agent's own logic: the call was answered / not answered. */
  markAnswered(): void {
    this.detector.markAnswered();
  }
  markUnanswered(reason: UnansweredReason, detail: string): void {
    this.detector.markUnanswered(reason, detail);
  }
  /** The outbound dial failed with this SIP status (see outbound.ts). */
  dialFailed(sipStatusCode: number | undefined, detail: string): void {
    if (sipStatusCode !== undefined && Number.isInteger(sipStatusCode) && sipStatusCode >= 100 && sipStatusCode <= 699) {
      const text = sipStatusText(sipStatusCode);
      this.sipStatus = { code: sipStatusCode, ...(text ? { text } : {}), atMs: this.now() };
    }
    this.detector.dialFailed(sipStatusCode, detail);
  }

  get answered(): boolean {
    return this.detector.state === 'answered';
  }

  get conversationLength(): number {
    return this.items.length;
  }

  /** The transcript with every item's id (ids derived once for items that came without one). */
  private conversation(): ConversationItem[] {
    this.assignIds();
    return this.items.slice() as ConversationItem[];
  }

  /** Derives, once, the ids of items that came without one. */
  private assignIds(): void {
    const items = this.items;
    for (let i = this.idsUpTo; i < items.length; i++) {
      const item = items[i] as CapturedItem;
      if (item.id !== undefined) continue;
      const base = deriveItemId(item);
      const occurrence = this.derived.get(base) ?? 0;
      this.derived.set(base, occurrence + 1);
      item.id = occurrence === 0 ? base : deriveItemId(item, occurrence);
    }
    this.idsUpTo = items.length;
  }

  /**
   * The measured turns' latency, independent of the transcript. Capped at the job's first
   * MAX_TURNS_PER_MESSAGE turns, so a long call's list never outgrows an SQS message and each
   * message still holds everything the earlier ones did.
   */
  private turnFacts(): TurnFact[] {
    this.assignIds();
    const items = this.items;
    for (; this.turnsUpTo < items.length && this.turns.length < MAX_TURNS_PER_MESSAGE; this.turnsUpTo++) {
      const item = items[this.turnsUpTo];
      if (item?.metrics && item.id !== undefined) this.turns.push({ id: item.id, ...item.metrics });
    }
    return this.turns.slice();
  }

  /** The session's usage so far (cumulative): its own getter, else the newest usage event. */
  private usage(): ReturnType<typeof usageFrom> {
    let modelUsage: readonly ModelUsageLike[] | undefined;
    try {
      modelUsage = this.session?.usage?.modelUsage;
    } catch {
      // A session torn down mid-read: the last reported usage stands.
    }
    return usageFrom((modelUsage ?? this.lastUsage?.modelUsage)?.slice(0, 64));
  }

  /**
   * The job's tool calls, in order, up to TOOL_CALL_BUDGET_BYTES of JSON (events converted once, on
   * the first build after they came). Tool calls travel inline, never by reference, so the budget
   * keeps every message under the SQS limit beside the turns; keeping the first ones (not the
   * last) keeps each message a superset of the previous one, as `cumulative` promises.
   */
  private takeToolCalls(): ToolCallFact[] {
    for (const { event, atMs } of this.toolEvents.splice(0)) {
      for (const call of toolCallsFrom(event, atMs)) {
        const bytes = Buffer.byteLength(JSON.stringify(call), 'utf8');
        if (this.toolCallBytes + bytes > TOOL_CALL_BUDGET_BYTES || this.toolCalls.length >= MAX_TOOL_CALLS_PER_MESSAGE) {
          if (this.toolCallsOmitted++ === 0) logger.warn('tool calls beyond the per-call budget are not saved', { callId: this.callId, budgetBytes: TOOL_CALL_BUDGET_BYTES });
          continue;
        }
        this.toolCallBytes += bytes;
        this.toolCalls.push(call);
      }
    }
    return this.toolCalls;
  }

  /** The job's whole view as the next message (also what the sender sends): every call numbers it. */
  build(): FactMessage {
    const now = this.now();
    const kind: WorkerMessageKind = this.finalKind ?? (this.startedDelivered ? 'progress' : 'started');
    const answered = this.detector.state === 'answered';
    const facts: CallFacts = { roomName: this.roomName, startedAtMs: this.startedAtMs };
    for (const field of OBSERVED_FIELDS) {
      const observation = this.observed[field];
      if (observation) (facts as Record<ObservedField, Observed>)[field] = observation;
    }
    if (answered && this.answeredAtMs !== undefined) facts.answeredAtMs = this.answeredAtMs;
    if (this.sipStatus) facts.sipStatus = this.sipStatus;
    if (this.finalKind && this.status) {
      const atMs = this.endedAtMs ?? now;
      const end = {
        ...(this.endReason === undefined ? {} : { reason: this.endReason }),
        ...(this.endReasonCode === undefined ? {} : { endReason: this.endReasonCode }),
        ...(this.endEvidence === undefined ? {} : { evidence: this.endEvidence }),
      };
      facts.ended = { atMs, source: 'worker', ...end };
      facts.outcome = { source: 'worker', atMs, status: this.status, ...end };
    }
    if (this.recordingRequested) facts.recording = this.config.s3.bucket ? { requested: true, bucket: this.config.s3.bucket } : { requested: true };
    // Unanswered calls keep no transcript; a conversation is only sent once answered.
    if (answered && this.config.saveTranscription) facts.conversation = this.conversation();
    if (answered && this.config.saveMetadata) {
      const turns = this.turnFacts();
      if (turns.length > 0) facts.turns = turns;
    }
    const usage = this.usage();
    if (usage.length > 0) facts.usage = { [this.writer]: usage };
    if (this.config.saveToolCalls) {
      const calls = this.takeToolCalls();
      if (calls.length > 0) facts.toolCalls = calls;
    }
    if (this.answeringMachine) facts.answeringMachine = this.answeringMachine;
    this.seq += 1;
    return { v: MESSAGE_VERSION, kind, callId: this.callId, writer: this.writer, seq: this.seq, cumulative: true, sentAtMs: now, facts };
  }

  /** The shutdown callback: the final message with end time, outcome and the whole transcript. */
  finish(): Promise<void> {
    this.finished ??= this.finishOnce();
    return this.finished;
  }

  private async finishOnce(): Promise<void> {
    this.detector.close();
    for (const undo of this.detach.splice(0)) undo();
    if (!this.finalKind) {
      const now = this.now();
      const answered = this.detector.state === 'answered';
      // One rule for the end reason and status (functions/domain/insights/end-reason.ts): a session
      // that closed with an error is failed / agent_error, never completed.
      const decision = decideEndReason({ ...this.evidence, answered });
      this.endReasonCode = decision.endReason;
      this.endEvidence = evidenceText(this.evidence);
      this.status = decision.status;
      if (answered) {
        this.finalKind = 'ended';
        this.endedAtMs ??= now;
        this.endReason ??= 'job ended';
      } else {
        // The job ended while the call was still ringing: nobody answered.
        this.finalKind = 'unanswered';
        this.endedAtMs = now;
        this.endReason = this.evidence.closeError ? (this.endReason ?? 'agent session failed before the call was answered') : 'job ended before the call was answered';
      }
    }
    if (!this.enabled) return;
    const deadline = this.now() + (this.options.finalFlushMs ?? 15_000);
    // An unanswered call's message was already sent when it was known: do not send a second record.
    const delivered = await this.sender.close(deadline, !(this.finalKind === 'unanswered' && this.finalDelivered));
    if (delivered) {
      logger.info('call data final message delivered', { callId: this.callId, writer: this.writer, kind: this.finalKind, status: this.status, items: this.items.length });
    } else {
      logger.error('call data final message not delivered before shutdown; the webhook or the sweeper will close the call', { callId: this.callId, kind: this.finalKind });
    }
    const sink = await this.sink().catch(() => undefined);
    if (sink?.transport === 'embedded') {
      // The embedded pipeline runs recording work in the background: let it finish before the process goes.
      const { drainEmbedded } = await import('../functions/transport/embedded-sink.ts');
      if (!(await drainEmbedded(Math.max(1_000, deadline - this.now())))) {
        logger.warn('background recording work still running at shutdown', { callId: this.callId });
      }
    }
  }
}

/** Adds call-data capture to a job. Call it once, early in the entrypoint (before or after ctx.connect()). */
export function attachCallData(ctx: JobContext, session?: voice.AgentSession, options?: CallDataOptions): CallDataCapture {
  return new CallDataCapture(ctx, session, options);
}
