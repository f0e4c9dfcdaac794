/**
 * SIP facts as LiveKit exposes them to an agent: participant attributes, call status, and
 * how a failed or abandoned call maps to the unanswered reasons the metadata records.
 */
import { DisconnectReason } from '@livekit/rtc-node';
import { UNANSWERED, type UnansweredReason } from '../functions/contract/vocabulary.ts';

/** The unanswered reasons live in the contract's vocabulary; re-exported for the worker's users. */
export { UNANSWERED, type UnansweredReason };

export const SIP_ATTRIBUTES = {
  callStatus: 'sip.callStatus',
  phoneNumber: 'sip.phoneNumber',
  trunkPhoneNumber: 'sip.trunkPhoneNumber',
  trunkId: 'sip.trunkID',
  callId: 'sip.callID',
} as const;

/** `sip.callStatus` values: dialing, ringing, automation, active, hangup. */
export const SIP_ACTIVE = 'active';
export const SIP_HANGUP = 'hangup';

/**
 * SIP final response → unanswered reason: 486 / 600 busy, 603 declined, 480 / 408 / 487 no
 * answer, 5xx (and any other failure) failed.
 */
export function reasonForSipStatus(code: number | undefined): UnansweredReason {
  if (code === undefined || !Number.isFinite(code)) return UNANSWERED.failed;
  if (code === 486 || code === 600) return UNANSWERED.busy;
  if (code === 603) return UNANSWERED.declined;
  if (code === 480 || code === 408 || code === 487) return UNANSWERED.noAnswer;
  return UNANSWERED.failed;
}

/** Why a participant that left before answering left, as an unanswered reason. */
export function reasonForDisconnect(reason: DisconnectReason | undefined): UnansweredReason {
  switch (reason) {
    case DisconnectReason.USER_REJECTED:
      return UNANSWERED.declined;
    case DisconnectReason.USER_UNAVAILABLE:
      return UNANSWERED.noAnswer;
    case DisconnectReason.SIP_TRUNK_FAILURE:
    case DisconnectReason.MEDIA_FAILURE:
    case DisconnectReason.CONNECTION_TIMEOUT:
    case DisconnectReason.JOIN_FAILURE:
      return UNANSWERED.failed;
    default:
      return UNANSWERED.abandoned;
  }
}

/** A short description of a DisconnectReason for `endReason`. */
export function describeDisconnect(reason: DisconnectReason | undefined): string {
  return reason === undefined ? 'unknown' : (DisconnectReason[reason] ?? String(reason)).toLowerCase();
}
