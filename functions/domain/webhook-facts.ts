/**
 * What LiveKit's webhooks say about a call, as facts (no storage, no SDK types: the verified
 * event is read structurally). The call id is the room SID, which the worker uses too.
 *
 *   room_finished          the room closed: an end candidate (`room_finished`, weaker than the
 *                          worker's and participant_left's) and an inferred outcome (`webhook`:
 *                          the call is over; answered or not follows the record; end reason
 *                          `worker_lost`, which the worker's own outcome overrides)
 *   participant_left       a SIP participant left (kind SIP, or `sip.*` attributes): an end
 *                          candidate that says when the caller hung up and, from its
 *                          DisconnectReason, why (end reason + `disconnect:<NAME>` evidence)
 *   egress_started,        the egress's progress and result: status (LiveKit numbering),
 *   egress_updated,        file key, size, duration (ns → ms), error
 *   egress_ended
 *
 * Every event becomes one message whose writer is `webhook:<event id>`: LiveKit delivers the
 * same id again when it retries, and the message is then identical, so merging it is a no-op.
 */
import { createHash } from 'node:crypto';
import { CALL_ID_PATTERN, MESSAGE_VERSION, factMessageSchema, type CallFacts, type FactMessage } from '../contract/facts.ts';
import { WORKER_LOST } from '../contract/vocabulary.ts';
import { endReasonFromDisconnect } from './insights/index.ts';
import { egressFactOf, safeInt, type EgressInfoView, type Int64 } from './recorder.ts';

export interface RoomView {
  sid?: string;
  name?: string;
  /** Seconds since the epoch. */
  creationTime?: Int64;
  creationTimeMs?: Int64;
}

export interface ParticipantView {
  identity?: string;
  /** ParticipantInfo.Kind: SIP is 3 (or its name). */
  kind?: number | string;
  attributes?: Readonly<Record<string, string>>;
  /** DisconnectReason (number or name). */
  disconnectReason?: number | string;
}

export interface WebhookEventView {
  event?: string;
  id?: string;
  /** Seconds since the epoch. */
  createdAt?: Int64;
  room?: RoomView;
  participant?: ParticipantView;
  egressInfo?: EgressInfoView;
}

export type WebhookFacts = { kind: 'facts'; message: FactMessage } | { kind: 'ignored'; reason: string };

/** ParticipantInfo.Kind.SIP. */
export const SIP_PARTICIPANT_KIND = 3;

/** LiveKit's DisconnectReason names, by number. */
export const DISCONNECT_REASONS = [
  'UNKNOWN_REASON',
  'CLIENT_INITIATED',
  'DUPLICATE_IDENTITY',
  'SERVER_SHUTDOWN',
  'PARTICIPANT_REMOVED',
  'ROOM_DELETED',
  'STATE_MISMATCH',
  'JOIN_FAILURE',
  'MIGRATION',
  'SIGNAL_CLOSE',
  'ROOM_CLOSED',
  'USER_UNAVAILABLE',
  'USER_REJECTED',
  'SIP_TRUNK_FAILURE',
  'CONNECTION_TIMEOUT',
  'MEDIA_FAILURE',
  'AGENT_ERROR',
] as const;

const EGRESS_EVENTS = new Set(['egress_started', 'egress_updated', 'egress_ended']);

export function isSipParticipant(participant: ParticipantView | undefined): boolean {
  if (!participant) return false;
  if (participant.kind === SIP_PARTICIPANT_KIND || (typeof participant.kind === 'string' && /^(PARTICIPANT_KIND_)?SIP$/i.test(participant.kind))) return true;
  return Object.keys(participant.attributes ?? {}).some((key) => key.startsWith('sip.'));
}

function disconnectReasonName(reason: number | string | undefined): string | undefined {
  if (typeof reason === 'number') return reason > 0 ? DISCONNECT_REASONS[reason] : undefined;
  if (typeof reason === 'string' && reason && reason !== 'UNKNOWN_REASON') return reason.slice(0, 64);
  return undefined;
}

/** Why the SIP participant left, as an end reason and its evidence (when LiveKit said why). */
export function participantLeftEndReason(participant: ParticipantView): Pick<NonNullable<CallFacts['ended']>, 'endReason' | 'evidence'> {
  const name = disconnectReasonName(participant.disconnectReason);
  if (!name) return {};
  const endReason = endReasonFromDisconnect(name);
  return endReason ? { endReason, evidence: `disconnect:${name}` } : { evidence: `disconnect:${name}` };
}

/** Why the SIP participant left, as the metadata's end_reason_detail candidate. */
export function participantLeftReason(participant: ParticipantView): string {
  const parts = [disconnectReasonName(participant.disconnectReason), participant.attributes?.['sip.callStatus']].filter((p): p is string => !!p);
  return (parts.length > 0 ? `sip participant left: ${parts.join(', ')}` : 'sip participant left').slice(0, 512);
}

function secondsToMs(value: Int64 | undefined): number | undefined {
  const seconds = safeInt(value);
  return seconds === undefined || seconds === 0 ? undefined : seconds * 1000;
}

/** The writer of an event: its id, or a hash of its body when LiveKit sent none. */
export function webhookWriter(id: string | undefined, fallback: string): string {
  const clean = id && /^[A-Za-z0-9_.:@-]{1,180}$/.test(id) ? id : undefined;
  return `webhook:${clean ?? createHash('sha256').update(id || fallback, 'utf8').digest('hex').slice(0, 40)}`;
}

/**
 * The facts one verified webhook event states, as a message for the fact sink, or why it
 * states none. `nowMs` is used only when the event carries no time; `bodyHash` names the
 * writer of an event without id.
 */
export function webhookFacts(event: WebhookEventView, options: { nowMs: number; bodyHash?: string }): WebhookFacts {
  const name = event.event ?? '';
  const atMs = secondsToMs(event.createdAt) ?? options.nowMs;
  let callId: string | undefined;
  let facts: CallFacts;

  if (name === 'room_finished') {
    callId = event.room?.sid;
    const startedAtMs = safeInt(event.room?.creationTimeMs) || secondsToMs(event.room?.creationTime);
    facts = {
      ...(event.room?.name ? { roomName: event.room.name } : {}),
      ...(startedAtMs ? { startedAtMs } : {}),
      ended: { source: 'room_finished', atMs },
      outcome: { source: 'webhook', atMs, reason: WORKER_LOST.webhook, endReason: 'worker_lost', evidence: 'room_finished' },
    };
  } else if (name === 'participant_left') {
    if (!isSipParticipant(event.participant)) return { kind: 'ignored', reason: 'not a SIP participant' };
    callId = event.room?.sid;
    const participant = event.participant ?? {};
    facts = { ended: { source: 'participant_left', atMs, reason: participantLeftReason(participant), ...participantLeftEndReason(participant) } };
  } else if (EGRESS_EVENTS.has(name)) {
    const info = event.egressInfo;
    if (!info?.egressId) return { kind: 'ignored', reason: `${name} without egress` };
    callId = info.roomId;
    const fact = egressFactOf(info, { atMs });
    if (!fact) return { kind: 'ignored', reason: `unknown egress status ${String(info.status)}` };
    facts = { recording: { egress: { [info.egressId]: fact } } };
  } else {
    return { kind: 'ignored', reason: `event ${name || '(none)'} says nothing about a call` };
  }

  if (!callId || !CALL_ID_PATTERN.test(callId)) return { kind: 'ignored', reason: 'no usable room SID' };
  const parsed = factMessageSchema.safeParse({
    v: MESSAGE_VERSION,
    kind: 'webhook',
    callId,
    writer: webhookWriter(event.id, options.bodyHash ?? `${name}:${callId}:${atMs}`),
    seq: 1,
    cumulative: false,
    sentAtMs: atMs,
    facts,
  });
  if (!parsed.success) return { kind: 'ignored', reason: `facts not valid: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  return { kind: 'facts', message: parsed.data };
}
