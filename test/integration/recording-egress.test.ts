/**
 * The recording function on the queue path, against the egress stand-in (LiveKit's Twirp
 * egress API on loopback) and LocalStack: the persist step sends recording commands to a real
 * SQS recording queue; the recording Lambda's handler runs them; what it did comes back as fact
 * messages on the real SQS fact queue, which the persist step merges. The stand-in uploads a
 * real OGG to the LocalStack bucket at the requested key; discards move real objects.
 * The record lives in a local folder.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, RECORDING_TIMING } from '../../functions/config/config.ts';
import { decodeMessage, decodeRecordingCommand, MESSAGE_VERSION, type CallFacts, type FactMessage } from '../../functions/contract/facts.ts';
import { mainEgress, recordingKey } from '../../functions/domain/render.ts';
import { quarantineKey } from '../../functions/domain/recorder.ts';
import { recordingBatch } from '../../functions/recording/handler.ts';
import { recordingSettings } from '../../functions/recording/settings.ts';
import { recordingStep, type RecordingStep } from '../../functions/recording/step.ts';
import type { StoredCall } from '../../functions/storage/backend.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { drainEmbedded } from '../../functions/transport/embedded-sink.ts';
import { pipelineFor, type Pipeline } from '../../functions/wiring.ts';
import { EgressStandIn, inspectOgg } from '../support/egress-standin.ts';
import { createBucket, localstackEndpoint, sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const API_KEY = 'standin-key';
const API_SECRET = 'standin-secret-0123456789abcdef0123456789';
const START = Date.UTC(2026, 10, 24, 0, 48, 38, 120);
const context = { functionName: 'calldata-recording', awsRequestId: 'test', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

let endpoint: string;
let bucket: string;
let folder: string;
let sqs: SQSClient;
let s3: S3Client;

async function queue(name: string): Promise<string> {
  const created = await sqs.send(new CreateQueueCommand({ QueueName: `calldata-${name}-${randomUUID().slice(0, 8)}`, Attributes: { VisibilityTimeout: '2' } }));
  return created.QueueUrl ?? '';
}

/** What Lambda's SQS event source does: receive, hand over as an SQSEvent, delete what did not fail. */
async function pump(queueUrl: string, handler: (event: SQSEvent) => Promise<SQSBatchResponse>): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    // Every send was awaited before this runs, so an empty short poll means an empty queue (LocalStack).
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['All'] }));
    const messages = received.Messages ?? [];
    if (messages.length === 0) return bodies;
    const event: SQSEvent = {
      Records: messages.map((m) => ({
        messageId: m.MessageId ?? '',
        receiptHandle: m.ReceiptHandle ?? '',
        body: m.Body ?? '',
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 's', ApproximateFirstReceiveTimestamp: '0' },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:test',
        awsRegion: 'us-east-1',
      })),
    };
    bodies.push(...messages.map((m) => m.Body ?? ''));
    const response = await handler(event);
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ''));
    if (done.length > 0) await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })) }));
  }
}

interface QueuedSetup {
  pipeline: Pipeline;
  standIn: EgressStandIn;
  step: RecordingStep;
  factQueue: string;
  recordingQueue: string;
  /** Runs both Lambdas until both queues are empty; returns the recording commands they carried. */
  flow: () => Promise<string[]>;
  close: () => Promise<void>;
}

async function queued(options: { uploadDelayMs?: number; discardWaitMs?: number } = {}): Promise<QueuedSetup> {
  const factQueue = await queue('facts');
  const recordingQueue = await queue('recording');
  const pipeline = pipelineFor(
    loadConfig({
      CALL_RECORDING: 'true',
      SAVE_METADATA: 'true',
      SAVE_TRANSCRIPTION: 'true',
      METADATA_LOCATION: folder,
      TRANSCRIPTION_LOCATION: folder,
      TIMEZONE: 'Asia/Kolkata',
      AWS_S3_BUCKET: bucket,
      AWS_S3_ENDPOINT: endpoint,
      AWS_S3_FORCE_PATH_STYLE: 'true',
      AWS_S3_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
      AWS_S3_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
      CALLDATA_QUEUE_URL: factQueue,
      CALLDATA_RECORDING_QUEUE_URL: recordingQueue,
    }),
  );
  const standIn = new EgressStandIn({ apiKey: API_KEY, apiSecret: API_SECRET, uploadDelayMs: options.uploadDelayMs ?? 100 });
  const url = await standIn.start();
  const settings = recordingSettings({
    livekit: { url, apiKey: API_KEY, apiSecret: API_SECRET },
    recordingTiming: { ...RECORDING_TIMING, egressBackoffMs: 50, discardWaitMs: options.discardWaitMs ?? 5_000, discardPollMs: 100 },
  });
  const step = await recordingStep(pipeline, { settings });
  // The persist Lambda's work: decode, merge, send the commands the records call for.
  const persistLambda = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const outcomes = await pipeline.persist(event.Records.map((r) => decodeMessage(r.body)));
    const failed = new Set([...outcomes.values()].filter((o) => o.error !== undefined).map((o) => o.callId));
    return { batchItemFailures: event.Records.filter((r) => failed.has(decodeMessage(r.body).callId)).map((r) => ({ itemIdentifier: r.messageId })) };
  };
  const flow = async () => {
    const commands: string[] = [];
    for (let round = 0; round < 20; round++) {
      const ran = await pump(recordingQueue, (event) => recordingBatch(event, context, step));
      await standIn.settled();
      const merged = await pump(factQueue, persistLambda);
      commands.push(...ran);
      if (ran.length === 0 && merged.length === 0) return commands;
    }
    throw new Error('the queues did not drain');
  };
  return { pipeline, standIn, step, factQueue, recordingQueue, flow, close: () => standIn.close() };
}

function newCall(label: string) {
  const tail = randomUUID().replace(/-/g, '').slice(0, 10);
  return { callId: `RM_${label}${tail}`, roomName: `${label}-line-${tail}` };
}

function worker(call: { callId: string; roomName: string }, step: 'started' | 'answered' | 'ended' | 'unanswered'): FactMessage {
  const seq = { started: 1, answered: 2, ended: 3, unanswered: 3 }[step];
  const answered = step === 'answered' || step === 'ended';
  const facts: CallFacts = {
    roomName: call.roomName,
    startedAtMs: START,
    direction: { value: 'inbound', atMs: START },
    recording: { requested: true, bucket },
    ...(answered ? { answeredAtMs: START + 2_000, conversation: [{ id: 'i0', role: 'user', content: 'hello', interrupted: false, timestampMs: START + 3_000 }] } : {}),
    ...(step === 'ended' ? { ended: { source: 'worker' as const, atMs: START + 60_000 }, outcome: { source: 'worker' as const, atMs: START + 60_000, status: 'completed' as const } } : {}),
    ...(step === 'unanswered' ? { ended: { source: 'worker' as const, atMs: START + 30_000 }, outcome: { source: 'worker' as const, atMs: START + 30_000, status: 'no_answer' as const } } : {}),
  };
  return { v: MESSAGE_VERSION, kind: step === 'answered' ? 'progress' : step, callId: call.callId, writer: `job:AJ_${call.callId}`, seq, cumulative: true, sentAtMs: START + seq * 1_000, facts };
}

async function stored(pipeline: Pipeline, callId: string): Promise<StoredCall> {
  const record = await (await pipeline.primary())?.read(callId);
  expect(record, `stored record of ${callId}`).toBeDefined();
  return record!;
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

beforeAll(async () => {
  endpoint = await localstackEndpoint();
  useLocalstackEnv(endpoint);
  bucket = await createBucket(endpoint, 'calldata-rec');
  folder = await mkdtemp(join(tmpdir(), 'calldata-recording-'));
  sqs = sqsFor(endpoint);
  s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
});

afterAll(async () => {
  await drainEmbedded(30_000);
  await closeAllBackends();
  s3?.destroy();
  sqs?.destroy();
  await rm(folder, { recursive: true, force: true });
});

describe('recording function on the queue path, with the egress stand-in and LocalStack', () => {
  it('records an answered call: the egress starts, stops at the end, and the metadata names the real OGG', async () => {
    // Prepare
    const q = await queued();
    const call = newCall('answered');
    q.standIn.roomIds.set(call.roomName, call.callId);
    try {
      // Act: the call starts, is answered, ends (the persist Lambda's batches)
      await q.pipeline.persist([worker(call, 'started')]);
      const startCommands = await q.flow();
      await q.pipeline.persist([worker(call, 'answered')]);
      await q.pipeline.persist([worker(call, 'ended')]);
      const endCommands = await q.flow();
      // Assess: the commands that travelled, and the request LiveKit got
      expect(startCommands.map((b) => decodeRecordingCommand(b)?.action)).toEqual(['start']);
      expect(endCommands.map((b) => decodeRecordingCommand(b)?.action)).toEqual(['finish']);
      const record = await stored(q.pipeline, call.callId);
      const key = recordingKey(record.folder);
      const startRequest = q.standIn.requests.find((r) => r.method === 'StartRoomCompositeEgress');
      expect(startRequest?.body).toMatchObject({ roomName: call.roomName, layout: 'speaker', audioOnly: true });
      const file = (startRequest?.body.fileOutputs as Record<string, unknown>[])[0]!;
      expect(file).toMatchObject({ fileType: 'OGG', filepath: key, s3: { bucket, forcePathStyle: true } });
      // ...the real object at the key is a valid Ogg Opus file, and the metadata carries it
      const ogg = inspectOgg(await readObject(key));
      expect(ogg.opus).toBe(true);
      expect(record.documents.metadata).toMatchObject({
        answered: true,
        status: 'completed',
        recording_filename: key.slice(key.lastIndexOf('/') + 1),
        recording_location: `s3://${bucket}/${key}`,
        recording_status: 'complete',
        recording_size_bytes: q.standIn.ogg.length,
        recording_duration: ogg.durationMs / 1000,
      });
      // The recording function's reports are facts of writers of their own.
      expect(Object.keys(record.state.writers).filter((w) => w.startsWith(`recording:${call.callId}:`)).sort()).toEqual([
        `recording:${call.callId}:finish:EG_standin1`,
        `recording:${call.callId}:start:EG_standin1`,
      ]);
    } finally {
      await q.close();
    }
  });

  it('discards the recording of an unanswered call: the uploaded object leaves its key for the quarantine', async () => {
    // Prepare
    const q = await queued({ uploadDelayMs: 300 });
    const call = newCall('unanswered');
    q.standIn.roomIds.set(call.roomName, call.callId);
    try {
      await q.pipeline.persist([worker(call, 'started')]);
      await q.flow();
      // Act
      await q.pipeline.persist([worker(call, 'unanswered')]);
      await q.flow();
      // Assess: the egress uploaded the file (after it was stopped) and the discard moved it
      const record = await stored(q.pipeline, call.callId);
      const key = recordingKey(record.folder);
      expect(q.standIn.uploads.map((u) => u.key)).toEqual([key]);
      expect(await exists(key)).toBe(false);
      expect(await exists(quarantineKey(key))).toBe(true);
      expect(record.documents.metadata).toMatchObject({ answered: false, status: 'no_answer', recording_status: 'discarded' });
      expect(record.documents.metadata?.recording_filename).toBeUndefined();
      expect(record.documents.transcription).toBeUndefined();
    } finally {
      await q.close();
    }
  });

  it('starts no second egress when SQS delivers the start command twice', async () => {
    const q = await queued();
    const call = newCall('twice');
    try {
      await q.pipeline.persist([worker(call, 'started')]);
      const [body] = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.recordingQueue, WaitTimeSeconds: 2 }))).Messages ?? [];
      await sqs.send(new SendMessageCommand({ QueueUrl: q.recordingQueue, MessageBody: body?.Body ?? '' }));
      await new Promise((resolve) => setTimeout(resolve, 2_100)); // the first copy becomes visible again
      await q.flow();
      expect(q.standIn.requests.filter((r) => r.method === 'StartRoomCompositeEgress')).toHaveLength(1);
      expect(Object.keys((await stored(q.pipeline, call.callId)).state.recording?.egress ?? {})).toEqual(['EG_standin1']);
    } finally {
      await q.close();
    }
  });

  it('starts one egress when start commands run at once (the claim is a conditional write in S3)', async () => {
    // Prepare: three Lambdas got the same start command
    const q = await queued();
    const call = newCall('race');
    const command = { v: MESSAGE_VERSION, type: 'recording' as const, action: 'start' as const, callId: call.callId, roomName: call.roomName, key: `${call.roomName}/t/call.ogg`, egressIds: [], issuedAtMs: Date.now() };
    try {
      // Act
      const results = await Promise.all([q.step.run(command), q.step.run(command), q.step.run(command)]);
      // Assess
      expect(results.filter((r) => r === 'started')).toHaveLength(1);
      expect(results.every((r) => ['started', 'in_flight', 'reported'].includes(r))).toBe(true);
      expect(q.standIn.requests.filter((r) => r.method === 'StartRoomCompositeEgress')).toHaveLength(1);
    } finally {
      await q.close();
    }
  });

  it('retries an egress service that answers 503 and reports the egress once it starts', async () => {
    const q = await queued();
    const call = newCall('busy');
    q.standIn.failStarts(2);
    try {
      await q.pipeline.persist([worker(call, 'started')]);
      await q.flow();
      expect(q.standIn.requests.filter((r) => r.method === 'StartRoomCompositeEgress')).toHaveLength(3);
      const record = await stored(q.pipeline, call.callId);
      expect(mainEgress(record.state)).toMatchObject({ egressId: 'EG_standin1', status: 'starting', bucket });
      expect(record.state.recording?.startError).toBeUndefined();
    } finally {
      await q.close();
    }
  });

  it('reports the start failure when the egress service stays unavailable; metadata and transcript are stored regardless', async () => {
    const q = await queued();
    const call = newCall('noegress');
    q.standIn.failStarts(10);
    try {
      await q.pipeline.persist([worker(call, 'started')]);
      await q.flow();
      await q.pipeline.persist([worker(call, 'answered')]);
      await q.pipeline.persist([worker(call, 'ended')]);
      await q.flow();
      const record = await stored(q.pipeline, call.callId);
      expect(record.documents.metadata).toMatchObject({ answered: true, recording_status: 'failed' });
      expect(record.documents.metadata?.recording_error).toMatch(/503.*no response from servers/);
      expect(record.documents.metadata?.recording_filename).toBeUndefined();
      expect(record.documents.transcription?.conversation).toHaveLength(1);
    } finally {
      await q.close();
    }
  });

  it('starts the recording of a version-1 started snapshot queued before the upgrade', async () => {
    // Prepare: what the v1 worker put on the recording queue
    const q = await queued();
    const call = newCall('v1');
    const key = `${call.roomName}/20261124T061838.120_${call.callId}/call_${call.roomName}_20261124T061838.120_${call.callId}.ogg`;
    const snapshot = buildSnapshot({ callId: call.callId, roomName: call.roomName, kind: 'started', recordingKey: key });
    await sqs.send(new SendMessageCommand({ QueueUrl: q.recordingQueue, MessageBody: JSON.stringify({ ...snapshot, recording: { key, bucket } }) }));
    try {
      // Act
      await q.flow();
      // Assess: started at the key the snapshot named, and reported as a fact
      const file = (q.standIn.requests.find((r) => r.method === 'StartRoomCompositeEgress')?.body.fileOutputs as Record<string, unknown>[])[0];
      expect(file).toMatchObject({ filepath: key });
      expect((await stored(q.pipeline, call.callId)).state.recording?.egress?.EG_standin1).toMatchObject({ key, status: 'starting' });
    } finally {
      await q.close();
    }
  });

  it('runs the recording step in the background on the embedded default, without holding back the worker’s messages', async () => {
    // Prepare: no queue; the in-process pipeline takes LiveKit's settings from its configuration like the worker does
    const standIn = new EgressStandIn({ apiKey: API_KEY, apiSecret: API_SECRET, uploadDelayMs: 100 });
    const url = await standIn.start();
    const pipeline = pipelineFor({
      ...loadConfig({
        CALL_RECORDING: 'true',
        SAVE_METADATA: 'true',
        METADATA_LOCATION: folder,
        TIMEZONE: 'Asia/Kolkata',
        AWS_S3_BUCKET: bucket,
        AWS_S3_ENDPOINT: endpoint,
        AWS_S3_FORCE_PATH_STYLE: 'true',
        AWS_S3_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
        AWS_S3_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
        LIVEKIT_URL: url,
        LIVEKIT_API_KEY: API_KEY,
        LIVEKIT_API_SECRET: API_SECRET,
      }),
      recordingTiming: { ...RECORDING_TIMING, discardPollMs: 100 },
    });
    const call = newCall('embedded');
    try {
      // Act: the worker's sends return once stored; the egress work runs behind them
      const sink = await pipeline.factSink();
      expect(sink.transport).toBe('embedded');
      await sink.send(worker(call, 'started'));
      await sink.send(worker(call, 'answered'));
      await drainEmbedded(20_000);
      await sink.send(worker(call, 'ended'));
      await drainEmbedded(20_000);
      // Assess
      expect(standIn.requests.filter((r) => r.method === 'StartRoomCompositeEgress')).toHaveLength(1);
      const record = await stored(pipeline, call.callId);
      const key = recordingKey(record.folder);
      expect(record.documents.metadata).toMatchObject({ status: 'completed', recording_status: 'complete', recording_filename: key.slice(key.lastIndexOf('/') + 1) });
      expect(await exists(key)).toBe(true);
    } finally {
      await standIn.close();
    }
  });
});
