/**
 * `calldata simulate`: one synthetic call through the real pipeline with the current
 * environment, so users can check a storage configuration without placing a phone call.
 *
 * The call is told as a worker would tell it (contract v2): one writer (`sim:<uuid>`), cumulative
 * fact messages started → one progress per turn → ended (or started → unanswered), sent through
 * the same fact sink a worker uses (SQS when CALLDATA_QUEUE_URL is set, otherwise the embedded
 * in-process pipeline). It then reads the call back from every configured location and reports
 * where each document landed.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.ts';
import { MESSAGE_VERSION, withItemIds, type CallFacts, type ConversationItem, type FactMessage } from '../contract/facts.ts';
import type { DocumentKind } from '../contract/record.ts';
import type { WorkerMessageKind } from '../contract/vocabulary.ts';
import { isFinal } from '../domain/merge.ts';
import type { StoredCall } from '../storage/backend.ts';
import { backendKind } from '../storage/select.ts';
import type { SendReceipt } from '../transport/sink.ts';
import { pipelineFor } from '../wiring.ts';
import { CallDataError, isRetryable } from '../errors.ts';
import { describeError } from './errors.ts';

export interface SimulateOptions {
  room: string;
  turns: number;
  direction: 'inbound' | 'outbound';
  unanswered: boolean;
  /** How long to wait for the documents to appear when messages go through a queue. */
  waitMs: number;
}

export interface SimulateResult {
  callId: string;
  room: string;
  /** The simulated call's writer id (`sim:<uuid>`). */
  writer: string;
  transport: 'sqs' | 'embedded';
  messages: { kind: WorkerMessageKind; seq: number; messageId: string; bytes: number; offloaded: boolean }[];
  artifacts: { kind: DocumentKind; location: string | null; stored: boolean }[];
  notes: string[];
}

/** The simulation could not complete; its message is one plain line for the user. */
export class SimulateError extends CallDataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { retryable: isRetryable(options?.cause), cause: options?.cause });
  }
}

const USER_LINES = ['Hi, I am calling about my order.', 'It was supposed to arrive yesterday.', 'The order number is 4 4 1 9.', 'Can you send it again?', 'Thanks, that is all.'];
const AGENT_LINES = ['Hello! How can I help you today?', 'I am sorry about that. Let me check.', 'Thank you, I found it.', 'Yes, a replacement ships today.', 'You are welcome. Goodbye!'];

function conversation(turns: number, startMs: number): ConversationItem[] {
  const items = [];
  for (let i = 0; i < turns; i++) {
    items.push({ role: 'assistant' as const, content: AGENT_LINES[i % AGENT_LINES.length] ?? '', interrupted: false, timestampMs: startMs + i * 4_000 });
    items.push({ role: 'user' as const, content: USER_LINES[i % USER_LINES.length] ?? '', interrupted: false, timestampMs: startMs + i * 4_000 + 2_000 });
  }
  return withItemIds(items);
}

/** The messages a worker would send for this call, each its whole view so far. */
export function simulatedMessages(callId: string, writer: string, options: SimulateOptions, nowMs: number): FactMessage[] {
  const durationMs = options.unanswered ? 30_000 : options.turns * 4_000 + 2_000;
  const startedAtMs = nowMs - durationMs;
  const endedAtMs = startedAtMs + durationMs;
  const seen = <T extends string>(value: T) => ({ value, atMs: startedAtMs });
  const base: CallFacts = {
    roomName: options.room,
    startedAtMs,
    direction: seen(options.direction),
    ...(options.direction === 'inbound' ? { inboundTrunkId: seen('ST_simulated') } : { outboundTrunkId: seen('ST_simulated') }),
    agentNumber: seen('+15550100000'),
    userNumber: seen('+15550199999'),
  };
  const messages: FactMessage[] = [];
  const add = (kind: WorkerMessageKind, sentAtMs: number, facts: CallFacts) =>
    messages.push({ v: MESSAGE_VERSION, kind, callId, writer, seq: messages.length + 1, cumulative: true, sentAtMs, facts: { ...base, ...facts } });

  add('started', startedAtMs, {});
  if (options.unanswered) {
    const reason = 'callee did not answer (simulated)';
    const endReason = 'no_answer' as const;
    add('unanswered', endedAtMs, { ended: { atMs: endedAtMs, source: 'worker', reason, endReason }, outcome: { source: 'worker', atMs: endedAtMs, status: 'no_answer', reason, endReason } });
    return messages;
  }
  const answeredAtMs = startedAtMs + 500;
  const items = conversation(options.turns, startedAtMs + 1_000);
  for (let turn = 1; turn <= options.turns; turn++) {
    add('progress', startedAtMs + 1_000 + turn * 4_000 - 1_000, { answeredAtMs, conversation: items.slice(0, turn * 2) });
  }
  const reason = 'caller hung up (simulated)';
  const endReason = 'caller_hangup' as const;
  add('ended', endedAtMs, {
    answeredAtMs,
    ended: { atMs: endedAtMs, source: 'worker', reason, endReason },
    outcome: { source: 'worker', atMs: endedAtMs, status: 'completed', reason, endReason },
    conversation: items,
  });
  return messages;
}

async function sendWithRetry(send: () => Promise<SendReceipt>): Promise<SendReceipt> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return await send();
    } catch (error) {
      lastError = error;
      if (!isRetryable(error)) break;
      if (attempt < 3) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
  throw lastError;
}

/** Where a document of the stored call lives: the file for local folders and S3, the backend's own location otherwise. */
function documentLocation(location: string, config: Config, stored: StoredCall, kind: DocumentKind): string {
  const [slug, timestamp] = stored.folder.split('/');
  if (!slug || !timestamp) return stored.location;
  const file = `${stored.folder}/call_${kind}_${slug}_${timestamp}.json`;
  switch (backendKind(location)) {
    case 'local': {
      const path = `${resolve(location)}/${file}`;
      return existsSync(path) ? path : stored.location;
    }
    case 's3':
      return config.s3.bucket ? `s3://${config.s3.bucket}/${file}` : stored.location;
    default:
      return stored.location;
  }
}

function complete(stored: StoredCall | undefined, kind: DocumentKind, expectedItems: number): boolean {
  if (!stored || !isFinal(stored.state)) return false;
  if (kind === 'metadata') return stored.documents.metadata !== undefined;
  return (stored.documents.transcription?.conversation.length ?? -1) >= expectedItems;
}

export async function simulateCall(config: Config, options: SimulateOptions): Promise<SimulateResult> {
  const notes: string[] = [];
  const callId = `sim-${randomUUID()}`;
  const writer = `sim:${randomUUID()}`;
  const pipeline = pipelineFor(config);
  const sink = await pipeline.factSink();
  if (config.callRecording) notes.push('CALL_RECORDING is on, but a simulated call has no media: no recording is made');

  const messages = simulatedMessages(callId, writer, options, Date.now());
  const sent: SimulateResult['messages'] = [];
  for (const message of messages) {
    let receipt: SendReceipt;
    try {
      receipt = await sendWithRetry(() => sink.send(message));
    } catch (error) {
      // Said plainly: this process exits now, and nothing will send the rest later.
      const embedded = sink.transport === 'embedded';
      const done = sent.length === 0 ? `nothing was ${embedded ? 'stored' : 'sent'}` : `the call was only partly ${embedded ? 'stored' : 'sent'} (${sent.length} of ${messages.length} messages)`;
      throw new SimulateError(`${done}: the ${message.kind} message of call ${callId} could not be ${embedded ? 'stored' : 'sent to the queue'}: ${describeError(error)}`, { cause: error });
    }
    sent.push({ kind: message.kind as WorkerMessageKind, seq: message.seq, messageId: receipt.messageId, bytes: receipt.bytes, offloaded: receipt.offloaded });
  }

  const wanted: DocumentKind[] = [];
  if (config.saveMetadata) wanted.push('metadata');
  if (config.saveTranscription && !options.unanswered) wanted.push('transcription');
  if (!config.saveMetadata && !config.saveTranscription) notes.push('SAVE_METADATA and SAVE_TRANSCRIPTION are both false: nothing is stored (set either to true)');
  if (config.saveTranscription && options.unanswered) notes.push('unanswered calls keep metadata only: no transcription');

  const expectedItems = options.unanswered ? 0 : options.turns * 2;
  const targets = wanted.length > 0 ? await pipeline.targets() : [];
  const artifacts: SimulateResult['artifacts'] = [];
  for (const kind of wanted) {
    const location = kind === 'metadata' ? config.metadataLocation : config.transcriptionLocation;
    const target = targets.find((t) => t.location === location);
    if (!target) {
      artifacts.push({ kind, location: null, stored: false });
      continue;
    }
    const deadline = Date.now() + (sink.transport === 'embedded' ? 0 : options.waitMs);
    let stored: StoredCall | undefined;
    let readError: unknown;
    for (;;) {
      try {
        stored = await target.backend.read(callId);
        readError = undefined;
      } catch (error) {
        readError = error;
      }
      if (complete(stored, kind, expectedItems) || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (readError && !stored) notes.push(`could not read ${kind} back from ${location}: ${describeError(readError)}`);
    const done = complete(stored, kind, expectedItems);
    artifacts.push({ kind, location: stored && (done || stored.documents[kind]) ? documentLocation(location, config, stored, kind) : null, stored: done });
  }
  if (sink.transport === 'sqs' && artifacts.some((a) => !a.stored)) {
    notes.push(`not every document appeared within ${options.waitMs} ms; the persist function stores them when it processes the queue`);
  }
  return { callId, room: options.room, writer, transport: sink.transport, messages: sent, artifacts, notes };
}
