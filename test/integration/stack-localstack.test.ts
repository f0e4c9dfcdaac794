/**
 * The real synthesized stack, bootstrapped and deployed to LocalStack with `npm run cdklocal`,
 * driven end to end: snapshots sent to the deployed queue reach the backends through
 * LocalStack's own event source mapping and the deployed bundle (run by the calldata-local
 * Lambda executor, scripts/localstack-lambda), poison messages reach the deployed dead-letter
 * queue, duplicates collapse, secrets come from Secrets Manager at runtime, the webhook
 * function URL verifies LiveKit signatures, and the recording path starts and discards egress
 * against the egress stand-in.
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
import { loadConfig, type S3Settings } from '../../functions/config/config.ts';
import { encodeSnapshot, nextSequence, type Snapshot } from '../../functions/contract/snapshot.ts';
import type { StorageBackend } from '../../functions/storage/backend.ts';
import { backendFor, closeAllBackends } from '../../functions/storage/select.ts';
import { SqsSnapshotSink } from '../../functions/transport/sqs-sink.ts';
import { EgressStandIn } from '../support/egress-standin.ts';
import { sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer, SERVERS } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';

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
/** What the worker uses: snapshots to the snapshot queue, and to the recording queue when recording. */
let worker: SqsSnapshotSink;
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
  metadata = await backendFor('s3', { s3: s3Settings });
  transcripts = await backendFor(SERVERS.postgres.url, { s3: s3Settings });
  useLocalstackEnv(endpoint);
  worker = new SqsSnapshotSink(
    loadConfig({
      CALL_RECORDING: 'true',
      CALLDATA_QUEUE_URL: outputs.SnapshotQueueUrl,
      CALLDATA_RECORDING_QUEUE_URL: outputs.RecordingQueueUrl,
      AWS_S3_BUCKET: outputs.BucketName,
    }),
  );
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

describe('the deployed stack on LocalStack', () => {
  it('persists a call sent to the deployed queue: metadata in S3, the transcript in PostgreSQL through a Secrets Manager URL', async () => {
    // Prepare
    const callId = `RM_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const room = `deployed-${callId}`;
    const started = buildSnapshot({ callId, roomName: room, kind: 'started', seq: nextSequence(undefined), turns: 0 });
    const ended = buildSnapshot({ callId, roomName: room, kind: 'ended', seq: started.seq + 10, turns: 3 });

    // Act
    await send(outputs.SnapshotQueueUrl, encodeSnapshot(started));
    await send(outputs.SnapshotQueueUrl, encodeSnapshot(ended));

    // Assess
    const storedMetadata = await eventually('final metadata in S3', async () => {
      const stored = await metadata.read('metadata', callId);
      return stored?.seq === ended.seq ? stored : undefined;
    });
    expect(storedMetadata.document).toMatchObject({ call_id: callId, room_name: room, status: 'completed', answered: true, timezone: TIMEZONE });
    expect(String((storedMetadata.document as { end_time: string }).end_time)).toMatch(/\+05:30$/);
    const storedTranscript = await eventually('the transcript in PostgreSQL', async () => {
      const stored = await transcripts.read('transcription', callId);
      return stored?.seq === ended.seq ? stored : undefined;
    });
    expect((storedTranscript.document as { conversation: unknown[] }).conversation).toHaveLength(6);
    expect(await roomKeys(room)).toEqual([expect.stringMatching(new RegExp(`^${room}/[^/]+/call_metadata_`))]);
  });

  it('collapses duplicated and reordered deliveries into one record holding the newest snapshot', async () => {
    // Prepare
    const callId = `RM_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const room = `dup-${callId}`;
    const seq = nextSequence(undefined);
    const progress = buildSnapshot({ callId, roomName: room, kind: 'progress', seq, turns: 1 });
    const ended = buildSnapshot({ callId, roomName: room, kind: 'ended', seq: seq + 5, turns: 2 });

    // Act
    for (const body of [ended, ended, progress, ended, progress].map((s) => encodeSnapshot(s))) await send(outputs.SnapshotQueueUrl, body);

    // Assess
    await eventually('the final snapshot stored', async () => ((await metadata.read('metadata', callId))?.seq === ended.seq ? true : undefined));
    await eventually('the transcript stored', async () => ((await transcripts.read('transcription', callId))?.seq === ended.seq ? true : undefined));
    // Give the later (older) deliveries time to be processed, then check nothing regressed.
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await metadata.read('metadata', callId))?.seq).toBe(ended.seq);
    expect((await transcripts.read('transcription', callId))?.document).toMatchObject({ sequence: ended.seq });
    expect(await roomKeys(room)).toHaveLength(1);
  });

  it('parks a malformed message in the deployed dead-letter queue at once, without failing its batch neighbours', async () => {
    // Prepare
    const marker = `not a snapshot ${randomUUID()}`;
    const neighbour = buildSnapshot({ kind: 'ended', roomName: `neighbour-${randomUUID().slice(0, 8)}` });

    // Act
    const sentAt = Date.now();
    await send(outputs.SnapshotQueueUrl, marker);
    await send(outputs.SnapshotQueueUrl, encodeSnapshot(neighbour));

    // Assess
    const parked = await findDeadLetter((m) => m.Body === marker);
    expect(parked.MessageAttributes?.reason?.StringValue).toMatch(/not JSON/);
    // Parked by the function itself, well before the redrive policy could have moved it.
    expect(Date.now() - sentAt).toBeLessThan(MAX_RECEIVES * VISIBILITY_SECONDS * 1000);
    await eventually('the neighbour persisted', async () => ((await metadata.read('metadata', neighbour.callId)) ? true : undefined));
  });

  it('moves a message that keeps failing to the deployed dead-letter queue after the configured receives', async () => {
    // Prepare: a snapshot whose conversation is "offloaded" to a bucket that does not exist,
    // a transient-looking error the function returns to the queue every time.
    const base = buildSnapshot({ kind: 'ended', roomName: `redrive-${randomUUID().slice(0, 8)}` });
    const { conversation: _c, ...rest } = base;
    const failing: Snapshot = { ...rest, conversationRef: { bucket: 'calldata-no-such-bucket', key: 'x.json', bytes: 2, sha256: '0'.repeat(64), items: 0 } };
    const body = encodeSnapshot(failing);

    // Act
    const sentAt = Date.now();
    await send(outputs.SnapshotQueueUrl, body);

    // Assess
    const redriven = await findDeadLetter((m) => m.Body === body, (MAX_RECEIVES + 3) * VISIBILITY_SECONDS * 1000 + 30_000);
    expect(redriven.MessageAttributes?.reason).toBeUndefined(); // moved by SQS, not parked by the function
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual((MAX_RECEIVES - 1) * VISIBILITY_SECONDS * 1000);
    expect(await metadata.read('metadata', failing.callId)).toBeUndefined();
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

  it('finalizes a call whose worker died when the signed room_finished webhook arrives', async () => {
    // Prepare: the worker got as far as a progress snapshot, then died.
    const callId = `RM_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const room = `died-${callId}`;
    const progress = buildSnapshot({ callId, roomName: room, kind: 'progress', turns: 2 });
    await send(outputs.SnapshotQueueUrl, encodeSnapshot(progress));
    await eventually('the open record stored', async () => ((await metadata.read('metadata', callId)) ? true : undefined));
    const webhook = await signedWebhook({ event: 'room_finished', id: `EV_${callId}`, createdAt: String(Math.ceil(Date.now() / 1000) + 1), room: { sid: callId, name: room } });

    // Act
    const response = await postToFunctionUrl(webhook.body, { authorization: webhook.authorization });

    // Assess
    expect(response.status, response.body).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ event: 'room_finished', result: 'finalized' });
    const stored = await metadata.read('metadata', callId);
    expect(stored?.document).toMatchObject({ call_id: callId, answered: true, status: 'completed' });
    expect((stored?.document as { end_time: unknown }).end_time).not.toBeNull();
    expect((await transcripts.read('transcription', callId))?.document).toMatchObject({ conversation: expect.any(Array) });
  });

  it('records an answered call: the deployed recording function starts a speaker-layout OGG egress and the result lands in the metadata', async () => {
    // Prepare
    const callId = `RM_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const room = `rec-${callId}`;
    const key = `${room}/20261124T004838.120_${callId.slice(-8)}/call_${room}_20261124T004838.120_${callId.slice(-8)}.ogg`;
    const recording = { key, bucket: outputs.BucketName };
    const seq = nextSequence(undefined);
    const started: Snapshot = { ...buildSnapshot({ callId, roomName: room, kind: 'started', seq, turns: 0 }), recording };
    const ended: Snapshot = { ...buildSnapshot({ callId, roomName: room, kind: 'ended', seq: seq + 10, turns: 2 }), recording };

    // Act
    await worker.send(started);
    await eventually('the egress started', async () => (egress.requests.some((r) => r.method === 'StartRoomCompositeEgress' && r.body.roomName === room) ? true : undefined));
    await worker.send(ended);

    // Assess
    const start = egress.requests.find((r) => r.method === 'StartRoomCompositeEgress' && r.body.roomName === room);
    expect(start?.body).toMatchObject({ roomName: room, layout: 'speaker', audioOnly: true });
    const output = ((start?.body.fileOutputs as Record<string, unknown>[] | undefined)?.[0] ?? start?.body.file) as Record<string, unknown>;
    expect(output).toMatchObject({ fileType: 'OGG', filepath: key, s3: expect.objectContaining({ bucket: outputs.BucketName, endpoint, forcePathStyle: true }) });
    const stored = await eventually(
      'the recording outcome merged into the metadata',
      async () => {
        const doc = (await metadata.read('metadata', callId))?.document as Record<string, unknown> | undefined;
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

  it('discards an unanswered call\'s recording: the egress is stopped and the uploaded object deleted', async () => {
    // Prepare
    const callId = `RM_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const room = `unans-${callId}`;
    const key = `${room}/20261124T004838.120_${callId.slice(-8)}/call_${room}_20261124T004838.120_${callId.slice(-8)}.ogg`;
    const recording = { key, bucket: outputs.BucketName };
    const seq = nextSequence(undefined);
    // As the worker sends it: not answered yet, no conversation.
    const base = buildSnapshot({ callId, roomName: room, kind: 'started', seq, turns: 0 });
    const started: Snapshot = { ...base, call: { ...base.call, answered: false, answeredAtMs: undefined }, conversation: undefined, recording };
    const unanswered: Snapshot = { ...buildSnapshot({ callId, roomName: room, kind: 'unanswered', seq: seq + 10 }), recording };

    // Act
    await worker.send(started);
    await eventually('the egress started', async () => (egress.requests.some((r) => r.method === 'StartRoomCompositeEgress' && r.body.roomName === room) ? true : undefined));
    await worker.send(unanswered);

    // Assess
    await eventually('the egress stopped and its upload done', async () => (egress.uploads.some((u) => u.key === key) ? true : undefined));
    await eventually(
      'the uploaded recording deleted',
      async () => {
        const exists = await s3
          .send(new HeadObjectCommand({ Bucket: outputs.BucketName, Key: key }))
          .then(() => true)
          .catch((e: { name?: string }) => (e.name === 'NotFound' ? false : Promise.reject(e)));
        return exists ? undefined : true;
      },
      60_000,
    );
    const stored = await eventually('the unanswered metadata', async () => (await metadata.read('metadata', callId))?.document as Record<string, unknown> | undefined);
    expect(stored).toMatchObject({ call_id: callId, answered: false, status: 'no_answer' });
    expect(stored).not.toHaveProperty('recording_filename');
    expect(await roomKeys(room)).not.toContain(key);
    expect(await transcripts.read('transcription', callId)).toBeUndefined();
  });
});
