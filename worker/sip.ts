/**
 * SIP facts as LiveKit exposes them to an agent: participant attributes, call status, and
 * how a failed or abandoned call maps to the unanswered reasons the metadata records.
 */
import { DisconnectReason } from '@livekit/rtc-node';
import { UNANSWERED, type UnansweredReason } from '../functions/contract/vocabulary.ts';
import { decideEndReason, endReasonFromSipStatus, type EndEvidence } from '../functions/domain/insights/index.ts';

/** The unanswered reasons live in the contract's vocabulary; re-exported for the worker's users. */
export { UNANSWERED, type UnansweredReason };

export const SIP_ATTRIBUTES = {
  callStatus: 'sip.callStatus',
  phoneNumber: 'sip.phoneNumber',
  trunkPhoneNumber: 'sip.trunkPhoneNumber',
  trunkId: 'sip.trunkID',
  callId: 'sip.callID',
  ruleId: 'sip.ruleID',
} as const;

/** `sip.callStatus` values: dialing, ringing, automation, active, hangup. */
export const SIP_ACTIVE = 'active';
export const SIP_HANGUP = 'hangup';

/**
 * The unanswered reason (the metadata's status) of a call nobody answered, given what ended it.
 * The mapping itself is the one of functions/domain/insights/end-reason.ts (decideEndReason).
 */
function unansweredStatus(evidence: Omit<EndEvidence, 'answered'>): UnansweredReason {
  return decideEndReason({ ...evidence, answered: false }).status as UnansweredReason;
}

/**
 * SIP final response → unanswered reason (via the end-reason taxonomy): 486 / 600 busy, 403 / 603 /
 * 607 / 608 declined, 408 / 480 / 487 no answer, anything else (or no code) failed.
 */
export function reasonForSipStatus(code: number | undefined): UnansweredReason {
  if (code === undefined || !Number.isFinite(code) || endReasonFromSipStatus(code) === undefined) return UNANSWERED.failed;
  return unansweredStatus({ sipStatusCode: code });
}

/** The DisconnectReason's name as LiveKit's protocol spells it (UNKNOWN_REASON when missing). */
export function disconnectReasonName(reason: DisconnectReason | undefined): string {
  return reason === undefined ? 'UNKNOWN_REASON' : (DisconnectReason[reason] ?? 'UNKNOWN_REASON');
}

/** Why a participant that left before answering left, as an unanswered reason. */
export function reasonForDisconnect(reason: DisconnectReason | undefined): UnansweredReason {
  return unansweredStatus({ disconnectReason: disconnectReasonName(reason) });
}

/** A short description of a DisconnectReason for `endReason`. */
export function describeDisconnect(reason: DisconnectReason | undefined): string {
  return reason === undefined ? 'unknown' : (DisconnectReason[reason] ?? String(reason)).toLowerCase();
}
