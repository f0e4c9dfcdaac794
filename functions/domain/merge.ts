/**
 * How facts merge into a call record: the rules, in one place.
 *
 * The record is a product of small join-semilattices, so `mergeStates` is commutative,
 * associative and idempotent: any order, any duplication and any number of writers give the
 * same record (test/unit/domain-merge.test.ts proves it over generated interleavings).
 *
 *   roomName          the smallest name seen (every writer reports the same room; the rule only
 *                     makes disagreement deterministic)
 *   startedAtMs       the earliest start
 *   direction, trunks, numbers, sipCallId, roomSid, jobId, dispatchRuleId, answeringMachine
 *                     the newest observation (ties: the larger value)
 *   sipStatus         the newest (ties: the larger code, then text)
 *   answeredAtMs      the earliest answer; once answered, a call stays answered
 *   ended             the strongest source (worker > participant_left > room_finished >
 *                     sweeper), then the earliest time: the room's close never wins when the
 *                     worker or LiveKit's participant_left said when the call really ended
 *   outcome           the strongest source (worker > webhook > sweeper), then the status
 *                     listed first in FINAL_STATUSES, then the earliest time. Status only moves
 *                     forward: no fact can take a final outcome away
 *   recording         requested: any writer; egress: per egress id the furthest status of
 *                     egress's own progression (starting → active → ending → terminal), with the
 *                     largest size and duration; discarded / restored: the earliest time
 *   conversation      the union by item id, ordered by time then id; it never shrinks (an item's
 *                     per-turn metrics travel with it)
 *   usage             per writer, mergeUsage of its reports (a writer's reports are cumulative,
 *                     so the field-wise maximum is its latest; a duplicate adds nothing); the
 *                     rendered usage is the sum over writers
 *   toolCalls         the union by tool call id, ordered by time then id
 *   turns             per-turn latency: the union by turn (item) id, ordered by id
 *   writers           per writer, the highest sequence;  lastFactAtMs: the newest
 *
 * Where two facts disagree inside one rule, a total order on the whole value decides, so
 * the choice never depends on arrival.
 */
import type { CallFacts, ConversationItem, EgressFact, FactMessage, Observed, RecordingFacts, ToolCallFact, TurnFact, UsageEntryFact } from '../contract/facts.ts';
import type { CallState } from '../contract/record.ts';
import { EGRESS_STATUSES, END_SOURCES, FINAL_STATUSES, OUTCOME_SOURCES, TERMINAL_EGRESS_STATUSES } from '../contract/vocabulary.ts';
import { mergeUsage } from './insights/index.ts';

type Compare<T> = (a: T, b: T) => number;

const byText: Compare<string | undefined> = (a, b) => (a === b ? 0 : a === undefined ? -1 : b === undefined ? 1 : a < b ? -1 : 1);
const byNumber: Compare<number | undefined> = (a, b) => (a ?? -1) - (b ?? -1);

/** Lexicographic comparison over several keys. */
function chain<T>(...parts: Compare<T>[]): Compare<T> {
  return (a, b) => {
    for (const part of parts) {
      const c = part(a, b);
      if (c !== 0) return c;
    }
    return 0;
  };
}

/** The larger of two optional values under `compare` (a join in a total order). */
function larger<T>(a: T | undefined, b: T | undefined, compare: Compare<T>): T | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compare(a, b) >= 0 ? a : b;
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

function rank(list: readonly string[], value: string): number {
  const index = list.indexOf(value);
  return index < 0 ? list.length : index;
}

const observedOrder: Compare<Observed> = chain<Observed>(
  (a, b) => a.atMs - b.atMs,
  (a, b) => byText(a.value, b.value),
);

// "Larger" wins in each order below, so stronger sources and earlier times compare larger.
const endedOrder: Compare<NonNullable<CallFacts['ended']>> = chain(
  (a, b) => rank(END_SOURCES, b.source) - rank(END_SOURCES, a.source),
  (a, b) => b.atMs - a.atMs,
  (a, b) => byText(b.reason, a.reason),
  (a, b) => byText(a.endReason, b.endReason),
  (a, b) => byText(a.evidence, b.evidence),
);

const outcomeOrder: Compare<NonNullable<CallFacts['outcome']>> = chain(
  (a, b) => rank(OUTCOME_SOURCES, b.source) - rank(OUTCOME_SOURCES, a.source),
  (a, b) => rank(FINAL_STATUSES, b.status ?? '') - rank(FINAL_STATUSES, a.status ?? ''),
  (a, b) => b.atMs - a.atMs,
  (a, b) => byText(b.reason, a.reason),
  (a, b) => byText(a.endReason, b.endReason),
  (a, b) => byText(a.evidence, b.evidence),
);

const sipStatusOrder: Compare<NonNullable<CallFacts['sipStatus']>> = chain(
  (a, b) => a.atMs - b.atMs,
  (a, b) => a.code - b.code,
  (a, b) => byText(a.text, b.text),
);

const answeringMachineOrder: Compare<NonNullable<CallFacts['answeringMachine']>> = chain(
  (a, b) => a.atMs - b.atMs,
  (a, b) => byText(a.result, b.result),
  (a, b) => byText(a.isMachine === undefined ? undefined : String(a.isMachine), b.isMachine === undefined ? undefined : String(b.isMachine)),
);

/** Progression rank: starting < active < ending < any terminal status. */
export function egressProgress(status: EgressFact['status']): number {
  return TERMINAL_EGRESS_STATUSES.has(status) ? 3 : rank(EGRESS_STATUSES, status);
}

const egressOrder: Compare<EgressFact> = chain<EgressFact>(
  (a, b) => egressProgress(a.status) - egressProgress(b.status),
  // Among terminal statuses (only one ever happens; the order just makes a choice): complete first.
  (a, b) => rank(EGRESS_STATUSES, b.status) - rank(EGRESS_STATUSES, a.status),
  (a, b) => byNumber(a.sizeBytes, b.sizeBytes),
  (a, b) => byNumber(a.durationMs, b.durationMs),
  (a, b) => byText(a.key, b.key),
  (a, b) => byText(a.bucket, b.bucket),
  (a, b) => byText(a.error, b.error),
  (a, b) => b.atMs - a.atMs,
);

const startErrorOrder: Compare<NonNullable<RecordingFacts['startError']>> = chain(
  (a, b) => a.atMs - b.atMs,
  (a, b) => byText(a.error, b.error),
);

function itemKey(item: ConversationItem): string {
  const m = item.metrics;
  const metrics = m ? [m.endOfUtteranceDelayMs, m.transcriptionDelayMs, m.llmTtftMs, m.ttsTtfbMs, m.e2eMs] : undefined;
  return JSON.stringify([item.role, item.content, item.interrupted, item.timestampMs, metrics]);
}

const itemOrder: Compare<ConversationItem> = (a, b) => byText(itemKey(a), itemKey(b));
const timeOrder: Compare<ConversationItem> = chain<ConversationItem>(
  (a, b) => a.timestampMs - b.timestampMs,
  (a, b) => byText(a.id, b.id),
);

/**
 * The union of two lists by id: where both hold an id, the larger entry by `choose` (so the
 * result does not depend on which side held which), the whole sorted by `order`.
 */
function unionById<T extends { id: string }>(a: readonly T[] | undefined, b: readonly T[] | undefined, choose: Compare<T>, order: Compare<T>): T[] | undefined {
  if (a === undefined && b === undefined) return undefined;
  const byId = new Map<string, T>();
  for (const list of [a ?? [], b ?? []]) {
    for (const entry of list) {
      const current = byId.get(entry.id);
      byId.set(entry.id, current === undefined ? entry : (larger(current, entry, choose) as T));
    }
  }
  return [...byId.values()].sort(order);
}

/** The union of two transcripts by item id, ordered by time then id. */
export function mergeConversations(a: readonly ConversationItem[] | undefined, b: readonly ConversationItem[] | undefined): ConversationItem[] | undefined {
  return unionById(a, b, itemOrder, timeOrder);
}

function toolCallKey(call: ToolCallFact): string {
  return JSON.stringify([call.name, call.arguments, call.output, call.isError, call.atMs]);
}
const toolCallOrder: Compare<ToolCallFact> = (a, b) => byText(toolCallKey(a), toolCallKey(b));
const toolCallTimeOrder: Compare<ToolCallFact> = chain<ToolCallFact>(
  (a, b) => a.atMs - b.atMs,
  (a, b) => byText(a.id, b.id),
);

/** The union of two tool-call lists by id, ordered by time then id. */
export function mergeToolCalls(a: readonly ToolCallFact[] | undefined, b: readonly ToolCallFact[] | undefined): ToolCallFact[] | undefined {
  return unionById(a, b, toolCallOrder, toolCallTimeOrder);
}

function turnKey(turn: TurnFact): string {
  return JSON.stringify([turn.endOfUtteranceDelayMs, turn.transcriptionDelayMs, turn.llmTtftMs, turn.ttsTtfbMs, turn.e2eMs]);
}
const turnOrder: Compare<TurnFact> = (a, b) => byText(turnKey(a), turnKey(b));

/** The union of two per-turn latency lists by turn id, ordered by id. */
export function mergeTurns(a: readonly TurnFact[] | undefined, b: readonly TurnFact[] | undefined): TurnFact[] | undefined {
  return unionById(a, b, turnOrder, (x, y) => byText(x.id, y.id));
}

/** Per writer, the merge of its usage reports (A1's mergeUsage: field-wise maximum per model). */
function mergeUsageByWriter(a: CallFacts['usage'], b: CallFacts['usage']): CallFacts['usage'] {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const merged: Record<string, UsageEntryFact[]> = { ...a };
  for (const [writer, entries] of Object.entries(b)) {
    const current = merged[writer];
    merged[writer] = current === undefined ? entries : mergeUsage(current, entries);
  }
  return merged;
}

function mergeEgress(a: RecordingFacts['egress'], b: RecordingFacts['egress']): RecordingFacts['egress'] {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const merged: Record<string, EgressFact> = { ...a };
  for (const [id, fact] of Object.entries(b)) merged[id] = larger(merged[id], fact, egressOrder) as EgressFact;
  return merged;
}

function mergeRecording(a: RecordingFacts | undefined, b: RecordingFacts | undefined): RecordingFacts | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compact({
    requested: a.requested || b.requested ? true : undefined,
    bucket: a.bucket === undefined ? b.bucket : b.bucket === undefined ? a.bucket : a.bucket < b.bucket ? a.bucket : b.bucket,
    egress: mergeEgress(a.egress, b.egress),
    startError: larger(a.startError, b.startError, startErrorOrder),
    discardedAtMs: earliest(a.discardedAtMs, b.discardedAtMs),
    restoredAtMs: earliest(a.restoredAtMs, b.restoredAtMs),
  }) as RecordingFacts;
}

function mergeWriters(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const merged = { ...a };
  for (const [writer, seq] of Object.entries(b)) merged[writer] = Math.max(merged[writer] ?? -1, seq);
  return merged;
}

/** Drops undefined fields so equal records are deeply equal whatever path built them. */
function compact<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}

/** The merge of two records of the same call. Commutative, associative, idempotent. */
export function mergeStates(a: CallState, b: CallState): CallState {
  if (a.callId !== b.callId) throw new Error(`cannot merge records of different calls (${a.callId}, ${b.callId})`);
  return compact<CallState>({
    callId: a.callId,
    roomName: a.roomName === undefined ? b.roomName : b.roomName === undefined ? a.roomName : a.roomName < b.roomName ? a.roomName : b.roomName,
    startedAtMs: earliest(a.startedAtMs, b.startedAtMs),
    direction: larger(a.direction, b.direction, observedOrder) as CallState['direction'],
    inboundTrunkId: larger(a.inboundTrunkId, b.inboundTrunkId, observedOrder),
    outboundTrunkId: larger(a.outboundTrunkId, b.outboundTrunkId, observedOrder),
    agentNumber: larger(a.agentNumber, b.agentNumber, observedOrder),
    userNumber: larger(a.userNumber, b.userNumber, observedOrder),
    sipCallId: larger(a.sipCallId, b.sipCallId, observedOrder),
    roomSid: larger(a.roomSid, b.roomSid, observedOrder),
    jobId: larger(a.jobId, b.jobId, observedOrder),
    dispatchRuleId: larger(a.dispatchRuleId, b.dispatchRuleId, observedOrder),
    sipStatus: larger(a.sipStatus, b.sipStatus, sipStatusOrder),
    answeredAtMs: earliest(a.answeredAtMs, b.answeredAtMs),
    ended: larger(a.ended, b.ended, endedOrder),
    outcome: larger(a.outcome, b.outcome, outcomeOrder),
    recording: mergeRecording(a.recording, b.recording),
    conversation: mergeConversations(a.conversation, b.conversation),
    usage: mergeUsageByWriter(a.usage, b.usage),
    toolCalls: mergeToolCalls(a.toolCalls, b.toolCalls),
    turns: mergeTurns(a.turns, b.turns),
    answeringMachine: larger(a.answeringMachine, b.answeringMachine, answeringMachineOrder),
    writers: mergeWriters(a.writers, b.writers),
    lastFactAtMs: Math.max(a.lastFactAtMs, b.lastFactAtMs),
  });
}

/** The record that holds exactly one message's facts. */
export function stateOf(message: Pick<FactMessage, 'callId' | 'writer' | 'seq' | 'sentAtMs' | 'facts'>): CallState {
  // A shallow copy is enough: nothing here or in mergeStates mutates a fact in place.
  const { conversation, toolCalls, usage, turns, ...facts } = message.facts;
  return compact<CallState>({
    ...facts,
    ...(conversation ? { conversation: mergeConversations(conversation, undefined) } : {}),
    ...(toolCalls ? { toolCalls: mergeToolCalls(toolCalls, undefined) } : {}),
    ...(turns ? { turns: mergeTurns(turns, undefined) } : {}),
    // One message's usage is already one report per writer; merging it with itself normalizes it.
    ...(usage ? { usage: mergeUsageByWriter(usage, usage) } : {}),
    callId: message.callId,
    writers: { [message.writer]: message.seq },
    lastFactAtMs: message.sentAtMs,
  });
}

/** The merge of many records (at least one). */
export function mergeAll(states: readonly CallState[]): CallState {
  const [first, ...rest] = states;
  if (!first) throw new Error('mergeAll needs at least one record');
  return rest.reduce(mergeStates, first);
}

/** True when merging `b` into `a` changes nothing (b's facts are already in a). */
export function includes(a: CallState, b: CallState): boolean {
  return sameState(mergeStates(a, b), a);
}

/** Deep equality of two records (key order ignored). */
export function sameState(a: CallState, b: CallState): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
    }
    return v;
  });
}

/** The call's one writer when exactly one wrote to it (storage's fast path). */
export function soleWriter(state: CallState): { writer: string; seq: number } | undefined {
  const entries = Object.entries(state.writers);
  const [only] = entries;
  return entries.length === 1 && only ? { writer: only[0], seq: only[1] } : undefined;
}

/** The call is over: some party reported its outcome. */
export function isFinal(state: CallState): boolean {
  return state.outcome !== undefined;
}

export function isAnswered(state: CallState): boolean {
  return state.answeredAtMs !== undefined;
}
