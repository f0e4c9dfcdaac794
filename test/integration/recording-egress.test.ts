/**
 * The recording function against the egress stand-in (LiveKit's Twirp egress API on loopback)
 * and LocalStack: snapshots travel through a real SQS recording queue, the stand-in uploads a
 * real OGG to the LocalStack bucket at the requested key, and discards delete real objects.
 * Signed egress_ended webhooks from the stand-in go through the real webhook handler.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { WebhookReceiver } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, resetConfigForTests, type Config } from '../../functions/config/config.ts';
import type { Snapshot } from '../../functions/contract/snapshot.ts';
import { persistSnapshots } from '../../functions/persist/persist.ts';
import { drainEmbeddedRecording } from '../../functions/recording/embedded.ts';
import { createRecorder, recordingBatch, resetRecorderForTests } from '../../functions/recording/handler.ts';
import type { Recorder } from '../../functions/recording/recorder.ts';
import { loadRecordingSettings, resetRecordingSettingsForTests } from '../../functions/recording/settings.ts';
import { S3RecordingStateStore } from '../../functions/recording/state.ts';
import { backendFor, closeAllBackends } from '../../functions/storage/select.ts';
import { EmbeddedSnapshotSink } from '../../functions/transport/embedded-sink.ts';
import { SqsSnapshotSink } from '../../functions/transport/sqs-sink.ts';
import { CallFinalizer } from '../../functions/webhook/finalize.ts';
import { handleWebhook } from '../../functions/webhook/handler.ts';
import { EgressStandIn, inspectOgg } from '../support/egress-standin.ts';
import { createBucket, localstackEndpoint, pipelineEnv, sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { pollOnce } from '../support/queue-poller.ts';
import { LOCALSTACK_CREDENTIALS } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const API_KEY = 'standin-key';
const API_SECRET = 'standin-secret-0123456789abcdef0123456789';
const TZ = 'Asia/Kolkata';

let endpoint: string;
let bucket: string;
let folder: string;
let sqs: SQSClient;
let queueUrl: string;
let s3: S3Client;

function lambdaEnv(): Record<string, string> {
  return pipelineEnv({ folder, bucket, endpoint, timezone: TZ, queueUrl }, { CALL_RECORDING: 'true', CALLDATA_RECORDING_QUEUE_URL: queueUrl });
}

function setup(options: { uploadDelayMs?: number; discardWaitMs?: number; webhook?: boolean } = {}) {
  const config: Config = loadConfig(lambdaEnv());
  let recorder: Recorder | undefined;
  const standIn = new EgressStandIn({
    apiKey: API_KEY,
    apiSecret: API_SECRET,
    uploadDelayMs: options.uploadDelayMs ?? 100,
    webhook: options.webhook
      ? async (request) => {
          const response = await handleWebhook(
            { headers: { Authorization: request.authorization }, body: request.body, isBase64Encoded: false },
            { receiver: new WebhookReceiver(API_KEY, API_SECRET), finalizer: new CallFinalizer(recorder!, config) },
          );
          expect(response.statusCode).toBe(200);
        }
      : undefined,
  });
  const start = async () => {
    const url = await standIn.start();
    const settings = loadRecordingSettings({
      LIVEKIT_URL: url,
      LIVEKIT_API_KEY: API_KEY,
      LIVEKIT_API_SECRET: API_SECRET,
      CALLDATA_EGRESS_BACKOFF_MS: '50',
      CALLDATA_DISCARD_WAIT_MS: String(options.discardWaitMs ?? 5_000),
      CALLDATA_DISCARD_POLL_MS: '100',
      CALLDATA_RECORDING_STATE_PREFIX: '_calldata-recordings',
    });
    recorder = createRecorder(config, settings);
    return recorder;
  };
  return { config, standIn, start };
}

/** The persist function's job for the metadata (the snapshot queue is another test's subject). */
async function persist(config: Config, snapshot: Snapshot): Promise<void> {
  const metadata = await backendFor(config.metadataLocation, { s3: config.s3 });
  const transcription = await backendFor(config.transcriptionLocation, { s3: config.s3 });
  const [outcome] = await persistSnapshots([snapshot], config, { metadata, transcription });
  expect(outcome?.ok).toBe(true);
}

/** Sends through the real SQS sink to the recording queue and runs the handler over it, as Lambda would. */
async function deliver(config: Config, recorder: Recorder, snapshot: Snapshot): Promise<void> {
  await new SqsSnapshotSink(config).send(snapshot);
  await pollOnce(sqs, queueUrl, (event, context) => recordingBatch(event, context, recorder), { emptyRounds: 1, waitSeconds: 1 });
}

async function exists(key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

async function readObject(key: string): Promise<Uint8Array> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return response.Body!.transformToByteArray();
}

function call(callId: string, roomName: string) {
  const key = `${roomName}/20261124T004838.120_${callId.slice(-8)}/call_${roomName}_20261124T004838.120_${callId.slice(-8)}.ogg`;
  const base = { callId, roomName, recordingKey: key };
  // As the worker sends them: the recording in the configured bucket.
  const inBucket = (s: Snapshot): Snapshot => ({ ...s, recording: { key, bucket } });
  const notYetAnswered = (s: Snapshot): Snapshot => ({ ...s, call: { ...s.call, answered: false, answeredAtMs: undefined }, conversation: undefined });
  return {
    key,
    started: notYetAnswered(inBucket(buildSnapshot({ ...base, kind: 'started', seq: 1_000 }))),
    progress: inBucket(buildSnapshot({ ...base, kind: 'progress', seq: 2_000, turns: 2 })),
    ended: inBucket(buildSnapshot({ ...base, kind: 'ended', seq: 3_000, turns: 3 })),
    unanswered: inBucket(buildSnapshot({ ...base, kind: 'unanswered', seq: 3_000 })),
  };
}

beforeAll(async () => {
  endpoint = await localstackEndpoint();
  useLocalstackEnv(endpoint);
  bucket = await createBucket(endpoint, 'calldata-rec');
  folder = await mkdtemp(join(tmpdir(), 'calldata-recording-'));
  sqs = sqsFor(endpoint);
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: `calldata-recording-${Date.now()}`, Attributes: { VisibilityTimeout: '2' } }));
  queueUrl = queue.QueueUrl ?? '';
  s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
});

afterAll(async () => {
  await closeAllBackends();
  s3?.destroy();
  sqs?.destroy();
  await rm(folder, { recursive: true, force: true });
});

describe('recording function with the egress stand-in and LocalStack', () => {
  it('records an answered call: starts the egress, stops it at the end, and the metadata names the real OGG', async () => {
    // Prepare
    const { config, standIn, start } = setup();
    const recorder = await start();
    const c = call('RM_recAnswered1', 'sales-line');
    standIn.roomIds.set('sales-line', 'RM_recAnswered1');
    try {
      // Act: the call starts, talks, ends
      await persist(config, c.started);
      await deliver(config, recorder, c.started);
      await persist(config, c.progress);
      await persist(config, c.ended);
      await deliver(config, recorder, c.ended);
      // Assess: the request LiveKit got
      const startRequest = standIn.requests.find((r) => r.method === 'StartRoomCompositeEgress');
      expect(startRequest?.body).toMatchObject({ roomName: 'sales-line', layout: 'speaker', audioOnly: true });
      const file = (startRequest?.body.fileOutputs as Record<string, unknown>[])[0]!;
      expect(file).toMatchObject({ fileType: 'OGG', filepath: c.key, s3: { bucket, forcePathStyle: true } });
      // ...the real object at the key is a valid Ogg Opus file...
      const ogg = inspectOgg(await readObject(c.key));
      expect(ogg.opus).toBe(true);
      // ...and the final metadata carries it
      const meta = (await (await backendFor(config.metadataLocation, { s3: config.s3 })).read('metadata', 'RM_recAnswered1'))?.document as Record<string, unknown>;
      expect(meta).toMatchObject({
        answered: true,
        status: 'completed',
        recording_filename: c.key.slice(c.key.lastIndexOf('/') + 1),
        recording_location: `s3://${bucket}/${c.key}`,
        recording_status: 'complete',
        recording_size_bytes: standIn.ogg.length,
        recording_duration: ogg.durationMs / 1000,
      });
    } finally {
      await standIn.close();
    }
  });

  it('discards the recording of an unanswered call: the uploaded object is deleted', async () => {
    // Prepare
    const { config, standIn, start } = setup({ uploadDelayMs: 300 });
    const recorder = await start();
    const c = call('RM_recUnans01', 'support-line');
    standIn.roomIds.set('support-line', 'RM_recUnans01');
    try {
      await persist(config, c.started);
      await deliver(config, recorder, c.started);
      // Act
      await persist(config, c.unanswered);
      await deliver(config, recorder, c.unanswered);
      await standIn.settled();
      // Assess: the egress uploaded the file (after it was stopped) and the discard deleted it
      expect(standIn.uploads.map((u) => u.key)).toEqual([c.key]);
      expect(await exists(c.key)).toBe(false);
      const meta = (await (await backendFor(config.metadataLocation, { s3: config.s3 })).read('metadata', 'RM_recUnans01'))?.document as Record<string, unknown>;
      expect(meta).toMatchObject({ answered: false, status: 'no_answer', recording_status: 'discarded' });
      expect(meta.recording_filename).toBeUndefined();
      expect(await (await backendFor(config.transcriptionLocation, { s3: config.s3 })).read('transcription', 'RM_recUnans01')).toBeUndefined();
    } finally {
      await standIn.close();
    }
  });

  it('deletes an upload that lands after the discard gave up waiting, when egress_ended arrives', async () => {
    // Prepare: the egress takes longer to upload than the discard waits
    const { config, standIn, start } = setup({ uploadDelayMs: 4_000, discardWaitMs: 200, webhook: true });
    const recorder = await start();
    const c = call('RM_recLate001', 'late-line');
    standIn.roomIds.set('late-line', 'RM_recLate001');
    try {
      await persist(config, c.started);
      await deliver(config, recorder, c.started);
      // Act
      await persist(config, c.unanswered);
      await deliver(config, recorder, c.unanswered);
      expect(standIn.uploads).toHaveLength(0);
      await standIn.settled(); // upload, then the signed egress_ended webhook
      // Assess
      expect(standIn.uploads.map((u) => u.key)).toEqual([c.key]);
      expect(await exists(c.key)).toBe(false);
      const state = await new S3RecordingStateStore(config.s3, '_calldata-recordings').load('RM_recLate001');
      expect(state.discard).toBeDefined();
      expect(state.result?.status).toBe('complete');
    } finally {
      await standIn.close();
    }
  });

  it('retries an egress service that answers 503 and records the recording once it starts', async () => {
    const { config, standIn, start } = setup();
    const recorder = await start();
    const c = call('RM_rec503ok01', 'busy-egress');
    standIn.failStarts(2);
    try {
      await deliver(config, recorder, c.started);
      const starts = standIn.requests.filter((r) => r.method === 'StartRoomCompositeEgress');
      expect(starts).toHaveLength(3);
      const state = await new S3RecordingStateStore(config.s3, '_calldata-recordings').load('RM_rec503ok01');
      expect(state.egress?.egressId).toMatch(/^EG_/);
      expect(state.result).toBeUndefined();
    } finally {
      await standIn.close();
    }
  });

  it('records the failure in the call status when the egress service stays unavailable', async () => {
    const { config, standIn, start } = setup();
    const recorder = await start();
    const c = call('RM_rec503no01', 'no-egress');
    standIn.failStarts(10);
    try {
      await persist(config, c.started);
      await deliver(config, recorder, c.started);
      await persist(config, c.ended);
      await deliver(config, recorder, c.ended);
      const meta = (await (await backendFor(config.metadataLocation, { s3: config.s3 })).read('metadata', 'RM_rec503no01'))?.document as Record<string, unknown>;
      expect(meta).toMatchObject({ answered: true, status: 'failed', recording_status: 'failed' });
      expect(meta.recording_error).toMatch(/503.*no response from servers/);
      expect(meta.recording_filename).toBeUndefined();
      // Metadata and transcript were stored regardless.
      expect(await (await backendFor(config.transcriptionLocation, { s3: config.s3 })).read('transcription', 'RM_rec503no01')).toBeDefined();
    } finally {
      await standIn.close();
    }
  });

  it('runs the recording step after persist on the embedded default, without holding back snapshots', async () => {
    // Prepare: no queue; the in-process pipeline reads the environment like the worker does
    const { standIn } = setup();
    const egressUrl = await standIn.start();
    const env = { ...lambdaEnv(), CALLDATA_DEAD_LETTER_DIR: join(folder, 'dead-letter'), LIVEKIT_URL: egressUrl, LIVEKIT_API_KEY: API_KEY, LIVEKIT_API_SECRET: API_SECRET };
    delete (env as Record<string, string | undefined>).CALLDATA_QUEUE_URL;
    delete (env as Record<string, string | undefined>).CALLDATA_RECORDING_QUEUE_URL;
    Object.assign(process.env, env);
    delete process.env.CALLDATA_QUEUE_URL;
    delete process.env.CALLDATA_RECORDING_QUEUE_URL;
    resetConfigForTests();
    resetRecordingSettingsForTests();
    resetRecorderForTests();
    const config = loadConfig(env);
    const sink = new EmbeddedSnapshotSink(config);
    const c = call('RM_recEmbed001', 'embedded-line');
    standIn.roomIds.set('embedded-line', 'RM_recEmbed001');
    try {
      // Act
      await sink.send(c.started);
      await sink.send(c.progress);
      await drainEmbeddedRecording(20_000);
      await sink.send(c.ended);
      await drainEmbeddedRecording(20_000);
      // Assess
      expect(standIn.requests.filter((r) => r.method === 'StartRoomCompositeEgress')).toHaveLength(1);
      const meta = (await (await backendFor(config.metadataLocation, { s3: config.s3 })).read('metadata', 'RM_recEmbed001'))?.document as Record<string, unknown>;
      expect(meta).toMatchObject({ status: 'completed', recording_status: 'complete', recording_filename: c.key.slice(c.key.lastIndexOf('/') + 1) });
      expect(await exists(c.key)).toBe(true);
    } finally {
      await standIn.close();
    }
  });

  it('sends the recording kinds to the recording queue with the real SQS sink', async () => {
    const { config } = setup();
    const c = call('RM_recQueue01', 'queue-line');
    await new SqsSnapshotSink(config).send(c.started);
    const bodies: string[] = [];
    await pollOnce(sqs, queueUrl, async (event) => {
      for (const r of event.Records) bodies.push(r.body);
      return { batchItemFailures: [] };
    });
    // The test queue doubles as snapshot and recording queue, so the started snapshot arrives twice.
    expect(bodies.filter((b) => b.includes('"RM_recQueue01"'))).toHaveLength(2);
  });
});
