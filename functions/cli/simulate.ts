/**
 * `calldata simulate`: one synthetic call through the real pipeline with the current
 * environment, so users can check a storage configuration without placing a phone call.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.ts';
import { parseSnapshot, snapshotSequence, type ConversationItem, type Snapshot, type SnapshotKind } from '../contract/snapshot.ts';
import { backendFor } from '../storage/select.ts';
import type { ArtifactKind } from '../storage/documents.ts';
import { createSnapshotSink, type SendReceipt } from '../transport/sink.ts';

export interface SimulateOptions {
  room: string;
  turns: number;
  direction: 'inbound' | 'outbound';
  unanswered: boolean;
  /** How long to wait for artifacts to appear when snapshots go through a queue. */
  waitMs: number;
}

export interface SimulateResult {
  callId: string;
  room: string;
  transport: 'sqs' | 'embedded';
  snapshots: { kind: SnapshotKind; seq: number; messageId: string; bytes: number; offloaded: boolean }[];
  artifacts: { kind: ArtifactKind; location: string | null; stored: boolean }[];
  notes: string[];
}

const USER_LINES = ['Hi, I am calling about my order.', 'It was supposed to arrive yesterday.', 'The order number is 4 4 1 9.', 'Can you send it again?', 'Thanks, that is all.'];
const AGENT_LINES = ['Hello! How can I help you today?', 'I am sorry about that. Let me check.', 'Thank you, I found it.', 'Yes, a replacement ships today.', 'You are welcome. Goodbye!'];

function conversation(turns: number, startMs: number): ConversationItem[] {
  const items: ConversationItem[] = [];
  for (let i = 0; i < turns; i++) {
    items.push({ role: 'assistant', content: AGENT_LINES[i % AGENT_LINES.length] ?? '', interrupted: false, timestampMs: startMs + i * 4_000 });
    items.push({ role: 'user', content: USER_LINES[i % USER_LINES.length] ?? '', interrupted: false, timestampMs: startMs + i * 4_000 + 2_000 });
  }
  return items;
}

async function sendWithRetry(send: () => Promise<SendReceipt>): Promise<SendReceipt> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return await send();
    } catch (error) {
      lastError = error;
      if ((error as { retryable?: boolean }).retryable === false) break;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
  throw lastError;
}

export async function simulateCall(config: Config, options: SimulateOptions): Promise<SimulateResult> {
  const notes: string[] = [];
  const callId = `sim-${randomUUID()}`;
  const durationMs = options.unanswered ? 30_000 : options.turns * 4_000 + 2_000;
  const startedAtMs = Date.now() - durationMs;
  const sink = await createSnapshotSink(config);
  let seq: number | undefined;
  const base = {
    roomName: options.room,
    direction: options.direction,
    ...(options.direction === 'inbound' ? { inboundTrunkId: 'ST_simulated' } : { outboundTrunkId: 'ST_simulated' }),
    agentNumber: '+15550100000',
    userNumber: '+15550199999',
    startedAtMs,
  };
  if (config.callRecording) notes.push('CALL_RECORDING is on, but a simulated call has no media: no recording is made');

  const snapshots: Snapshot[] = [];
  const make = (kind: SnapshotKind, call: Record<string, unknown>, items?: ConversationItem[]): Snapshot => {
    seq = snapshotSequence(seq, kind);
    return parseSnapshot({ v: 1, kind, callId, seq, sentAtMs: Date.now(), call: { ...base, ...call }, ...(items ? { conversation: items } : {}) });
  };
  snapshots.push(make('started', { answered: false, status: 'ringing' }));
  if (options.unanswered) {
    snapshots.push(make('unanswered', { answered: false, status: 'no_answer', endReason: 'callee did not answer (simulated)', endedAtMs: startedAtMs + durationMs }));
  } else {
    const items = conversation(options.turns, startedAtMs + 1_000);
    for (let turn = 1; turn <= options.turns; turn++) {
      snapshots.push(make('progress', { answered: true, answeredAtMs: startedAtMs + 500, status: 'in_progress' }, items.slice(0, turn * 2)));
    }
    snapshots.push(make('ended', { answered: true, answeredAtMs: startedAtMs + 500, status: 'completed', endReason: 'caller hung up (simulated)', endedAtMs: startedAtMs + durationMs }, items));
  }

  const sent: SimulateResult['snapshots'] = [];
  for (const snapshot of snapshots) {
    const receipt = await sendWithRetry(() => sink.send(snapshot));
    sent.push({ kind: snapshot.kind, seq: snapshot.seq, messageId: receipt.messageId, bytes: receipt.bytes, offloaded: receipt.offloaded });
  }

  const wanted: ArtifactKind[] = [];
  if (config.saveMetadata) wanted.push('metadata');
  if (config.saveTranscription && !options.unanswered) wanted.push('transcription');
  if (!config.saveMetadata && !config.saveTranscription) notes.push('SAVE_METADATA and SAVE_TRANSCRIPTION are both false: nothing is stored (set either to true)');
  if (config.saveTranscription && options.unanswered) notes.push('unanswered calls keep metadata only: no transcription');

  const finalSeq = snapshots.at(-1)?.seq ?? 0;
  const artifacts: SimulateResult['artifacts'] = [];
  for (const kind of wanted) {
    const location = kind === 'metadata' ? config.metadataLocation : config.transcriptionLocation;
    const backend = await backendFor(location, { s3: config.s3 });
    const deadline = Date.now() + (sink.transport === 'embedded' ? 0 : options.waitMs);
    let found: { location: string; seq: number } | undefined;
    for (;;) {
      found = await backend.read(kind, callId).catch(() => undefined);
      if ((found && found.seq >= finalSeq) || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    artifacts.push({ kind, location: found?.location ?? null, stored: found !== undefined && found.seq >= finalSeq });
  }
  if (sink.transport === 'sqs' && artifacts.some((a) => !a.stored)) {
    notes.push(`not every artifact appeared within ${options.waitMs} ms; the persist function stores them when it processes the queue`);
  }
  return { callId, room: options.room, transport: sink.transport, snapshots: sent, artifacts, notes };
}
