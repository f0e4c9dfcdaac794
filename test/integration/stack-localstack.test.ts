/**
 * The real synthesized stack, bootstrapped and deployed to LocalStack with `npm run cdklocal`,
 * driven end to end: v2 fact messages (and a v1 snapshot still queued from before the upgrade)
 * sent to the deployed fact queue reach the backends through LocalStack's own event source
 * mapping and the deployed bundle (run by the calldata-local Lambda executor,
 * scripts/localstack-lambda); poison messages reach the deployed dead-letter queue; duplicates
 * collapse; secrets come from Secrets Manager at runtime; the webhook function URL verifies
 * LiveKit signatures and sends what LiveKit says as facts; the persist function sends recording
 * commands to the recording function, which starts and discards egress against the egress
 * stand-in; and the deployed sweeper runs.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DeleteObjectsCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, DeleteSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ReceiveMessageCommand, SendMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { AccessToken } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3Settings } from '../../functions/config/config.ts';
import { encodeMessage, type FactMessage } from '../../functions/contract/facts.ts';
import type { CallState } from '../../functions/contract/record.ts';
import { WORKER_LOST } from '../../functions/contract/vocabulary.ts';
import { recordModel } from '../../functions/domain/model.ts';
import { DISCARD_PREFIX } from '../../functions/domain/recording-plan.ts';
import { chooseFolder, recordingKey } from '../../functions/domain/render.ts';
import type { StorageBackend } from '../../functions/storage/backend.ts';
import { backendFor, closeAllBackends } from '../../functions/storage/select.ts';
import { SqsFactSink } from '../../functions/transport/sqs-sink.ts';
import { EgressStandIn } from '../support/egress-standin.ts';
import { sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer, SERVERS } from '../support/servers.ts';
import { buildMessage, buildSnapshot } from '../support/snapshots.ts';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const STACK = 'CallDataLocalTest';
const LIVEKIT = { apiKey: 'calldata-test-key', apiSecret: 'calldata-test-secret-with-at-least-32-chars' };
const TIMEZONE = 'Asia/Kolkata';
const MAX_RECEIVES = 2;
const VISIBILITY_SECONDS = 6;

interface Outputs {
  SnapshotQueueUrl: string;
  RecordingQueueUrl: string;
  DeadLetterQueueUrl: string;
  BucketName: string;
  WebhookUrl: string;
  PersistFunctionName: string;
  SweeperFunctionName: string;
}

let endpoint: string;
let outdir: string;
let outputs: Outputs;
let sqs: SQSClient;
let s3: S3Client;
let secrets: SecretsManagerClient;
let s3Settings: S3Settings;
let metadata: StorageBackend;
let transcripts: StorageBackend;
let egress: EgressStandIn;
/** What the worker uses: fact messages to the fact queue (nothing else: recording commands are the persist function's). */
let worker: SqsFactSink;
const webhookResponses: { status: number; body: string }[] = [];
const suffix = randomUUID().slice(0, 6);
const secretNames = { livekit: `${STACK}/livekit-${suffix}`, transcripts: `${STACK}/transcripts-${suffix}`, egress: `${STACK}/egress-${suffix}` };

/** `npm run cdklocal -- <args>` with a clean environment: only what the profile needs. */
async function cdklocal(args: string[], timeoutMs = 240_000): Promise<string> {
  try {
    const { stdout, stderr } = await run('bash', [join(ROOT, 'scripts/cdklocal.sh'), ...args], {
      cwd: ROOT,
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), AWS_ENDPOINT_URL: endpoint, AWS_ENDPOINT_URL_S3: endpoint },
    });
    return `${stdout}\n${stderr}`;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`cdklocal ${args[0]} failed: ${e.message}\n${(e.stdout ?? '').slice(-4_000)}\n${(e.stderr ?? '').slice(-8_000)}`);
  }
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 45_000, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}. Lambda logs: ${process.env.CALLDATA_RUN ?? '/var/cache/calldata-tools/run'}/lambda/`);
}

async function send(queueUrl: string, body: string): Promise<void> {
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
}

/** Receives from a dead-letter queue until a message matches (and leaves others alone). */
async function findDeadLetter(match: (m: Message) => boolean, timeoutMs = 45_000): Promise<Message> {
  return eventually(
    'a message in the dead-letter queue',
    async () => {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: outputs.DeadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 1,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      return (received.Messages ?? []).find(match);
    },
    timeoutMs,
    0,
  );
}

async function roomKeys(room: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: outputs.BucketName, Prefix: `${room}/` }));
  return (listed.Contents ?? []).map((o) => o.Key ?? '').sort();
}

/** POSTs to the deployed function URL through LocalStack's edge (the URL's host does not resolve here). */
function postToFunctionUrl(body: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const url = new URL(outputs.WebhookUrl);
  const edge = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: edge.hostname, port: edge.port, method: 'POST', path: url.pathname, headers: { ...headers, host: url.host, 'content-type': 'application/webhook+json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function signedWebhook(event: Record<string, unknown>): Promise<{ body: string; authorization: string }> {
  const body = JSON.stringify(event);
  const token = new AccessToken(LIVEKIT.apiKey, LIVEKIT.apiSecret);
  token.sha256 = createHash('sha256').update(body).digest('base64');
  return { body, authorization: await token.toJwt() };
}

beforeAll(async () => {
  // Prepare: servers, secrets, then bootstrap and deploy the real app.
  endpoint = await requireServer('localstack');
  await requireServer('postgres');
  const health = (await (await fetch(`${endpoint}/_localstack/health`)).json()) as { services: Record<string, string> };
  const missing = ['cloudformation', 'lambda', 'iam', 'sts', 'ssm', 'secretsmanager', 'logs', 'cloudwatch', 's3', 'sqs'].filter((s) => !['available', 'running'].includes(health.services[s] ?? ''));
  if (missing.length > 0) {
    throw new Error(`LocalStack on ${endpoint} runs without ${missing.join(', ')}. Restart it with the project's settings: \`pkill -f localstack.runtime.main; npm run servers -- up\``);
  }

  const clientConfig = { endpoint, region: 'us-east-1', credentials: LOCALSTACK_CREDENTIALS };
  sqs = sqsFor(endpoint);
  s3 = new S3Client({ ...clientConfig, forcePathStyle: true });
  secrets = new SecretsManagerClient(clientConfig);
  const livekitSecret = await secrets.send(new CreateSecretCommand({ Name: secretNames.livekit, SecretString: JSON.stringify(LIVEKIT) }));
  await secrets.send(new CreateSecretCommand({ Name: secretNames.transcripts, SecretString: JSON.stringify({ url: SERVERS.postgres.url }) }));
  // The keys LiveKit egress uploads recordings with (LocalStack accepts any).
  await secrets.send(new CreateSecretCommand({ Name: secretNames.egress, SecretString: JSON.stringify({ accessKeyId: 'test', secretAccessKey: 'test' }) }));

  // LiveKit's egress service cannot run here: the stand-in speaks its Twirp API, uploads a real
  // OGG to the S3 location the recording function asks for, and sends egress_ended webhooks to
  // the deployed webhook function URL.
  egress = new EgressStandIn({
    ...LIVEKIT,
    uploadDelayMs: 300,
    webhook: async ({ body, authorization }) => webhookResponses.push(await postToFunctionUrl(body, { authorization })),
  });
  const livekitUrl = await egress.start();

  outdir = mkdtempSync(join(tmpdir(), 'calldata-cdklocal-'));
  await cdklocal(['bootstrap', 'aws://000000000000/us-east-1', '--app', 'node infra/app.ts', '-o', outdir]);
  const context = {
    stackName: STACK,
    callRecording: 'true',
    livekitUrl,
    livekitSecret: livekitSecret.ARN ?? '',
    egressS3Secret: secretNames.egress,
    s3Endpoint: endpoint,
    metadataLocation: 's3',
    transcriptionLocationSecret: `${secretNames.transcripts}:url`,
    timezone: TIMEZONE,
    maxReceiveCount: String(MAX_RECEIVES),
    persistTimeoutSeconds: '5',
    visibilityTimeoutSeconds: String(VISIBILITY_SECONDS),
    recordingTimeoutSeconds: '20',
    recordingVisibilityTimeoutSeconds: '20',
    maxBatchingWindowSeconds: '0',
  };
  const outputsFile = join(outdir, 'outputs.json');
  const log = await cdklocal([
    'deploy',
    STACK,
    '--app',
    'node infra/app.ts',
    '-o',
    outdir,
    '--require-approval',
    'never',
    '--outputs-file',
    outputsFile,
    ...Object.entries(context).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
  ]);
  if (/Docker not available|state Failed|CREATE_FAILED/.test(log)) {
    throw new Error(`deploy failed; is LocalStack running with LAMBDA_RUNTIME_EXECUTOR=calldata-local (npm run servers -- up)?\n${log.slice(-4_000)}`);
  }
  outputs = (JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Outputs>)[STACK] as Outputs;

  s3Settings = { bucket: outputs.BucketName, endpoint, region: 'us-east-1', forcePathStyle: true, ...LOCALSTACK_CREDENTIALS };
  // Read as the deployed persist function writes: metadata in the bucket, transcripts in PostgreSQL.
  const model = recordModel(TIMEZONE);
  metadata = await backendFor('s3', { s3: s3Settings, documents: ['metadata'], model });
  transcripts = await backendFor(SERVERS.postgres.url, { s3: s3Settings, documents: ['transcription'], model });
  useLocalstackEnv(endpoint);
  worker = new SqsFactSink({ queueUrl: outputs.SnapshotQueueUrl, s3: s3Settings });
}, 420_000);

afterAll(async () => {
  // Leave LocalStack as it was: empty the bucket, destroy the stack, delete the test secrets.
  if (outputs?.BucketName) {
    for (;;) {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: outputs.BucketName }));
      const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key ?? '' }));
      if (keys.length === 0) break;
      await s3.send(new DeleteObjectsCommand({ Bucket: outputs.BucketName, Delete: { Objects: keys } }));
    }
  }
  if (outdir) await cdklocal(['destroy', STACK, '--force', '--app', 'node infra/app.ts', '-o', outdir, '-c', `stackName=${STACK}`]).catch((e: unknown) => console.error(e));
  for (const name of Object.values(secretNames)) await secrets?.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true })).catch(() => undefined);
  await closeAllBackends();
  await egress?.close();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
  sqs?.destroy();
  s3?.destroy();
  secrets?.destroy();
}, 240_000);

function newCallId(): string {
  return `RM_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/** A worker's message of a call happening now (so no sweep ever finds it quiet). */
function message(options: Parameters<typeof buildMessage>[0] & { callId: string }): FactMessage {
  const now = Date.now();
  return buildMessage({ startedAtMs: now - 60_000, sentAtMs: now, ...options });
}

async function metadataOf(callId: string): Promise<Record<string, unknown> | undefined> {
  return (await metadata.read(callId))?.documents.metadata as Record<string, unknown> | undefined;
}

async function transcriptOf(callId: string) {
  return (await transcripts.read(callId))?.documents.transcription;
}

/** The recording key the persist function chooses: in the call's folder, named as the spec says. */
function keyFor(message: FactMessage): string {
  const state: CallState = { callId: message.callId, roomName: message.facts.roomName, startedAtMs: message.facts.startedAtMs, writers: {}, lastFactAtMs: 0 };
  const folder = chooseFolder(state, TIMEZONE);
  if (!folder) throw new Error('the message names no room or start');
  return recordingKey(folder);
}

async function objectExists(key: string): Promise<boolean> {
  return s3
    .send(new HeadObjectCommand({ Bucket: outputs.BucketName, Key: key }))
    .then(() => true)
    .catch((e: { name?: string }) => (e.name === 'NotFound' ? false : Promise.reject(e)));
}

/** Invokes a deployed function synchronously through LocalStack's Lambda API. */
async function invoke(functionName: string, event: unknown): Promise<{ functionError?: string; payload: Record<string, unknown> }> {
  const response = await fetch(`${endpoint}/2015-03-31/functions/${functionName}/invocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
  return { functionError: response.headers.get('x-amz-function-error') ?? undefined, payload: JSON.parse(await response.text()) as Record<string, unknown> };
}

describe('the deployed stack on LocalStack', () => {
  it('persists a call sent as v2 fact messages to the deployed queue: metadata in S3, the transcript in PostgreSQL through a Secrets Manager URL', async () => {
    // Prepare
    const callId = newCallId();
    const room = `deployed-${callId}`;
    const started = message({ callId, roomName: room, kind: 'started', seq: 1, turns: 0 });
    const ended = message({ callId, roomName: room, kind: 'ended', seq: 2, turns: 3, startedAtMs: started.facts.startedAtMs });

    // Act
    await send(outputs.SnapshotQueueUrl, encodeMessage(started));
    await send(outputs.SnapshotQueueUrl, encodeMessage(ended));

    // Assess
    const storedMetadata = await eventually('final metadata in S3', async () => {
      const doc = await metadataOf(callId);
      return doc?.status === 'completed' ? doc : undefined;
    });
    expect(storedMetadata).toMatchObject({ call_id: callId, room_name: room, status: 'completed', answered: true, timezone: TIMEZONE, end_reason_detail: 'caller hung up' });
    expect(String(storedMetadata.end_time)).toMatch(/\+05:30$/);
    const storedTranscript = await eventually('the transcript in PostgreSQL', async () => {
      const doc = await transcriptOf(callId);
      return doc?.conversation.length === 6 ? doc : undefined;
    });
    expect(storedTranscript.conversation.map((i) => i.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    expect(await roomKeys(room)).toEqual([expect.stringMatching(new RegExp(`^${room}/[^/]+_${callId}/call_metadata_`))]);
  });

  it('collapses duplicated and reordered deliveries into one record: the merge of all facts', async () => {
    // Prepare
    const callId = newCallId();
    const room = `dup-${callId}`;
    const progress = message({ callId, roomName: room, kind: 'progress', seq: 3, turns: 1 });
    const ended = message({ callId, roomName: room, kind: 'ended', seq: 8, turns: 2, startedAtMs: progress.facts.startedAtMs });

    // Act
    for (const body of [ended, ended, progress, ended, progress].map((m) => encodeMessage(m))) await send(outputs.SnapshotQueueUrl, body);

    // Assess
    await eventually('the final record stored', async () => ((await metadataOf(callId))?.status === 'completed' ? true : undefined));
    await eventually('the transcript stored', async () => ((await transcriptOf(callId))?.conversation.length === 4 ? true : undefined));
    // Give the later deliveries time to be processed, then check nothing regressed.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await metadataOf(callId)).toMatchObject({ status: 'completed' });
    expect((await transcriptOf(callId))?.conversation).toHaveLength(4);
    expect((await metadata.read(callId))?.state.writers).toEqual({ 'job:AJ_test': 8 });
    expect(await roomKeys(room)).toHaveLength(1);
  });

  it('upgrades a v1 snapshot still in the deployed queue and stores it', async () => {
    // Prepare: what a worker of the previous version queued just before the upgrade
    const callId = newCallId();
    const snapshot = buildSnapshot({ callId, roomName: `legacy-${callId}`, kind: 'ended', turns: 2 });

    // Act
    await send(outputs.SnapshotQueueUrl, JSON.stringify(snapshot));

    // Assess
    const stored = await eventually('the upgraded snapshot stored', async () => metadataOf(callId));
    expect(stored).toMatchObject({ call_id: callId, room_name: `legacy-${callId}`, answered: true, status: 'completed' });
    await eventually('its transcript stored', async () => ((await transcriptOf(callId))?.conversation.length === 4 ? true : undefined));
    expect((await metadata.read(callId))?.state.writers).toEqual({ 'v1-worker': snapshot.seq });
  });

  it('parks a malformed message in the deployed dead-letter queue at once, without failing its batch neighbours', async () => {
    // Prepare
    const marker = `not a fact message ${randomUUID()}`;
    const neighbour = message({ callId: newCallId(), kind: 'ended', roomName: `neighbour-${randomUUID().slice(0, 8)}` });

    // Act
    const sentAt = Date.now();
    await send(outputs.SnapshotQueueUrl, marker);
    await send(outputs.SnapshotQueueUrl, encodeMessage(neighbour));

    // Assess
    const parked = await findDeadLetter((m) => m.Body === marker);
    expect(parked.MessageAttributes?.reason?.StringValue).toMatch(/not JSON/);
    // Parked by the function itself, well before the redrive policy could have moved it.
    expect(Date.now() - sentAt).toBeLessThan(MAX_RECEIVES * VISIBILITY_SECONDS * 1000);
    await eventually('the neighbour persisted', async () => ((await metadataOf(neighbour.callId)) ? true : undefined));
  });

  it('moves a message that keeps failing to the deployed dead-letter queue after the configured receives', async () => {
    // Prepare: a message whose conversation is "offloaded" to a bucket that does not exist,
    // a transient-looking error the function returns to the queue every time.
    const base = message({ callId: newCallId(), kind: 'ended', roomName: `redrive-${randomUUID().slice(0, 8)}` });
    const { conversation: _c, ...facts } = base.facts;
    const failing: FactMessage = { ...base, facts, conversationRef: { bucket: 'calldata-no-such-bucket', key: 'x.json', bytes: 2, sha256: '0'.repeat(64), items: 0 } };
    const body = encodeMessage(failing);

    // Act
    const sentAt = Date.now();
    await send(outputs.SnapshotQueueUrl, body);

    // Assess
    const redriven = await findDeadLetter((m) => m.Body === body, (MAX_RECEIVES + 3) * VISIBILITY_SECONDS * 1000 + 30_000);
    expect(redriven.MessageAttributes?.reason).toBeUndefined(); // moved by SQS, not parked by the function
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual((MAX_RECEIVES - 1) * VISIBILITY_SECONDS * 1000);
    expect(await metadata.read(failing.callId)).toBeUndefined();
  });

  it('rejects webhooks without a valid LiveKit signature at the deployed function URL', async () => {
    // Prepare
    const body = JSON.stringify({ event: 'room_finished', id: 'EV_forged', room: { sid: 'RM_forged', name: 'forged' } });
    const forged = await new AccessToken(LIVEKIT.apiKey, 'a-different-secret-of-at-least-32-chars').toJwt();

    // Act
    const unsigned = await postToFunctionUrl(body, {});
    const badlySigned = await postToFunctionUrl(body, { authorization: forged });

    // Assess
    expect(unsigned.status).toBe(401);
    expect(badlySigned.status).toBe(401);
  });

  it('closes a call whose worker died when the signed room_finished webhook arrives, keeping its transcript', async () => {
    // Prepare: the worker got as far as a progress message, then died.
    const callId = newCallId();
    const room = `died-${callId}`;
    const progress = message({ callId, roomName: room, kind: 'progress', seq: 2, turns: 2 });
    await send(outputs.SnapshotQueueUrl, encodeMessage(progress));
    await eventually('the open record stored', async () => ((await metadataOf(callId))?.status === 'in_progress' ? true : undefined));
    const webhook = await signedWebhook({ event: 'room_finished', id: `EV_${callId}`, createdAt: String(Math.ceil(Date.now() / 1000) + 1), room: { sid: callId, name: room } });

    // Act
    const response = await postToFunctionUrl(webhook.body, { authorization: webhook.authorization });

    // Assess: the webhook's facts travel through the fact queue like every other party's
    expect(response.status, response.body).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ event: 'room_finished', result: 'recorded', callId });
    const stored = await eventually('the call closed', async () => {
      const doc = await metadataOf(callId);
      return doc?.status !== 'in_progress' ? doc : undefined;
    });
    expect(stored).toMatchObject({ call_id: callId, answered: true, status: 'completed', end_reason: 'worker_lost', end_reason_detail: WORKER_LOST.webhook });
    expect(stored.end_time).not.toBeNull();
    expect((await transcriptOf(callId))?.conversation).toHaveLength(4);
  });

  it('records an answered call: the persist function asks the deployed recording function for a speaker-layout OGG egress and the result lands in the metadata', async () => {
    // Prepare
    const callId = newCallId();
    const room = `rec-${callId}`;
    egress.roomIds.set(room, callId);
    const started = message({ callId, roomName: room, kind: 'started', seq: 1, turns: 0, recordingBucket: outputs.BucketName });
    const ended = message({ callId, roomName: room, kind: 'ended', seq: 2, turns: 2, recordingBucket: outputs.BucketName, startedAtMs: started.facts.startedAtMs });
    const key = keyFor(started);

    // Act
    await worker.send(started);
    await eventually('the egress started', async () => (egress.requests.some((r) => r.method === 'StartRoomCompositeEgress' && r.body.roomName === room) ? true : undefined), 60_000);
    await eventually('the egress reported in the record', async () => ((await metadataOf(callId))?.recording_status ? true : undefined), 60_000);
    await worker.send(ended);

    // Assess
    const start = egress.requests.find((r) => r.method === 'StartRoomCompositeEgress' && r.body.roomName === room);
    expect(start?.body).toMatchObject({ roomName: room, layout: 'speaker', audioOnly: true });
    const output = ((start?.body.fileOutputs as Record<string, unknown>[] | undefined)?.[0] ?? start?.body.file) as Record<string, unknown>;
    expect(output).toMatchObject({ fileType: 'OGG', filepath: key, s3: expect.objectContaining({ bucket: outputs.BucketName, endpoint, forcePathStyle: true }) });
    const stored = await eventually(
      'the recording outcome merged into the metadata',
      async () => {
        const doc = await metadataOf(callId);
        return doc?.recording_status === 'complete' ? doc : undefined;
      },
      60_000,
    );
    expect(stored).toMatchObject({ call_id: callId, answered: true, status: 'completed', recording_filename: key.slice(key.lastIndexOf('/') + 1) });
    const object = await s3.send(new HeadObjectCommand({ Bucket: outputs.BucketName, Key: key }));
    expect(object.ContentLength).toBe(egress.ogg.length);
    // The stand-in also told the deployed webhook function that the egress ended; it accepted it.
    await egress.settled();
    expect(webhookResponses.filter((r) => r.body.includes('"egress_ended"')).map((r) => r.status)).toContain(200);
    expect(await roomKeys(room)).toEqual(expect.arrayContaining([key, expect.stringMatching(/call_metadata_/)]));
  });

  it('discards an unanswered call\'s recording: the egress is stopped and the uploaded file moved out of the call\'s folder', async () => {
    // Prepare: as the worker sends it, not answered yet, no conversation
    const callId = newCallId();
    const room = `unans-${callId}`;
    egress.roomIds.set(room, callId);
    const started = message({ callId, roomName: room, kind: 'started', seq: 1, turns: 0, recordingBucket: outputs.BucketName, facts: { answeredAtMs: undefined, conversation: undefined } });
    const unanswered = message({ callId, roomName: room, kind: 'unanswered', seq: 2, recordingBucket: outputs.BucketName, startedAtMs: started.facts.startedAtMs });
    const key = keyFor(started);

    // Act
    await worker.send(started);
    await eventually('the egress started', async () => (egress.requests.some((r) => r.method === 'StartRoomCompositeEgress' && r.body.roomName === room) ? true : undefined), 60_000);
    await eventually('the egress reported in the record', async () => ((await metadataOf(callId))?.recording_status ? true : undefined), 60_000);
    await worker.send(unanswered);

    // Assess
    await eventually('the egress stopped and its upload done', async () => (egress.uploads.some((u) => u.key === key) ? true : undefined), 60_000);
    await eventually('the recording moved to the discard prefix', async () => ((await objectExists(`${DISCARD_PREFIX}/${key}`)) && !(await objectExists(key)) ? true : undefined), 60_000);
    const stored = await eventually('the unanswered metadata', async () => {
      const doc = await metadataOf(callId);
      return doc?.recording_status === 'discarded' ? doc : undefined;
    });
    expect(stored).toMatchObject({ call_id: callId, answered: false, status: 'no_answer' });
    expect(stored).not.toHaveProperty('recording_filename');
    expect(await roomKeys(room)).not.toContain(key);
    expect(await transcriptOf(callId)).toBeUndefined();
  });

  it('runs the deployed sweeper: it reads the open calls of the primary location and closes none that is not quiet', async () => {
    // Prepare: an open call that is still talking
    const callId = newCallId();
    const progress = message({ callId, roomName: `sweep-${callId}`, kind: 'progress', seq: 2, turns: 1 });
    await send(outputs.SnapshotQueueUrl, encodeMessage(progress));
    await eventually('the open record stored', async () => ((await metadataOf(callId))?.status === 'in_progress' ? true : undefined));

    // Act
    const result = await invoke(outputs.SweeperFunctionName, { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} });

    // Assess
    expect(result.functionError, JSON.stringify(result.payload)).toBeUndefined();
    expect(result.payload).toMatchObject({ open: 0, closed: [], failed: [], purged: 0 });
    expect(result.payload).not.toHaveProperty('purgeError');
    expect(await metadataOf(callId)).toMatchObject({ status: 'in_progress' });
  });
});
