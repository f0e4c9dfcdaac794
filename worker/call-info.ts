/**
 * Who called whom: the call's direction, trunk and numbers, from the job's dispatch metadata
 * and the SIP participant's attributes (the attributes win when both say something).
 *
 * Job metadata (JSON) names an outbound call with any of:
 *   phone_number | phoneNumber | to_number | number_to_call   the number to dial
 *   outbound_trunk_id | outboundTrunkId | sip_trunk_id | trunk_id   the outbound trunk
 *   agent_number | from_number | caller_id                    the number we call from
 *   direction: "inbound" | "outbound"                           explicit override
 */
import { MAX_ID_LENGTH } from '../functions/contract/facts.ts';
import { SIP_ATTRIBUTES } from './sip.ts';

export type Direction = 'inbound' | 'outbound';

export interface JobHints {
  direction?: Direction;
  phoneNumber?: string;
  outboundTrunkId?: string;
  agentNumber?: string;
}

export interface SipDetails {
  userNumber?: string;
  agentNumber?: string;
  trunkId?: string;
  sipCallId?: string;
  callStatus?: string;
  /** The SIP dispatch rule that routed the call (`sip.ruleID`). */
  ruleId?: string;
}

export interface CallParties {
  direction: Direction;
  inboundTrunkId?: string;
  outboundTrunkId?: string;
  agentNumber?: string;
  userNumber?: string;
  sipCallId?: string;
  dispatchRuleId?: string;
}

function text(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed ? trimmed.slice(0, MAX_ID_LENGTH) : undefined;
}

function pick(source: Record<string, unknown>, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const value = text(source[key]);
    if (value) return value;
  }
  return undefined;
}

export function parseJobMetadata(raw: string | undefined): JobHints {
  if (!raw?.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const source = parsed as Record<string, unknown>;
  const hints: JobHints = {
    phoneNumber: pick(source, ['phone_number', 'phoneNumber', 'to_number', 'number_to_call']),
    outboundTrunkId: pick(source, ['outbound_trunk_id', 'outboundTrunkId', 'sip_trunk_id', 'trunk_id']),
    agentNumber: pick(source, ['agent_number', 'from_number', 'caller_id']),
  };
  const direction = text(source.direction)?.toLowerCase();
  if (direction === 'inbound' || direction === 'outbound') hints.direction = direction;
  return hints;
}

export function directionOf(hints: JobHints): Direction {
  if (hints.direction) return hints.direction;
  return hints.phoneNumber || hints.outboundTrunkId ? 'outbound' : 'inbound';
}

export function sipDetails(attributes: Readonly<Record<string, string>> | undefined): SipDetails {
  if (!attributes) return {};
  return {
    userNumber: text(attributes[SIP_ATTRIBUTES.phoneNumber]),
    agentNumber: text(attributes[SIP_ATTRIBUTES.trunkPhoneNumber]),
    trunkId: text(attributes[SIP_ATTRIBUTES.trunkId]),
    sipCallId: text(attributes[SIP_ATTRIBUTES.callId]),
    callStatus: text(attributes[SIP_ATTRIBUTES.callStatus]),
    ruleId: text(attributes[SIP_ATTRIBUTES.ruleId]),
  };
}

/** The call's parties from the job hints, refined by what the SIP participant says. */
export function callParties(hints: JobHints, sip: SipDetails): CallParties {
  const direction = directionOf(hints);
  const trunkId = sip.trunkId ?? (direction === 'outbound' ? hints.outboundTrunkId : undefined);
  return {
    direction,
    inboundTrunkId: direction === 'inbound' ? trunkId : undefined,
    outboundTrunkId: direction === 'outbound' ? trunkId : undefined,
    agentNumber: sip.agentNumber ?? hints.agentNumber,
    userNumber: sip.userNumber ?? (direction === 'outbound' ? hints.phoneNumber : undefined),
    sipCallId: sip.sipCallId,
    dispatchRuleId: sip.ruleId,
  };
}
