/**
 * Answer detection. A call is answered when its SIP participant's `sip.callStatus` becomes
 * `active` (or a non-SIP participant, e.g. a web caller, joins). It is unanswered when the
 * SIP participant hangs up or fails first, when the outbound dial fails, or when nobody has
 * answered within the timeout (30 s by default, as the original).
 *
 * Pure state machine: the capture feeds it participant events; time comes from a timer the
 * caller provides, so tests drive it without waiting.
 */
import { DisconnectReason, ParticipantKind } from '@livekit/rtc-node';
import type { EndEvidence } from '../functions/domain/insights/index.ts';
import { SIP_ACTIVE, SIP_ATTRIBUTES, SIP_HANGUP, UNANSWERED, disconnectReasonName, reasonForDisconnect, describeDisconnect, reasonForSipStatus, type UnansweredReason } from './sip.ts';

/** What LiveKit said when the call ended unanswered (for the end reason; see insights/end-reason.ts). */
export type UnansweredEvidence = Omit<EndEvidence, 'answered'>;

export interface ParticipantLike {
  identity: string;
  kind?: ParticipantKind;
  attributes?: Readonly<Record<string, string>>;
  disconnectReason?: DisconnectReason;
}

export type AnswerState = 'waiting' | 'answered' | 'unanswered';

export interface AnswerEvents {
  answered(participant: ParticipantLike | undefined, atMs: number): void;
  unanswered(reason: UnansweredReason, detail: string, atMs: number, evidence: UnansweredEvidence): void;
  /** The answered caller left (hung up); the call is over. */
  callerLeft(participant: ParticipantLike, detail: string, atMs: number): void;
}

export interface AnswerOptions {
  timeoutMs: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

const defaultTimer = (fn: () => void, ms: number) => {
  const handle = setTimeout(fn, ms);
  handle.unref?.();
  return { cancel: () => clearTimeout(handle) };
};

function isSip(p: ParticipantLike): boolean {
  return p.kind === ParticipantKind.SIP || (p.attributes?.[SIP_ATTRIBUTES.callStatus] ?? '') !== '';
}

/** Participants that are not callers: other agents, egress/ingress, bridges. */
function isBystander(p: ParticipantLike): boolean {
  return p.kind === ParticipantKind.AGENT || p.kind === ParticipantKind.EGRESS || p.kind === ParticipantKind.INGRESS || p.kind === ParticipantKind.BRIDGE;
}

export class AnswerDetector {
  state: AnswerState = 'waiting';
  /** Identity of the participant whose call this is (the first SIP participant, else the first caller). */
  caller: string | undefined;
  private readonly events: AnswerEvents;
  private readonly now: () => number;
  private timer: { cancel(): void } | undefined;

  constructor(events: AnswerEvents, options: AnswerOptions) {
    this.events = events;
    this.now = options.now ?? Date.now;
    const setTimer = options.setTimer ?? defaultTimer;
    this.timer = setTimer(() => this.timeout(), options.timeoutMs);
  }

  private settle(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private answer(participant: ParticipantLike | undefined): void {
    if (this.state !== 'waiting') return;
    this.state = 'answered';
    this.settle();
    this.events.answered(participant, this.now());
  }

  private fail(reason: UnansweredReason, detail: string, evidence: UnansweredEvidence = {}): void {
    if (this.state !== 'waiting') return;
    this.state = 'unanswered';
    this.settle();
    this.events.unanswered(reason, detail, this.now(), evidence);
  }

  /** A participant is in the room (joined now, or already there when we connected). */
  seen(participant: ParticipantLike): void {
    if (isBystander(participant) || this.state !== 'waiting') return;
    if (isSip(participant)) {
      if (this.caller === undefined) this.caller = participant.identity;
      if (participant.identity === this.caller) this.statusChanged(participant);
      return;
    }
    this.caller ??= participant.identity;
    this.answer(participant);
  }

  /** The participant's attributes changed (sip.callStatus in particular). */
  statusChanged(participant: ParticipantLike): void {
    if (this.state !== 'waiting') return;
    if (this.caller === undefined && isSip(participant)) this.caller = participant.identity;
    if (participant.identity !== this.caller) return;
    const status = participant.attributes?.[SIP_ATTRIBUTES.callStatus];
    // A SIP participant that says nothing about its status is treated as connected.
    if (status === SIP_ACTIVE || status === undefined || status === '') this.answer(participant);
    // sip.callStatus `hangup` before `active`: the phone side hung up (LiveKit's BYE, CLIENT_INITIATED).
    else if (status === SIP_HANGUP) this.fail(UNANSWERED.abandoned, 'sip call status hangup before the call was active', { disconnectReason: 'CLIENT_INITIATED' });
  }

  left(participant: ParticipantLike): void {
    if (participant.identity !== this.caller) return;
    const detail = describeDisconnect(participant.disconnectReason);
    if (this.state === 'waiting') {
      this.fail(reasonForDisconnect(participant.disconnectReason), `caller left before the call was active (${detail})`, { disconnectReason: disconnectReasonName(participant.disconnectReason) });
    }
    else if (this.state === 'answered') this.events.callerLeft(participant, detail, this.now());
  }

  /** The outbound dial failed with a SIP final response. */
  dialFailed(sipStatusCode: number | undefined, detail: string): void {
    this.fail(reasonForSipStatus(sipStatusCode), detail, sipStatusCode === undefined ? {} : { sipStatusCode });
  }

  /** Manual override (e.g. the agent's own logic knows better). */
  markAnswered(): void {
    this.answer(undefined);
  }

  markUnanswered(reason: UnansweredReason, detail: string, evidence: UnansweredEvidence = {}): void {
    this.fail(reason, detail, evidence);
  }

  timeout(): void {
    this.fail(UNANSWERED.noAnswer, 'nobody answered within the answer timeout', { answerTimedOut: true });
  }

  close(): void {
    this.settle();
  }
}
