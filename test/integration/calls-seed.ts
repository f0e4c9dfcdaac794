/**
 * Calls for the read-side tests (cli-calls.test.ts, browse.test.ts), stored through the real
 * persist path (`pipelineFor(config).persist`) as a worker, the recording function and the
 * webhook would tell them (contract v2), plus the recording object the egress would have
 * uploaded (a real small OGG in LocalStack S3, the egress stand-in's bytes).
 *
 * Every seeded call starts within [anchor - 4 days, anchor): tests on a shared database list
 * with that window, so other files' calls never show up.
 */
import { requireServer } from '../support/servers.ts';
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig, type Config } from '../../functions/config/config.ts';
import { MESSAGE_VERSION, type CallFacts, type ConversationItem, type FactMessage } from '../../functions/contract/facts.ts';
import { recordingKey } from '../../functions/domain/render.ts';
import { pipelineFor, type Pipeline } from '../../functions/wiring.ts';
import { makeOgg } from '../support/egress-standin.ts';
import { LOCALSTACK_CREDENTIALS } from '../support/servers.ts';

export const HOSTILE_ROOM = '<img src=x onerror=alert(1)>';
export const HOSTILE_LINE = '<script>alert(2)</script> did this run?';
export const NUMBERS = { caller: '+14155550100', agent: '+15550100000', other: '+919876543210' } as const;
export const OGG = makeOgg(150);
const HOUR = 3_600_000;

/** CALLDATA_PRICE_TABLE of the seeded environment: prices the LLM, not the TTS (which the cost lists as unpriced). */
export const PRICE_TABLE = { currency: 'USD', models: { 'openai/gpt-4.1-mini': { promptPer1M: 0.4, completionPer1M: 1.6 } } };
/** What an answered call with insights used (usage per model, as the worker reports it). */
const INSIGHT_USAGE = [
  { kind: 'llm' as const, provider: 'openai', model: 'gpt-4.1-mini', promptTokens: 1_200, completionTokens: 150, promptCachedTokens: 0 },
  { kind: 'tts' as const, provider: 'cartesia', model: 'sonic-2', characters: 420, audioMs: 21_000 },
];

export interface SeededCall {
  label: string;
  callId: string;
  roomName: string;
  startedAtMs: number;
  answered: boolean;
  status: string;
  direction: 'inbound' | 'outbound';
  userNumber: string;
  recording: boolean;
  /** Transcript lines (content), in order; interrupted ones flagged. */
  conversation: { content: string; interrupted: boolean; role: 'user' | 'assistant' }[];
}

export interface Seed {
  run: string;
  config: Config;
  env: Record<string, string>;
  calls: SeededCall[];
  /** Newest first, as every list is ordered. */
  newestFirst: SeededCall[];
  sinceMs: number;
  untilMs: number;
  bucket: string;
  /** The recorded call's object key. */
  recordingKey: string;
  /** The seeded call with this label (support, hostile, busy, sales, missed, followup, nobody). */
  call(label: string): SeededCall;
}

interface Plan {
  label: string;
  /** The room name; `suffix` keeps rooms of a shared database apart. */
  room: (suffix: string) => string;
  hoursAgo: number;
  answered: boolean;
  status: 'completed' | 'no_answer' | 'busy';
  direction: 'inbound' | 'outbound';
  userNumber: string;
  recording?: boolean;
  conversation?: { role: 'user' | 'assistant'; content: string; interrupted?: boolean }[];
  /** The worker also reported why the call ended, each turn's latency and the models' usage. */
  insights?: boolean;
}

const PLANS: Plan[] = [
  {
    label: 'support',
    room: (suffix) => `support-line${suffix}`,
    hoursAgo: 1,
    answered: true,
    status: 'completed',
    direction: 'inbound',
    userNumber: NUMBERS.caller,
    recording: true,
    insights: true,
    conversation: [
      { role: 'assistant', content: 'Thank you for calling Acme support, this is Ava. How can I help?' },
      { role: 'user', content: 'Hi, my order 4419 was supposed to arrive yesterday.' },
      { role: 'assistant', content: 'I am sorry about that. Let me look it up, one moment while I', interrupted: true },
      { role: 'user', content: 'It is the blue backpack, if that helps.' },
      { role: 'assistant', content: 'Found it: it left our warehouse late. A replacement ships today by express.' },
      { role: 'user', content: 'Great, thanks a lot!' },
    ],
  },
  {
    label: 'hostile',
    room: () => HOSTILE_ROOM,
    hoursAgo: 5,
    answered: true,
    status: 'completed',
    direction: 'inbound',
    userNumber: NUMBERS.other,
    conversation: [
      { role: 'user', content: HOSTILE_LINE },
      { role: 'assistant', content: 'I only see text here.' },
    ],
  },
  { label: 'busy', room: (suffix) => `support-line${suffix}`, hoursAgo: 9, answered: false, status: 'busy', direction: 'inbound', userNumber: NUMBERS.other },
  {
    label: 'sales',
    room: (suffix) => `sales${suffix}`,
    hoursAgo: 20,
    answered: true,
    status: 'completed',
    direction: 'outbound',
    userNumber: NUMBERS.caller,
    insights: true,
    conversation: [
      { role: 'assistant', content: 'Hello, this is Ava from Acme calling about your renewal.' },
      { role: 'user', content: 'Sure, go ahead.' },
    ],
  },
  { label: 'missed', room: (suffix) => `sales${suffix}`, hoursAgo: 30, answered: false, status: 'no_answer', direction: 'outbound', userNumber: NUMBERS.other },
  {
    label: 'followup',
    room: (suffix) => `support-line${suffix}`,
    hoursAgo: 50,
    answered: true,
    status: 'completed',
    direction: 'inbound',
    userNumber: NUMBERS.caller,
    conversation: [{ role: 'user', content: 'Just checking the replacement shipped.' }, { role: 'assistant', content: 'It did, tracking is on its way.' }],
  },
  { label: 'nobody', room: (suffix) => `support-line${suffix}`, hoursAgo: 75, answered: false, status: 'no_answer', direction: 'inbound', userNumber: NUMBERS.other },
];

function s3Env(endpoint: string, bucket: string): Record<string, string> {
  return {
    AWS_S3_BUCKET: bucket,
    AWS_S3_ENDPOINT: endpoint,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_S3_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
    AWS_S3_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
  };
}

/**
 * Stores the calls at `location` (metadata and transcripts in one place) and uploads the
 * recording. `anchorMs` is "now" for the seeded calls (they start 1-75 hours before it).
 * `shared`: other tests use the location too, so room names get the run's suffix.
 */
export async function seedCalls(options: {
  location: string;
  /** Where transcripts go, when not with the metadata. */
  transcriptionLocation?: string;
  anchorMs: number;
  endpoint: string;
  bucket: string;
  timezone: string;
  shared: boolean;
}): Promise<Seed> {
  const run = randomUUID().replace(/-/g, '').slice(0, 8);
  const env = {
    METADATA_LOCATION: options.location,
    TRANSCRIPTION_LOCATION: options.transcriptionLocation ?? options.location,
    TIMEZONE: options.timezone,
    CALLDATA_PRICE_TABLE: JSON.stringify(PRICE_TABLE),
    ...s3Env(options.endpoint, options.bucket),
  };
  const config = loadConfig({ ...env, SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true' });
  const pipeline = pipelineFor(config);
  const anchorMs = options.shared ? await vacantAnchor(pipeline, options.anchorMs) : options.anchorMs;
  const calls: SeededCall[] = [];
  let recorded: SeededCall | undefined;
  for (const plan of PLANS) {
    const callId = `RM_${plan.label}${run}`;
    const roomName = plan.room(options.shared ? `-${run}` : '');
    const startedAtMs = anchorMs - plan.hoursAgo * HOUR;
    const answeredAtMs = startedAtMs + 4_000;
    const conversation: ConversationItem[] = (plan.conversation ?? []).map((line, i) => ({
      id: `${callId}-${i}`,
      role: line.role,
      content: line.content,
      interrupted: line.interrupted ?? false,
      timestampMs: answeredAtMs + 1_000 + i * 6_000,
    }));
    const endedAtMs = plan.answered ? answeredAtMs + 2_000 + conversation.length * 6_000 + 3_000 : startedAtMs + 25_000;
    const seen = <T extends string>(value: T) => ({ value, atMs: startedAtMs });
    const base: CallFacts = {
      roomName,
      startedAtMs,
      direction: seen(plan.direction),
      ...(plan.direction === 'inbound' ? { inboundTrunkId: seen('ST_inbound') } : { outboundTrunkId: seen('ST_outbound') }),
      agentNumber: seen(NUMBERS.agent),
      userNumber: seen(plan.userNumber),
      ...(plan.recording ? { recording: { requested: true as const, bucket: options.bucket } } : {}),
    };
    const writer = `job:AJ_${callId}`;
    const message = (seq: number, kind: FactMessage['kind'], sentAtMs: number, facts: CallFacts): FactMessage => ({
      v: MESSAGE_VERSION,
      kind,
      callId,
      writer,
      seq,
      cumulative: true,
      sentAtMs,
      facts: { ...base, ...facts },
    });
    const messages: FactMessage[] = [message(1, 'started', startedAtMs, {})];
    if (plan.answered) {
      // Assistant turns took 300, 500, 700 ms to the first token (1.0, 1.5, 2.0 s end to end); user turns 400 ms to the end of the utterance.
      const turns = conversation.map((item, i) =>
        item.role === 'assistant' ? { id: item.id, llmTtftMs: 300 + 100 * i, e2eMs: 1_000 + 250 * i } : { id: item.id, endOfUtteranceDelayMs: 400 },
      );
      const insights: CallFacts = plan.insights ? { turns, usage: { [writer]: INSIGHT_USAGE } } : {};
      const end = plan.insights ? { endReason: 'caller_hangup' as const, evidence: 'disconnect:CLIENT_INITIATED' } : {};
      messages.push(message(2, 'progress', answeredAtMs + 3_000, { answeredAtMs, conversation: conversation.slice(0, 2) }));
      messages.push(
        message(3, 'ended', endedAtMs, {
          answeredAtMs,
          conversation,
          ...insights,
          ended: { atMs: endedAtMs, source: 'worker', reason: 'caller hung up', ...end },
          outcome: { source: 'worker', atMs: endedAtMs, status: 'completed', ...end },
        }),
      );
    } else {
      const busy = plan.status === 'busy';
      messages.push(
        message(2, 'unanswered', endedAtMs, {
          ...(busy ? { sipStatus: { code: 486, text: 'Busy Here', atMs: endedAtMs } } : {}),
          ended: { atMs: endedAtMs, source: 'worker', reason: busy ? 'callee busy' : 'nobody answered' },
          outcome: { source: 'worker', atMs: endedAtMs, status: plan.status, ...(busy ? { endReason: 'busy' as const, evidence: 'sip:486' } : {}) },
        }),
      );
    }
    if (plan.recording) {
      // The recording function's report: the egress finished and uploaded the file.
      messages.push({
        v: MESSAGE_VERSION,
        kind: 'recording',
        callId,
        writer: `recording:EG_${run}`,
        seq: 1,
        cumulative: false,
        sentAtMs: endedAtMs + 2_000,
        facts: { recording: { egress: { [`EG_${run}`]: { status: 'complete', atMs: endedAtMs + 2_000, bucket: options.bucket, sizeBytes: OGG.length, durationMs: 3_000 } } } },
      });
    }
    // One message at a time, as a queue with a batch size of one would deliver them.
    for (const m of messages) {
      const outcome = (await pipeline.persist([m])).get(callId);
      if (outcome?.error) throw outcome.error;
    }
    const call: SeededCall = {
      label: plan.label,
      callId,
      roomName,
      startedAtMs,
      answered: plan.answered,
      status: plan.status,
      direction: plan.direction,
      userNumber: plan.userNumber,
      recording: plan.recording ?? false,
      conversation: conversation.map(({ role, content, interrupted }) => ({ role, content, interrupted })),
    };
    calls.push(call);
    if (plan.recording) recorded = call;
  }

  // The egress's upload: at the key the record names, in the call's folder.
  const primary = await pipeline.primary();
  const stored = recorded ? await primary?.read(recorded.callId) : undefined;
  if (!stored?.folder) throw new Error('the recorded call was not stored');
  const key = recordingKey(stored.folder);
  const s3 = new S3Client({ endpoint: options.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
  await s3.send(new PutObjectCommand({ Bucket: options.bucket, Key: key, Body: OGG, ContentType: 'audio/ogg' }));
  s3.destroy();

  const newestFirst = [...calls].sort((a, b) => b.startedAtMs - a.startedAtMs);
  const call = (label: string) => {
    const found = calls.find((c) => c.label === label);
    if (!found) throw new Error(`no seeded call ${label}`);
    return found;
  };
  return { run, config, env, calls, newestFirst, sinceMs: anchorMs - 4 * 24 * HOUR, untilMs: anchorMs, bucket: options.bucket, recordingKey: key, call };
}

/**
 * The anchor itself when the shared store holds no call near its window, else another random one
 * that is vacant: stores on a developer's machine keep every earlier run's seeds, and a list test
 * must see only its own calls in its window.
 */
async function vacantAnchor(pipeline: Pipeline, anchorMs: number): Promise<number> {
  const [target] = await pipeline.targets();
  if (!target) throw new Error('seedCalls: the configuration names no location');
  for (let candidate = anchorMs, tries = 0; tries < 20; tries++, candidate = isolatedAnchor()) {
    const page = await target.backend.queryCalls({ sinceMs: candidate - 6 * 24 * HOUR, untilMs: candidate + 2 * 24 * HOUR, limit: 1 });
    if (page.calls.length === 0) return candidate;
  }
  throw new Error('seedCalls: no vacant four-day window found in 20 tries');
}

/** A random hour far from every other test's calls, for a shared database. */
export function isolatedAnchor(): number {
  // Any day from 2031 to about 2250 (the path-based indexes order starts below 10^13 ms): two
  // seeds' four-day windows in one shared store overlap with a chance of about 1 in 10,000.
  return Date.UTC(2031, 0, 1) + Math.floor(Math.random() * 80_000) * 24 * HOUR;
}

/** Where the CLI and page tests seed calls: a local folder of the test's own, and the five servers. */
export function seedLocations(folder: () => string): Record<string, () => Promise<{ location: string; anchorMs: number; shared: boolean }>> {
  return {
    // A folder of its own: the whole list is the test's, so it is what the screenshots show.
    'local folder': async () => ({ location: folder(), anchorMs: Date.now(), shared: false }),
    // Stores other test files write to: every page is opened within this run's time window.
    postgres: async () => ({ location: await requireServer('postgres'), anchorMs: isolatedAnchor(), shared: true }),
    mysql: async () => ({ location: await requireServer('mysql'), anchorMs: isolatedAnchor(), shared: true }),
    mongodb: async () => ({ location: await requireServer('mongodb'), anchorMs: isolatedAnchor(), shared: true }),
    redis: async () => ({ location: await requireServer('redis'), anchorMs: isolatedAnchor(), shared: true }),
    // The recordings bucket the test created doubles as the `s3` location.
    s3: async () => ({ location: 's3', anchorMs: isolatedAnchor(), shared: true }),
  };
}
