/**
 * End to end against the real livekit-server (dev mode): the real worker (`node worker/main.ts
 * dev`, scripted FakeLLM, text only) registers and is dispatched explicitly; a simulated SIP
 * caller (kind SIP, sip.* attributes on its token) talks over `lk.chat`.
 *
 * Most calls go the way they would on AWS: the worker's fact messages travel through LocalStack
 * SQS to the persist and recording handlers run here as Lambda would run them; LiveKit's own
 * webhooks reach the webhook handler; metadata and transcripts land in local-folder locations;
 * recordings go through the egress stand-in into LocalStack S3.
 *
 * The re-dispatch test runs on the embedded default (no queue) with a PostgreSQL location: a
 * worker is killed mid-call, the room is dispatched again to a new worker, and the stored record
 * is the merge of both jobs' facts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { WebhookReceiver } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, RECORDING_TIMING, resetConfigForTests, type Config } from '../../functions/config/config.ts';
import type { MetadataDocument, TranscriptionItem } from '../../functions/contract/record.ts';
import { WORKER_LOST } from '../../functions/contract/vocabulary.ts';
import { recordModel } from '../../functions/domain/model.ts';
import { handler as persistHandler } from '../../functions/persist/handler.ts';
import { recordingBatch } from '../../functions/recording/handler.ts';
import type { Recorder } from '../../functions/recording/recorder.ts';
import { recordingSettings } from '../../functions/recording/settings.ts';
import { createRecorder } from '../../functions/recording/step.ts';
import type { StorageBackend, StoredCall } from '../../functions/storage/backend.ts';
import { PostgresBackend } from '../../functions/storage/postgres.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { handleWebhook } from '../../functions/webhook/handler.ts';
import { pipelineFor } from '../../functions/wiring.ts';
import { HANGUP_DISABLED_REPLY } from '../../worker/hangup.ts';
import { EgressStandIn } from '../support/egress-standin.ts';
import { createBucket, localstackEndpoint, pipelineEnv, replacePipelineEnv, sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../support/servers.ts';
import { WebhookListener } from '../support/webhook-listener.ts';
import { eventually, LIVEKIT_KEY, LIVEKIT_SECRET, LiveKitRooms, QueuePump, SimulatedCaller, WorkerProcess } from './worker-harness.ts';

const TZ = 'Asia/Kolkata';
const ANSWER_TIMEOUT_MS = 4_000;
/** Every scripted reply reports token usage (as a real model does) and takes a little time to its first token. */
const usage = (promptTokens: number, completionTokens: number) => ({ usage: { promptTokens, completionTokens }, ttft: 40 });
const SCRIPT = {
  instructions: 'front desk',
  responses: [
    { input: 'hello', content: 'Hi, this is the front desk. How can I help?', ...usage(120, 12) },
    { input: 'what are your hours?', content: 'We are open nine to five.', ...usage(150, 7) },
    { input: 'bye', content: 'Goodbye!', toolCalls: [{ name: 'end_call', args: {} }], ...usage(170, 9) },
    // Tool results reach the model JSON-encoded.
    { input: JSON.stringify(HANGUP_DISABLED_REPLY), content: 'Of course, I am still here. Anything else?', ...usage(190, 11) },
    { input: 'no thanks', content: 'Have a nice day.', ...usage(210, 5) },
    // What the caller says to the re-dispatched agent.
    { input: 'are you open on sunday?', content: 'No, we are closed on Sundays.', ...usage(100, 8) },
    { input: 'thanks, that is all', content: 'You are welcome. Goodbye.', ...usage(130, 6) },
    // The model cannot be reached (as without a LiveKit Inference key): AgentSession closes after four such errors.
    { input: 'are you there?', error: 'scripted model unreachable' },
  ],
};
/** The scripted model as the metadata's usage names it. */
const SCRIPTED_MODEL = { type: 'llm_usage', provider: 'calldata', model: 'scripted' };

let livekitUrl: string;
let endpoint: string;
let bucket: string;
let folder: string;
let sqs: SQSClient;
let s3: S3Client;
let rooms: LiveKitRooms;
let standIn: EgressStandIn;
let recorder: Recorder;
let config: Config;
let metadata: StorageBackend;
let transcripts: StorageBackend;
let factPump: QueuePump;
let recordingPump: QueuePump;
let webhooks: WebhookListener;
/** Two workers on the SQS pipeline: HANGUP_CALL on, and off (the latter is killed in the last test). */
const workers: Record<'hangup' | 'noHangup', WorkerProcess> = {} as never;
/** Workers on the embedded default, started and killed by the re-dispatch test. */
const embeddedWorkers: WorkerProcess[] = [];
let workerEnv: (extra: Record<string, string>) => Record<string, string>;
/** A worker's environment on the SQS pipeline (the AWS side runs in this process). */
let sqsWorkerEnv: (extra: Record<string, string>) => Record<string, string>;

type Doc = Partial<MetadataDocument> & Record<string, unknown>;

async function read(backend: StorageBackend, callId: string): Promise<StoredCall | undefined> {
  return backend.read(callId);
}

/**
 * The call's closed record. With `fromWorker`, waits for the worker's own final message: LiveKit's
 * room_finished webhook may close the record first, and the worker's final word must then win.
 */
async function finalMetadata(callId: string, timeoutMs = 45_000, fromWorker = true, backend: () => StorageBackend = () => metadata): Promise<Doc> {
  return eventually(
    async () => {
      const stored = await read(backend(), callId);
      const doc = stored?.documents.metadata as Doc | undefined;
      if (fromWorker && stored?.state.outcome?.source !== 'worker') return undefined;
      return doc && doc.end_time ? doc : undefined;
    },
    timeoutMs,
    `final metadata of ${callId}`,
  );
}

async function conversation(callId: string, backend: StorageBackend = transcripts): Promise<TranscriptionItem[] | undefined> {
  return (await read(backend, callId))?.documents.transcription?.conversation;
}

async function objectExists(key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

function roomName(label: string): string {
  return `e2e-${label}-${Date.now().toString(36)}`;
}

beforeAll(async () => {
  livekitUrl = await requireServer('livekit');
  endpoint = await localstackEndpoint();
  useLocalstackEnv(endpoint);
  bucket = await createBucket(endpoint, 'calldata-e2e');
  folder = await mkdtemp(join(tmpdir(), 'calldata-e2e-'));
  sqs = sqsFor(endpoint);
  s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
  rooms = new LiveKitRooms(livekitUrl);
  const stamp = Date.now().toString(36);
  const factQueue = await QueuePump.createQueue(sqs, `calldata-e2e-facts-${stamp}`);
  const recordingQueue = await QueuePump.createQueue(sqs, `calldata-e2e-recording-${stamp}`);

  // The AWS side, configured as the stack would configure the Lambdas.
  const lambdaEnv = pipelineEnv({ folder, bucket, endpoint, timezone: TZ, queueUrl: factQueue }, { CALL_RECORDING: 'true', CALLDATA_RECORDING_QUEUE_URL: recordingQueue });
  replacePipelineEnv(lambdaEnv);
  resetConfigForTests();
  config = loadConfig();
  const pipeline = pipelineFor(config);
  const targets = await pipeline.targets();
  metadata = targets.find((t) => t.location === config.metadataLocation)!.backend;
  transcripts = targets.find((t) => t.location === config.transcriptionLocation)!.backend;

  // Webhooks (LiveKit's and the egress stand-in's) become facts on the fact queue.
  const webhookDeps = { receiver: new WebhookReceiver(LIVEKIT_KEY, LIVEKIT_SECRET), facts: () => pipeline.factSink() };
  standIn = new EgressStandIn({
    apiKey: LIVEKIT_KEY,
    apiSecret: LIVEKIT_SECRET,
    uploadDelayMs: 200,
    webhook: async (request) => handleWebhook({ headers: { authorization: request.authorization }, body: request.body, isBase64Encoded: false }, webhookDeps),
  });
  const egressUrl = await standIn.start();
  webhooks = new WebhookListener(async (request) => handleWebhook({ headers: { authorization: request.authorization }, body: request.body, isBase64Encoded: false }, webhookDeps));
  await webhooks.start();
  recorder = createRecorder(pipeline, {
    settings: recordingSettings({
      livekit: { url: egressUrl, apiKey: LIVEKIT_KEY, apiSecret: LIVEKIT_SECRET },
      recordingTiming: { ...RECORDING_TIMING, discardWaitMs: 5_000, discardPollMs: 100 },
    }),
  });
  factPump = new QueuePump(sqs, factQueue, (event, context) => persistHandler(event, context) as Promise<never>);
  recordingPump = new QueuePump(sqs, recordingQueue, (event, context) => recordingBatch(event, context, recorder));
  factPump.start();
  recordingPump.start();

  // The worker side: real workers, as they would run on ECS.
  workerEnv = (extra) => ({
    LIVEKIT_URL: livekitUrl,
    LIVEKIT_API_KEY: LIVEKIT_KEY,
    LIVEKIT_API_SECRET: LIVEKIT_SECRET,
    CALLDATA_AGENT_SCRIPT: JSON.stringify(SCRIPT),
    CALLDATA_PROGRESS_INTERVAL_MS: '300',
    SAVE_METADATA: 'true',
    SAVE_TRANSCRIPTION: 'true',
    TIMEZONE: TZ,
    POWERTOOLS_LOG_LEVEL: 'INFO',
    // Many processes share this box: count jobs, not machine CPU, as the worker's load.
    CALLDATA_WORKER_LOAD: 'jobs',
    ...extra,
  });
  sqsWorkerEnv = (extra: Record<string, string>) =>
    workerEnv({
      CALL_RECORDING: 'true',
      AWS_S3_BUCKET: bucket,
      CALLDATA_QUEUE_URL: factQueue,
      CALLDATA_RECORDING_QUEUE_URL: recordingQueue,
      AWS_ENDPOINT_URL: endpoint,
      AWS_ENDPOINT_URL_SQS: endpoint.replace('127.0.0.1', 'localhost'),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
      ...extra,
    });
  workers.hangup = new WorkerProcess(`calldata-e2e-hangup-${stamp}`, sqsWorkerEnv({ HANGUP_CALL: 'true', CALLDATA_ANSWER_TIMEOUT_MS: String(ANSWER_TIMEOUT_MS) }), join(folder, 'worker-hangup.log'));
  workers.noHangup = new WorkerProcess(`calldata-e2e-nohangup-${stamp}`, sqsWorkerEnv({ HANGUP_CALL: 'false', SAVE_TOOL_CALLS: 'true' }), join(folder, 'worker-nohangup.log'));
  await Promise.all(Object.values(workers).map((w) => w.start()));
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([...Object.values(workers), ...embeddedWorkers].map((w) => w.stop()));
  await factPump?.stop();
  await recordingPump?.stop();
  await standIn?.close();
  await webhooks?.close();
  await rooms?.cleanup();
  await closeAllBackends();
  s3?.destroy();
  sqs?.destroy();
  if (folder && !process.env.KEEP_E2E) await rm(folder, { recursive: true, force: true });
}, 60_000);

describe('the worker end to end', () => {
  it('records an answered call the caller hangs up: metadata, transcript and recording', async () => {
    // Prepare
    const room = await rooms.callRoom(roomName('answered'), workers.hangup.agentName);
    standIn.roomIds.set(room.name, room.sid);
    const caller = new SimulatedCaller({ livekitUrl, room: room.name });
    await caller.join();
    await caller.waitForAgent();
    // Act: the phone is picked up, two turns, the caller hangs up
    await caller.setStatus('active');
    await caller.say('hello', 'Hi, this is the front desk. How can I help?');
    await caller.say('what are your hours?', 'We are open nine to five.');
    await caller.leave();
    // Assess
    const meta = await finalMetadata(room.sid);
    expect(meta).toMatchObject({
      call_id: room.sid,
      room_name: room.name,
      call_direction: 'inbound',
      inbound_trunk_id: 'ST_e2eInbound',
      agent_number: '+14155550100',
      user_number: '+919876543210',
      answered: true,
      timezone: TZ,
    });
    expect(String(meta.start_time)).toMatch(/\+05:30$/);
    // Why it ended, and the identifiers that find the call in LiveKit's own records.
    expect(meta).toMatchObject({ end_reason: 'caller_hangup', room_sid: room.sid, sip_call_id: 'SCL_e2e', trunk_id: 'ST_e2eInbound', dispatch_rule_id: 'SDR_e2e', job_id: expect.stringMatching(/^AJ_/) });
    // LiveKit's SIP service answered the call normally: no SIP final status to report.
    expect(meta.sip_status_code).toBeUndefined();
    expect(String(meta.end_reason_detail)).toMatch(/caller hung up|session closed|room disconnected/);
    // What the model used (both turns) and how fast it answered.
    expect(meta.usage).toEqual([{ ...SCRIPTED_MODEL, input_tokens: 270, input_cached_tokens: 0, output_tokens: 19 }]);
    const latency = meta.latency as Record<string, { p50_ms: number; p90_ms: number; max_ms: number; count: number }> | undefined;
    expect(latency?.llm_ttft?.count).toBe(2);
    expect(latency?.llm_ttft?.p50_ms).toBeGreaterThanOrEqual(40);
    expect(latency?.llm_ttft?.max_ms).toBeGreaterThanOrEqual(latency?.llm_ttft?.p90_ms ?? Infinity);
    const items = await conversation(room.sid);
    expect(items?.map((i) => [i.role, i.content])).toEqual([
      ['user', 'hello'],
      ['assistant', 'Hi, this is the front desk. How can I help?'],
      ['user', 'what are your hours?'],
      ['assistant', 'We are open nine to five.'],
    ]);
    // Per-turn latency rides on the assistant's items, beside the spec's fields.
    expect(items?.filter((i) => i.role === 'assistant').every((i) => (i.metrics?.llm_ttft_ms ?? 0) >= 40)).toBe(true);
    expect(items?.every((i) => i.timestamp.endsWith('+05:30'))).toBe(true);
    // The recording was started, stopped at the end, uploaded, and its result merged.
    const recorded = await eventually(
      async () => {
        const doc = (await read(metadata, room.sid))?.documents.metadata as Doc | undefined;
        return doc?.recording_status === 'complete' ? doc : undefined;
      },
      20_000,
      'the recording result in the metadata',
    );
    expect(recorded).toMatchObject({ status: 'completed', recording_filename: expect.stringMatching(/^call_e2e-answered-.*\.ogg$/) });
    const key = String(recorded.recording_location).replace(`s3://${bucket}/`, '');
    expect(key.startsWith(`${room.name}/`)).toBe(true);
    expect(await objectExists(key)).toBe(true);
    // One job wrote the call: started first, ended last, numbered 1, 2, 3, ...
    const kinds = factPump.workerKinds(room.sid);
    expect(kinds[0]).toBe('started');
    expect(kinds.at(-1)).toBe('ended');
    expect(new Set(factPump.messagesFor(room.sid).filter((m) => m.writer.startsWith('job:')).map((m) => m.writer)).size).toBe(1);
  });

  it('ends the call with the hangup tool after the goodbye was said (HANGUP_CALL=true)', async () => {
    const room = await rooms.callRoom(roomName('hangup'), workers.hangup.agentName);
    const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'active' });
    await caller.join();
    await caller.waitForAgent();
    await caller.say('hello', 'Hi, this is the front desk. How can I help?');
    // (The goodbye text may still be in flight when the room goes: the transcript is checked below.)
    await caller.say('bye');
    // The agent deletes the room: the caller is disconnected without leaving itself.
    await eventually(async () => !(await rooms.exists(room.name)), 20_000, 'the room to be deleted');
    const meta = await finalMetadata(room.sid);
    expect(meta).toMatchObject({ answered: true, status: 'completed', end_reason: 'agent_hangup', end_reason_detail: 'agent hung up (end_call tool)' });
    // SAVE_TOOL_CALLS is off for this worker: no tool calls are kept.
    expect(meta.tool_calls).toBeUndefined();
    const items = await conversation(room.sid);
    expect(items?.map((i) => i.content)).toEqual(['hello', 'Hi, this is the front desk. How can I help?', 'bye', 'Goodbye!']);
    await caller.leave();
  });

  it('keeps the call going when the model asks to hang up and HANGUP_CALL=false', async () => {
    const room = await rooms.callRoom(roomName('nohangup'), workers.noHangup.agentName);
    const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'active' });
    await caller.join();
    await caller.waitForAgent();
    await caller.say('bye', 'Of course, I am still here. Anything else?');
    expect(await rooms.exists(room.name)).toBe(true);
    expect(caller.connected).toBe(true);
    await caller.say('no thanks', 'Have a nice day.');
    await caller.leave();
    const meta = await finalMetadata(room.sid);
    expect(meta).toMatchObject({ answered: true, end_reason: 'caller_hangup' });
    expect(String(meta.end_reason_detail)).not.toMatch(/end_call/);
    // SAVE_TOOL_CALLS=true: the tool call the model made, with what the tool answered, beside the conversation.
    expect(meta.tool_calls).toEqual([{ id: expect.any(String), name: 'end_call', arguments: '{}', output: expect.stringContaining(HANGUP_DISABLED_REPLY), is_error: false, timestamp: expect.stringMatching(/\+05:30$/) }]);
    const items = await conversation(room.sid);
    expect(items?.map((i) => i.content)).toEqual(['bye', 'Goodbye!', 'Of course, I am still here. Anything else?', 'no thanks', 'Have a nice day.']);
  });

  it('stores the latency summary of a call saved with metadata only (SAVE_TRANSCRIPTION=false), from the worker’s per-turn facts', async () => {
    // Prepare: a worker that saves metadata but no transcripts; the setting comes from the .env in its
    // own working directory (a temporary one: the repository's .env never reaches test workers)
    const { SAVE_TRANSCRIPTION: _transcripts, ...env } = sqsWorkerEnv({ HANGUP_CALL: 'true', CALL_RECORDING: 'false' });
    const worker = new WorkerProcess(`calldata-e2e-metaonly-${Date.now().toString(36)}`, env, join(folder, 'worker-metaonly.log'), { dotenv: 'SAVE_TRANSCRIPTION=false\n' });
    embeddedWorkers.push(worker);
    await worker.start();
    const room = await rooms.callRoom(roomName('metaonly'), worker.agentName);
    const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'active' });
    await caller.join();
    await caller.waitForAgent();
    // Act: two turns, then the caller hangs up
    await caller.say('hello', 'Hi, this is the front desk. How can I help?');
    await caller.say('what are your hours?', 'We are open nine to five.');
    await caller.leave();
    // Assess: the worker read SAVE_TRANSCRIPTION=false from its .env, sent the turns' latency and no transcript,
    // and the metadata has the per-call summary
    const meta = await finalMetadata(room.sid);
    expect(worker.logs()).toMatch(/"saveTranscription":false/);
    const latency = meta.latency as Record<string, { p50_ms: number; p90_ms: number; max_ms: number; count: number }> | undefined;
    expect(latency?.llm_ttft?.count).toBe(2);
    expect(latency?.llm_ttft?.p50_ms).toBeGreaterThanOrEqual(40);
    expect(meta).toMatchObject({ answered: true, end_reason: 'caller_hangup', usage: [{ ...SCRIPTED_MODEL, input_tokens: 270, input_cached_tokens: 0, output_tokens: 19 }] });
    const sent = factPump.bodies.map((body) => JSON.parse(body) as { callId: string; writer: string; seq: number; facts: { conversation?: unknown[]; turns?: { id: string; llmTtftMs?: number }[] } });
    const mine = sent.filter((m) => m.callId === room.sid && m.writer.startsWith('job:')).sort((x, y) => x.seq - y.seq);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((m) => m.facts.conversation === undefined)).toBe(true);
    expect(mine.at(-1)?.facts.turns?.filter((t) => (t.llmTtftMs ?? 0) >= 40)).toHaveLength(2);
    expect((await conversation(room.sid)) ?? []).toEqual([]);
    await worker.stop();
  });

  it('stores a call whose agent session fails as failed / agent_error, never completed', async () => {
    // Prepare: an answered call
    const room = await rooms.callRoom(roomName('error'), workers.hangup.agentName);
    const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'active' });
    await caller.join();
    await caller.waitForAgent();
    await caller.say('hello', 'Hi, this is the front desk. How can I help?');
    // Act: the model stops answering; after its fourth unrecoverable error AgentSession closes with CloseReason.ERROR
    for (let i = 0; i < 4; i++) {
      await caller.say('are you there?');
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    // Assess
    const meta = await finalMetadata(room.sid);
    expect(meta).toMatchObject({ answered: true, status: 'failed', end_reason: 'agent_error', room_sid: room.sid });
    expect(String(meta.end_reason_detail)).toMatch(/agent session closed \(error: .*scripted model unreachable/);
    await caller.leave();
  });

  describe('unanswered calls', () => {
    async function expectUnanswered(callId: string, status: string, endReason: string): Promise<void> {
      const meta = await finalMetadata(callId);
      expect(meta).toMatchObject({ answered: false, status, end_reason: endReason });
      expect(meta.recording_filename).toBeUndefined();
      expect(await conversation(callId)).toBeUndefined();
      // One unanswered message, and no "ended" written on exit.
      const kinds = factPump.workerKinds(callId);
      expect(kinds.filter((k) => k === 'unanswered')).toHaveLength(1);
      expect(kinds).not.toContain('ended');
      // Whatever the egress uploaded for this call is gone.
      await eventually(async () => ((await read(metadata, callId))?.documents.metadata as Doc | undefined)?.recording_status === 'discarded', 20_000, 'the recording to be discarded');
      await standIn.settled();
      for (const upload of standIn.uploads.filter((u) => u.key.includes(callId))) expect(await objectExists(upload.key)).toBe(false);
    }

    it('records a SIP call that hangs up before it was ever active', async () => {
      const room = await rooms.callRoom(roomName('never'), workers.hangup.agentName);
      standIn.roomIds.set(room.name, room.sid);
      const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'ringing' });
      await caller.join();
      await caller.waitForAgent();
      await caller.say('hello');
      await caller.setStatus('hangup');
      await expectUnanswered(room.sid, 'abandoned', 'caller_hangup');
      await caller.leave();
    });

    it('records a caller that leaves before answering', async () => {
      const room = await rooms.callRoom(roomName('early'), workers.hangup.agentName);
      standIn.roomIds.set(room.name, room.sid);
      const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'dialing' });
      await caller.join();
      await caller.waitForAgent();
      await caller.leave();
      await expectUnanswered(room.sid, 'abandoned', 'caller_hangup');
    });

    it('records an outbound call LiveKit could not dial as failed, naming LiveKit’s refusal and inventing no SIP status', async () => {
      // Prepare: job metadata asks for an outbound call. The dev livekit-server has no SIP service
      // (livekit-sip), so CreateSIPParticipant fails before any SIP exchange: there is no SIP
      // final response, and the worker must not make one up.
      const room = await rooms.callRoom(roomName('dialfail'), workers.hangup.agentName, JSON.stringify({ phone_number: '+15550100', outbound_trunk_id: 'ST_e2eOutbound' }));
      standIn.roomIds.set(room.name, room.sid);
      // Act: the agent dials through the real livekit-server's SIP API
      const meta = await finalMetadata(room.sid);
      // Assess
      expect(meta).toMatchObject({ answered: false, status: 'failed', end_reason: 'failed', call_direction: 'outbound', outbound_trunk_id: 'ST_e2eOutbound', user_number: '+15550100' });
      expect(String(meta.end_reason_detail)).toMatch(/^outbound dial failed: .*sip not connected/);
      expect(meta.sip_status_code).toBeUndefined();
      expect(meta.sip_status).toBeUndefined();
      expect(factPump.workerKinds(room.sid).filter((k) => k === 'unanswered')).toHaveLength(1);
    });

    it('records no answer when nobody answers within the timeout, and hangs up', async () => {
      const room = await rooms.callRoom(roomName('timeout'), workers.hangup.agentName);
      standIn.roomIds.set(room.name, room.sid);
      const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'ringing' });
      await caller.join();
      await caller.waitForAgent();
      await expectUnanswered(room.sid, 'no_answer', 'no_answer');
      await eventually(async () => !(await rooms.exists(room.name)), 20_000, 'the ringing room to be deleted');
      await caller.leave();
    });
  });

  describe('a job re-dispatched after its worker was killed mid-call (embedded default, PostgreSQL)', () => {
    let records: PostgresBackend;

    beforeAll(async () => {
      const pg = await requireServer('postgres');
      records = new PostgresBackend(pg, { documents: ['metadata', 'transcription'], model: recordModel(TZ) });
    });
    afterAll(async () => {
      await records?.close();
    });

    it('stores both halves of the conversation and complete metadata', async () => {
      // Prepare: two workers of one agent name on the embedded default, one after the other
      const pg = await requireServer('postgres');
      const agentName = `calldata-e2e-redispatch-${Date.now().toString(36)}`;
      const env = workerEnv({ HANGUP_CALL: 'false', CALL_RECORDING: 'false', METADATA_LOCATION: pg, TRANSCRIPTION_LOCATION: pg });
      const first = new WorkerProcess(agentName, env, join(folder, 'worker-redispatch-1.log'));
      embeddedWorkers.push(first);
      await first.start();
      const room = await rooms.callRoom(roomName('redispatch'), agentName);
      const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'active' });
      await caller.join();
      const firstAgent = await caller.waitForAgent();
      // The first half of the call, stored by the first job.
      await caller.say('hello', 'Hi, this is the front desk. How can I help?');
      await caller.say('what are your hours?', 'We are open nine to five.');
      await eventually(async () => (await conversation(room.sid, records))?.length === 4, 20_000, 'the first half of the transcript to be stored');
      expect((await read(records, room.sid))?.documents.metadata?.end_time).toBeNull();

      // Act: the worker dies mid-call (no shutdown callbacks); another worker registers; the room
      // is dispatched again (LiveKit does not re-dispatch on its own) and the call goes on
      first.kill();
      const second = new WorkerProcess(agentName, env, join(folder, 'worker-redispatch-2.log'));
      embeddedWorkers.push(second);
      await second.start();
      await rooms.redispatch(room.name, agentName);
      const secondAgent = await caller.waitForAgent(30_000, new Set([firstAgent]));
      await caller.say('are you open on sunday?', 'No, we are closed on Sundays.');
      await caller.say('thanks, that is all', 'You are welcome. Goodbye.');
      await caller.leave();

      // Assess: the record is the merge of both jobs' facts
      const meta = await finalMetadata(room.sid, 45_000, true, () => records);
      expect(secondAgent).not.toBe(firstAgent);
      expect(meta).toMatchObject({
        call_id: room.sid,
        room_name: room.name,
        call_direction: 'inbound',
        inbound_trunk_id: 'ST_e2eInbound',
        agent_number: '+14155550100',
        user_number: '+919876543210',
        answered: true,
        status: 'completed',
        timezone: TZ,
      });
      expect(String(meta.start_time)).toMatch(/\+05:30$/);
      expect(String(meta.end_time)).toMatch(/\+05:30$/);
      expect(meta.duration).toBeGreaterThan(0);
      expect(meta.end_reason).toBe('caller_hangup');
      expect(meta.recording_filename).toBeUndefined();
      // Each job reported its own usage; the record adds them up (two turns per job).
      expect(meta.usage).toEqual([{ ...SCRIPTED_MODEL, input_tokens: 120 + 150 + 100 + 130, input_cached_tokens: 0, output_tokens: 12 + 7 + 8 + 6 }]);
      const items = await conversation(room.sid, records);
      expect(items?.map((i) => [i.role, i.content])).toEqual([
        ['user', 'hello'],
        ['assistant', 'Hi, this is the front desk. How can I help?'],
        ['user', 'what are your hours?'],
        ['assistant', 'We are open nine to five.'],
        ['user', 'are you open on sunday?'],
        ['assistant', 'No, we are closed on Sundays.'],
        ['user', 'thanks, that is all'],
        ['assistant', 'You are welcome. Goodbye.'],
      ]);
      expect(items?.every((i) => i.timestamp.endsWith('+05:30'))).toBe(true);
      const stored = await read(records, room.sid);
      const writers = Object.keys(stored?.state.writers ?? {});
      expect(writers).toHaveLength(2);
      expect(writers.every((w) => w.startsWith('job:'))).toBe(true);
      expect(stored?.state.outcome).toMatchObject({ source: 'worker', status: 'completed' });
      // Both jobs saw the call from the same start: one folder.
      expect(stored?.folder).toMatch(new RegExp(`^${room.name}/\\d{8}T\\d{6}\\.\\d{3}_${room.sid}$`));
    });
  });

  it('finalizes the call of a worker killed mid-call, keeping the transcript up to its last message', async () => {
    // Prepare: an answered call with two turns stored
    // (Last test: it kills the HANGUP_CALL=false worker.)
    const room = await rooms.callRoom(roomName('killed'), workers.noHangup.agentName);
    standIn.roomIds.set(room.name, room.sid);
    const caller = new SimulatedCaller({ livekitUrl, room: room.name, callStatus: 'active' });
    await caller.join();
    await caller.waitForAgent();
    await caller.say('hello', 'Hi, this is the front desk. How can I help?');
    await caller.say('what are your hours?', 'We are open nine to five.');
    await eventually(async () => (await conversation(room.sid))?.length === 4, 20_000, 'the transcript of two turns to be stored');
    expect(((await read(metadata, room.sid))?.documents.metadata as Doc).end_time).toBeNull();
    // Act: the worker dies without a word; the caller hangs up; LiveKit closes the room
    workers.noHangup.kill();
    await caller.leave();
    await eventually(async () => !(await rooms.exists(room.name)), 30_000, 'the room to finish');
    // ...and LiveKit itself posts room_finished to the webhook function (then the egress ends).
    await eventually(() => webhooks.delivered.some((w) => w.event === 'room_finished' && w.roomSid === room.sid), 30_000, 'LiveKit to deliver room_finished');
    const response = webhooks.delivered.find((w) => w.event === 'room_finished' && w.roomSid === room.sid);
    standIn.endRoom(room.name);
    await standIn.settled();
    // Assess
    expect(response?.statusCode).toBe(200);
    expect(JSON.parse(response?.body ?? '{}')).toMatchObject({ result: 'recorded', callId: room.sid });
    const meta = await eventually(
      async () => {
        const doc = (await read(metadata, room.sid))?.documents.metadata as Doc | undefined;
        return doc?.end_time && doc.recording_status === 'complete' ? doc : undefined;
      },
      30_000,
      'the webhook to close the call and the recording result',
    );
    expect(meta).toMatchObject({ answered: true, end_reason: 'worker_lost', end_reason_detail: WORKER_LOST.webhook, recording_status: 'complete', status: 'completed' });
    expect(factPump.workerKinds(room.sid)).not.toContain('ended');
    const items = await conversation(room.sid);
    expect(items?.map((i) => i.content)).toEqual(['hello', 'Hi, this is the front desk. How can I help?', 'what are your hours?', 'We are open nine to five.']);
  });
});
