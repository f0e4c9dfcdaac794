/**
 * What the agents session tells the capture beyond the conversation, as facts: why it closed
 * (CloseEvent), the tools it ran (FunctionToolsExecutedEvent), the models it used
 * (`session.usage`, LiveKit's ModelUsage per provider + model) and the answering-machine verdict
 * (AMDPredictionEvent). The SDK's objects are read structurally, so tests build the real ones and
 * the mapping stays out of the event handlers' hot path (the capture only stores references).
 */
import { MAX_EVIDENCE_LENGTH, MAX_ID_LENGTH, MAX_PROVIDER_LENGTH, type ToolCallFact } from '../functions/contract/facts.ts';
import { USAGE_QUANTITIES } from '../functions/contract/vocabulary.ts';
import { usageEntryFromModelUsage, type EndEvidence, type ModelUsageLike, type UsageEntry } from '../functions/domain/insights/index.ts';

/**
 * A tool call's arguments and output are each kept to this many characters (a quarter of the
 * contract's MAX_TOOL_TEXT_LENGTH): even in 4-byte characters one call then fits
 * TOOL_CALL_BUDGET_BYTES with room to spare.
 */
const MAX_TOOL_TEXT = 16_000;
/** A closed session's detail, kept short: it becomes the end reason's words (the contract allows 512). */
const MAX_DETAIL = 300;

/** agents CloseEvent as the capture reads it. */
export interface CloseEventLike {
  reason?: unknown;
  error?: unknown;
}

export interface CloseFacts {
  /** The CloseReason's value (`error`, `job_shutdown`, `participant_disconnected`, `user_initiated`, ...). */
  closeReason: string;
  closeError: boolean;
  /** For end_reason_detail: the reason and, for an error, its type and message. */
  detail: string;
}

/** The error of a CloseEvent (LLMError, TTSError, STTError, RealtimeModelError: `{ type, error, label }`) in a few words. */
export function describeCloseError(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const typed = error as { type?: unknown; label?: unknown; error?: unknown; message?: unknown };
  const inner = typed.error instanceof Error ? typed.error : error instanceof Error ? error : undefined;
  const parts = [typeof typed.type === 'string' ? typed.type : inner?.name, typeof typed.label === 'string' ? `from ${typed.label}` : undefined].filter(Boolean);
  const message = inner?.message ?? (typeof typed.message === 'string' ? typed.message : undefined);
  return `${parts.join(' ')}${message ? `: ${message}` : ''}`.trim() || 'error';
}

export function closeFacts(event: CloseEventLike): CloseFacts {
  const closeReason = typeof event.reason === 'string' && event.reason ? event.reason : 'unknown';
  const closeError = event.error !== undefined && event.error !== null;
  const detail = closeError ? `agent session closed (${closeReason}: ${describeCloseError(event.error)})` : `agent session closed (${closeReason})`;
  return { closeReason, closeError, detail: detail.slice(0, MAX_DETAIL) };
}

/** agents FunctionCall / FunctionCallOutput, as far as they are read. */
export interface FunctionCallLike {
  id?: string;
  callId?: string;
  name?: string;
  args?: string;
  createdAt?: number;
}
export interface FunctionCallOutputLike {
  callId?: string;
  output?: string;
  isError?: boolean;
}
export interface FunctionToolsExecutedLike {
  functionCalls?: readonly FunctionCallLike[];
  functionCallOutputs?: readonly FunctionCallOutputLike[];
  createdAt?: number;
}

const clip = (value: string, max: number) => (value.length > max ? value.slice(0, max) : value);

/**
 * The tool calls of one `function_tools_executed` event (calls and outputs are parallel arrays;
 * an output is matched by its callId). The id is the call's callId (the model's own id), else its item id.
 */
export function toolCallsFrom(event: FunctionToolsExecutedLike, fallbackMs: number): ToolCallFact[] {
  const outputs = new Map<string, FunctionCallOutputLike>();
  for (const output of event.functionCallOutputs ?? []) if (output.callId) outputs.set(output.callId, output);
  const calls: ToolCallFact[] = [];
  for (const call of event.functionCalls ?? []) {
    const id = call.callId || call.id;
    if (!id || id.length > MAX_ID_LENGTH) continue;
    const output = outputs.get(call.callId ?? '');
    const atMs = typeof call.createdAt === 'number' && Number.isFinite(call.createdAt) && call.createdAt >= 0 ? Math.floor(call.createdAt) : fallbackMs;
    calls.push({
      id,
      name: clip(call.name ?? '', MAX_ID_LENGTH),
      arguments: clip(call.args ?? '', MAX_TOOL_TEXT),
      ...(output?.output === undefined ? {} : { output: clip(output.output, MAX_TOOL_TEXT) }),
      ...(output?.isError === undefined ? {} : { isError: output.isError }),
      atMs,
    });
  }
  return calls;
}

/** `session.usage.modelUsage` (cumulative for the session) as usage entries; interruption and EOT usage are left out. */
export function usageFrom(modelUsage: readonly ModelUsageLike[] | undefined): UsageEntry[] {
  const entries: UsageEntry[] = [];
  for (const usage of modelUsage ?? []) {
    const entry = usageEntryFromModelUsage(usage);
    if (!entry) continue;
    const clean: UsageEntry = { ...entry, model: clip(entry.model, MAX_ID_LENGTH), ...(entry.provider ? { provider: clip(entry.provider, MAX_PROVIDER_LENGTH) } : {}) };
    // The contract counts whole units (audio durations arrive as fractional ms).
    for (const quantity of USAGE_QUANTITIES) {
      const value = clean[quantity];
      if (value === undefined) continue;
      if (Number.isFinite(value) && value >= 0) clean[quantity] = Math.round(value);
      else delete clean[quantity];
    }
    entries.push(clean);
  }
  return entries;
}

/** The evidence an end reason was decided from, in a few words: `close:error disconnect:CLIENT_INITIATED sip:486 ...`. */
export function evidenceText(evidence: Omit<EndEvidence, 'answered'>): string | undefined {
  const parts: string[] = [];
  if (evidence.hangupTool) parts.push('hangup_tool');
  if (evidence.voicemail) parts.push('voicemail');
  if (evidence.transferred) parts.push('transfer');
  if (evidence.maxDurationReached) parts.push('max_duration');
  if (evidence.closeReason !== undefined) parts.push(`close:${evidence.closeReason}${evidence.closeError && evidence.closeReason !== 'error' ? '+error' : ''}`);
  else if (evidence.closeError) parts.push('close:error');
  if (evidence.workerLost) parts.push('worker_lost');
  if (evidence.sipStatusCode !== undefined) parts.push(`sip:${evidence.sipStatusCode}`);
  if (evidence.answerTimedOut) parts.push('answer_timeout');
  if (evidence.disconnectReason !== undefined) parts.push(`disconnect:${evidence.disconnectReason}`);
  return parts.length > 0 ? parts.join(' ').slice(0, MAX_EVIDENCE_LENGTH) : undefined;
}

/** agents AMDPredictionEvent, as far as it is read. */
export interface AmdPredictionLike {
  category?: string;
  isMachine?: boolean;
}
