/**
 * The persist function on the real queue path: snapshots sent by the worker's SQS sender to a
 * LocalStack queue, delivered in batches to the handler, stored on a real backend.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, resetConfigForTests, type Config } from '../../functions/config/config.ts';
import { encodeSnapshot } from '../../functions/contract/snapshot.ts';
import { handler } from '../../functions/persist/handler.ts';
import { LocalFolderBackend } from '../../functions/storage/local.ts';
import { S3Backend } from '../../functions/storage/s3.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { SqsSnapshotSink } from '../../functions/transport/sqs-sink.ts';
import { createBucket, createQueuePair, localstackEndpoint, pipelineEnv, replacePipelineEnv, s3SettingsFor, sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { pollOnce } from '../support/queue-poller.ts';
import { buildSnapshot, longConversation } from '../support/snapshots.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { SERVERS } from '../support/servers.ts';

let endpoint: string;
let sqs: SQSClient;
let queueUrl: string;
let dlqUrl: string;
let bucket: string;
let folder: string;

function configure(extra: Record<string, string>): Config {
  replacePipelineEnv(pipelineEnv({ folder, bucket, endpoint, timezone: 'America/New_York', queueUrl }, { CALLDATA_DEAD_LETTER_QUEUE_URL: dlqUrl, ...extra }));
  resetConfigForTests();
  return loadConfig();
}

async function dlqBodies(): Promise<{ body: string; reason: string }[]> {
  const found: { body: string; reason: string }[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    for (const m of r.Messages ?? []) found.push({ body: m.Body ?? '', reason: m.MessageAttributes?.reason?.StringValue ?? '' });
  }
  return found;
}

beforeAll(async () => {
  endpoint = await localstackEndpoint();
  useLocalstackEnv(endpoint);
  sqs = sqsFor(endpoint);
  bucket = await createBucket(endpoint);
  folder = await mkdtemp(join(tmpdir(), 'calldata-persist-'));
});
afterAll(async () => {
  await closeAllBackends();
  await rm(folder, { recursive: true, force: true });
});

describe('persist function on the SQS path', () => {
  beforeAll(async () => {
    ({ queueUrl, dlqUrl } = await createQueuePair(endpoint));
  });

  it('stores metadata and transcription of a call sent as snapshots through the queue', async () => {
    // Prepare
    const config = configure({});
    const sink = new SqsSnapshotSink(config);
    const callId = `sqs-call-${Date.now()}`;
    const snapshots = [
      buildSnapshot({ callId, seq: 1, kind: 'started', turns: 0 }),
      buildSnapshot({ callId, seq: 2, turns: 1 }),
      buildSnapshot({ callId, seq: 3, kind: 'ended', turns: 2 }),
    ];
    // Act
    for (const s of snapshots) await sink.send(s);
    await pollOnce(sqs, queueUrl, handler);
    // Assess
    const meta = await new LocalFolderBackend(config.metadataLocation).read('metadata', callId);
    const transcript = await new LocalFolderBackend(config.transcriptionLocation).read('transcription', callId);
    expect(meta?.seq).toBe(3);
    expect(meta?.document).toMatchObject({ status: 'completed', answered: true, timezone: 'America/New_York' });
    expect((transcript?.document as { conversation: unknown[] }).conversation).toHaveLength(4);
  });

  it('collapses duplicated and reordered deliveries into one record with the newest state', async () => {
    // Prepare
    const config = configure({});
    const callId = `dup-call-${Date.now()}`;
    const bodies = [5, 3, 5, 4, 1, 5, 2].map((seq) => encodeSnapshot(buildSnapshot({ callId, seq, turns: seq, kind: seq === 5 ? 'ended' : 'progress' })));
    // Act
    for (const MessageBody of bodies) await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody }));
    const result = await pollOnce(sqs, queueUrl, handler);
    // Assess
    expect(result.failed).toBe(0);
    const transcript = await new LocalFolderBackend(config.transcriptionLocation).read('transcription', callId);
    expect(transcript?.seq).toBe(5);
    expect((transcript?.document as { conversation: unknown[] }).conversation).toHaveLength(10);
  });

  it('parks malformed, oversize and wrong-version messages in the dead-letter queue at once without failing their neighbours', async () => {
    // Prepare
    configure({});
    const good = buildSnapshot({ kind: 'ended' });
    const poison = [
      'not json at all',
      '{"v":1,"kind":"ended"}',
      JSON.stringify({ ...JSON.parse(encodeSnapshot(buildSnapshot({}))), v: 99 }),
      JSON.stringify({ ...JSON.parse(encodeSnapshot(buildSnapshot({}))), callId: '../../etc/passwd' }),
      JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 10) }).slice(0, 255 * 1024),
    ];
    // Act
    for (const MessageBody of [...poison, encodeSnapshot(good)]) await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody }));
    const result = await pollOnce(sqs, queueUrl, handler);
    // Assess: nothing retried, poison parked with its reason, the good one stored
    expect(result.failed).toBe(0);
    const parked = await dlqBodies();
    expect(parked.map((p) => p.body).sort()).toEqual([...poison].sort());
    expect(parked.find((p) => p.body.includes('"v":99'))?.reason).toMatch(/unsupported snapshot version 99/);
    expect(parked.find((p) => p.body === 'not json at all')?.reason).toMatch(/not JSON/);
    const meta = await new LocalFolderBackend(process.env.METADATA_LOCATION ?? '').read('metadata', good.callId);
    expect(meta?.seq).toBe(good.seq);
  });

  it('carries a 4-hour transcript over 2 MB by reference through S3 and stores it whole', async () => {
    // Prepare
    const config = configure({});
    const sink = new SqsSnapshotSink(config);
    const snapshot = buildSnapshot({ kind: 'ended', conversation: longConversation(4 * 3600_000, 2.2 * 1024 * 1024) });
    // Act
    const receipt = await sink.send(snapshot);
    await pollOnce(sqs, queueUrl, handler);
    // Assess: the message was small, the stored transcript is complete
    expect(receipt.offloaded).toBe(true);
    expect(receipt.bytes).toBeLessThan(config.offloadThresholdBytes);
    const transcript = await new LocalFolderBackend(config.transcriptionLocation).read('transcription', snapshot.callId);
    expect((transcript?.document as { conversation: unknown[] }).conversation).toHaveLength(snapshot.conversation?.length ?? -1);
    expect(Buffer.byteLength(JSON.stringify(transcript?.document))).toBeGreaterThan(2 * 1024 * 1024);
  });

  it('returns only the records whose backend is down to the queue and stores them after it recovers', async () => {
    // Prepare: metadata goes to S3 through a proxy we can cut; transcripts to a local folder
    const proxy = new TcpProxy(SERVERS.localstack.port);
    const port = await proxy.start();
    const config = configure({ METADATA_LOCATION: 's3', AWS_S3_ENDPOINT: `http://127.0.0.1:${port}` });
    const snapshot = buildSnapshot({ kind: 'ended', turns: 2 });
    await proxy.down();
    // Act: deliver while the backend is down
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: encodeSnapshot(snapshot) }));
    const whileDown = await pollOnce(sqs, queueUrl, handler);
    // Assess: the record failed and stays on the queue
    expect(whileDown.failed).toBe(1);
    // Act: the backend recovers; the queue redelivers after the visibility timeout
    await proxy.up();
    const afterRecovery = await pollOnce(sqs, queueUrl, handler, { emptyRounds: 4 });
    await proxy.down();
    // Assess: stored exactly once, nothing lost
    expect(afterRecovery.delivered).toBe(1);
    const stored = await new S3Backend(s3SettingsFor(endpoint, bucket)).read('metadata', snapshot.callId);
    expect(stored?.seq).toBe(snapshot.seq);
    expect(config.metadataLocation).toBe('s3');
  });
});
