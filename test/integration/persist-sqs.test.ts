/**
 * The persist Lambda on the real queue path: fact messages sent by the SQS fact sink (or raw
 * bodies, as older producers and attackers send them) to a LocalStack queue, delivered in
 * batches to the handler as Lambda's event source mapping does, merged into real backends
 * (local folders, LocalStack S3), recording commands sent on to a real recording queue.
 */
import { pollOnce, type Handler } from '../support/queue-poller.ts';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getConfig, resetConfigForTests, type Config } from '../../functions/config/config.ts';
import { decodeRecordingCommand, encodeMessage, MAX_TURNS_PER_MESSAGE, MAX_WIRE_BYTES, withItemIds, type FactMessage, type RecordingCommand } from '../../functions/contract/facts.ts';
import type { RenderedDocuments } from '../../functions/contract/record.ts';
import { recordModel } from '../../functions/domain/model.ts';
import { handler } from '../../functions/persist/handler.ts';
import { S3Backend } from '../../functions/storage/s3.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { OFFLOAD_THRESHOLD_BYTES, SqsFactSink } from '../../functions/transport/sqs-sink.ts';
import { pipelineFor } from '../../functions/wiring.ts';
import { createBucket, createQueuePair, localstackEndpoint, pipelineEnv, replacePipelineEnv, s3SettingsFor, sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { SERVERS } from '../support/servers.ts';
import { buildMessage, buildSnapshot, longConversation } from '../support/snapshots.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

const TZ = 'America/New_York';

let endpoint: string;
let sqs: SQSClient;
let queueUrl: string;
let dlqUrl: string;
let bucket: string;
let folder: string;



/** The Lambda's environment for this test (as the stack gives it), and the configuration the handler will read. */
function configure(extra: Record<string, string> = {}): Config {
  replacePipelineEnv(pipelineEnv({ folder, bucket, endpoint, timezone: TZ, queueUrl }, { CALLDATA_DEAD_LETTER_QUEUE_URL: dlqUrl, ...extra }));
  resetConfigForTests();
  return getConfig();
}

/** What every location of the configuration stored for a call, documents merged. */
async function documentsOf(config: Config, callId: string): Promise<RenderedDocuments & { writers?: Record<string, number> }> {
  const found: RenderedDocuments & { writers?: Record<string, number> } = {};
  for (const { backend } of await pipelineFor(config).targets()) {
    const stored = await backend.read(callId);
    if (!stored) continue;
    Object.assign(found, stored.documents);
    found.writers = stored.state.writers;
  }
  return found;
}

function callId(label: string): string {
  return `RM_${label}${randomUUID().replaceAll('-', '').slice(0, 10)}`;
}

async function sendRaw(body: string): Promise<void> {
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
}

async function dlqBodies(): Promise<{ body: string; reason: string }[]> {
  const found: { body: string; reason: string }[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    for (const m of r.Messages ?? []) found.push({ body: m.Body ?? '', reason: m.MessageAttributes?.reason?.StringValue ?? '' });
  }
  return found;
}

async function commandsOn(recordingQueueUrl: string): Promise<RecordingCommand[]> {
  const found: RecordingCommand[] = [];
  for (let empty = 0; empty < 2; ) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: recordingQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = r.Messages ?? [];
    if (messages.length === 0) empty++;
    for (const m of messages) {
      const command = decodeRecordingCommand(m.Body ?? '');
      if (command) found.push(command);
    }
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
  sqs?.destroy();
});

describe('persist function on the SQS path', () => {
  beforeAll(async () => {
    ({ queueUrl, dlqUrl } = await createQueuePair(endpoint));
  });

  it('stores the metadata and transcript of a call sent as v2 fact messages through the queue', async () => {
    // Prepare
    const config = configure();
    const sink = new SqsFactSink({ queueUrl, s3: config.s3 });
    const id = callId('v2');
    const messages = [
      buildMessage({ callId: id, seq: 1, kind: 'started', turns: 0 }),
      buildMessage({ callId: id, seq: 2, turns: 1 }),
      buildMessage({ callId: id, seq: 3, kind: 'ended', turns: 2 }),
    ];

    // Act
    for (const message of messages) await sink.send(message);
    const result = await pollOnce(sqs, queueUrl, handler);

    // Assess
    expect(result.failed).toBe(0);
    const stored = await documentsOf(config, id);
    expect(stored.metadata).toMatchObject({ call_id: id, status: 'completed', answered: true, timezone: TZ, end_reason_detail: 'caller hung up' });
    expect(String(stored.metadata?.end_time)).toMatch(/-05:00$/);
    expect(stored.transcription?.conversation).toHaveLength(4);
    expect(stored.writers).toEqual({ 'job:AJ_test': 3 });
  });

  it('collapses duplicated and reordered deliveries into one record: the merge of all facts', async () => {
    // Prepare
    const config = configure();
    const id = callId('dup');
    const bodies = [5, 3, 5, 4, 1, 5, 2].map((seq) => encodeMessage(buildMessage({ callId: id, seq, turns: seq, kind: seq === 5 ? 'ended' : seq === 1 ? 'started' : 'progress' })));

    // Act
    for (const body of bodies) await sendRaw(body);
    const result = await pollOnce(sqs, queueUrl, handler);

    // Assess
    expect(result.failed).toBe(0);
    const stored = await documentsOf(config, id);
    expect(stored.transcription?.conversation).toHaveLength(10);
    expect(stored.metadata).toMatchObject({ status: 'completed' });
    expect(stored.writers).toEqual({ 'job:AJ_test': 5 });
  });

  it('upgrades a v1 snapshot still in the queue and merges it with the v2 facts of the same call', async () => {
    // Prepare: a v1 worker's progress snapshot was queued before the upgrade; the v2 webhook closes the call
    const config = configure();
    const id = callId('v1');
    const snapshot = buildSnapshot({ callId: id, kind: 'progress', turns: 2, roomName: 'legacy-room' });
    const roomFinished = buildMessage({ callId: id, kind: 'webhook', writer: `webhook:EV_${id}`, cumulative: false, turns: 0, roomName: 'legacy-room', facts: { answeredAtMs: undefined, ended: { source: 'room_finished', atMs: snapshot.call.startedAtMs + 60_000 }, outcome: { source: 'webhook', atMs: snapshot.call.startedAtMs + 60_000 } } });

    // Act
    await sendRaw(JSON.stringify(snapshot));
    await sendRaw(encodeMessage(roomFinished));
    const result = await pollOnce(sqs, queueUrl, handler);

    // Assess
    expect(result.failed).toBe(0);
    const stored = await documentsOf(config, id);
    expect(stored.metadata).toMatchObject({ call_id: id, room_name: 'legacy-room', answered: true, status: 'completed' });
    expect(stored.transcription?.conversation.map((i) => i.content)).toEqual(['user says 0', 'assistant answers 0', 'user says 1', 'assistant answers 1']);
    expect(Object.keys(stored.writers ?? {}).sort()).toEqual(['v1-worker', `webhook:EV_${id}`]);
  });

  it('parks malformed, unknown-version and unreadable messages in the dead-letter queue at once without failing their neighbours', async () => {
    // Prepare
    const config = configure();
    const good = buildMessage({ callId: callId('good'), kind: 'ended' });
    const valid = JSON.parse(encodeMessage(buildMessage({}))) as Record<string, unknown>;
    const poison = [
      'not json at all',
      '{"v":2,"kind":"ended"}',
      JSON.stringify({ ...valid, v: 99 }),
      JSON.stringify({ ...valid, callId: '../../etc/passwd' }),
      JSON.stringify({ ...buildSnapshot({}), call: { roomName: '' } }),
      JSON.stringify({ pad: 'x'.repeat(300 * 1024) }).slice(0, 255 * 1024),
      // A claim check whose payload does not exist: the bytes will never change.
      JSON.stringify({ ...valid, facts: { roomName: 'r' }, conversationRef: { bucket, key: '_calldata-payloads/none.json', bytes: 2, sha256: '0'.repeat(64), items: 0 } }),
    ];

    // Act
    for (const body of [...poison, encodeMessage(good)]) await sendRaw(body);
    const result = await pollOnce(sqs, queueUrl, handler);

    // Assess: nothing retried, poison parked with its reason, the good one stored
    expect(result.failed).toBe(0);
    const parked = await dlqBodies();
    expect(parked.map((p) => p.body).sort()).toEqual([...poison].sort());
    expect(parked.find((p) => p.body.includes('"v":99'))?.reason).toMatch(/unsupported message version 99/);
    expect(parked.find((p) => p.body === 'not json at all')?.reason).toMatch(/not JSON/);
    expect(parked.find((p) => p.body.includes('etc/passwd'))?.reason).toMatch(/callId/);
    expect(parked.find((p) => p.body.includes('none.json'))?.reason).toMatch(/missing/);
    expect((await documentsOf(config, good.callId)).metadata).toMatchObject({ status: 'completed' });
  });

  it('carries a 4-hour transcript over 2 MB by reference through S3 (claim check) and stores it whole', async () => {
    // Prepare
    const config = configure();
    const sink = new SqsFactSink({ queueUrl, s3: config.s3 });
    const conversation = withItemIds(longConversation(4 * 3600_000, 2.2 * 1024 * 1024));
    const message = buildMessage({ callId: callId('long'), kind: 'ended', conversation });

    // Act
    const receipt = await sink.send(message);
    const result = await pollOnce(sqs, queueUrl, handler);

    // Assess: the message was small, the stored transcript is complete
    expect(result.failed).toBe(0);
    expect(receipt.offloaded).toBe(true);
    expect(receipt.bytes).toBeLessThan(OFFLOAD_THRESHOLD_BYTES);
    const stored = await documentsOf(config, message.callId);
    expect(stored.transcription?.conversation).toHaveLength(conversation.length);
    expect(Buffer.byteLength(JSON.stringify(stored.transcription))).toBeGreaterThan(2 * 1024 * 1024);
  });

  it('offloads a long call’s transcript but keeps its capped turn latency inline, under the SQS limit, and stores the latency summary', async () => {
    // Prepare: a 4-hour call over 2 MB with the most turn facts a message may carry
    const config = configure();
    const sink = new SqsFactSink({ queueUrl, s3: config.s3 });
    const conversation = withItemIds(longConversation(4 * 3600_000, 2.2 * 1024 * 1024));
    const turns = conversation.slice(0, MAX_TURNS_PER_MESSAGE).map((item, i) => ({ id: item.id, llmTtftMs: 100 + (i % 100), e2eMs: 1_000 + i }));
    const message = buildMessage({ callId: callId('turns'), kind: 'ended', conversation, facts: { turns } });

    // Act
    const receipt = await sink.send(message);
    const result = await pollOnce(sqs, queueUrl, handler);

    // Assess: the transcript went by reference, the turns stayed in a body well under SQS's limit, the summary counts every turn
    expect(result.failed).toBe(0);
    expect(receipt.offloaded).toBe(true);
    expect(receipt.bytes).toBeLessThan(MAX_WIRE_BYTES / 4);
    const stored = await documentsOf(config, message.callId);
    expect(stored.transcription?.conversation).toHaveLength(conversation.length);
    expect(stored.metadata?.latency?.llm_ttft).toEqual({ p50_ms: 149, p90_ms: 189, max_ms: 199, count: MAX_TURNS_PER_MESSAGE });
    expect(stored.metadata?.latency?.e2e?.max_ms).toBe(1_000 + MAX_TURNS_PER_MESSAGE - 1);
  });

  it('returns only the records whose backend is down to the queue, parks the poison beside them, and stores them once it recovers', async () => {
    // Prepare: metadata goes to S3 through a proxy we can cut; transcripts to a local folder
    const proxy = new TcpProxy(SERVERS.localstack.port);
    const port = await proxy.start();
    const config = configure({ METADATA_LOCATION: 's3', AWS_S3_ENDPOINT: `http://127.0.0.1:${port}` });
    const message = buildMessage({ callId: callId('down'), kind: 'ended', turns: 2 });
    const marker = `poison while down ${randomUUID()}`;
    await proxy.down();

    // Act: deliver while the backend is down
    await sendRaw(encodeMessage(message));
    await sendRaw(marker);
    const whileDown = await pollOnce(sqs, queueUrl, handler);

    // Assess: the record failed and stays on the queue; the poison did not wait for the backend
    expect(whileDown.failed).toBe(1);
    expect((await dlqBodies()).map((p) => p.body)).toContain(marker);

    // Act: the backend recovers; the queue redelivers after the visibility timeout
    await proxy.up();
    const afterRecovery = await pollOnce(sqs, queueUrl, handler, { emptyRounds: 4 });
    await proxy.down();

    // Assess: stored, nothing lost
    expect(afterRecovery).toMatchObject({ delivered: 1, failed: 0 });
    const stored = await new S3Backend(s3SettingsFor(endpoint, bucket), { documents: ['metadata'], model: recordModel(TZ) }).read(message.callId);
    expect(stored?.documents.metadata).toMatchObject({ call_id: message.callId, status: 'completed' });
    expect(config.metadataLocation).toBe('s3');
  });

  it('sends the recording commands the stored records call for to the recording queue', async () => {
    // Prepare
    const created = await sqs.send(new CreateQueueCommand({ QueueName: `calldata-recording-${randomUUID().slice(0, 8)}` }));
    const recordingQueueUrl = created.QueueUrl ?? '';
    const config = configure({ CALL_RECORDING: 'true', CALLDATA_RECORDING_QUEUE_URL: recordingQueueUrl });
    const id = callId('rec');
    const started = buildMessage({ callId: id, seq: 1, kind: 'started', turns: 0, recordingBucket: bucket, facts: { answeredAtMs: undefined } });
    const unanswered = buildMessage({ callId: id, seq: 2, kind: 'unanswered', recordingBucket: bucket });

    // Act
    await sendRaw(encodeMessage(started));
    await pollOnce(sqs, queueUrl, handler);
    const afterStart = await commandsOn(recordingQueueUrl);
    await sendRaw(encodeMessage(unanswered));
    await pollOnce(sqs, queueUrl, handler);
    const afterEnd = await commandsOn(recordingQueueUrl);

    // Assess
    expect(afterStart).toEqual([expect.objectContaining({ action: 'start', callId: id, roomName: 'sip-room-1', bucket })]);
    expect(afterStart[0]?.key).toMatch(/^sip-room-1\/\d{8}T\d{6}\.\d{3}_RM_rec\w+\/call_sip-room-1_.+\.ogg$/);
    expect(afterEnd.map((c) => c.action)).toEqual(['discard']);
    expect(afterEnd[0]?.key).toBe(afterStart[0]?.key);
    expect((await documentsOf(config, id)).metadata).toMatchObject({ answered: false, status: 'no_answer' });
  });

  it('returns a stored batch to the queue when its recording commands cannot be sent, and stores it once', async () => {
    // Prepare: the recording queue does not exist
    const config = configure({ CALL_RECORDING: 'true', CALLDATA_RECORDING_QUEUE_URL: `${queueUrl}-missing-${randomUUID().slice(0, 4)}` });
    const message: FactMessage = buildMessage({ callId: callId('nocmd'), seq: 1, kind: 'started', turns: 0, recordingBucket: bucket, facts: { answeredAtMs: undefined } });

    // Act
    await sendRaw(encodeMessage(message));
    const result = await pollOnce(sqs, queueUrl, handler, { maxBatches: 1 });

    // Assess: the facts are stored (merging them again is harmless); the message comes back for the command
    expect(result.failed).toBe(1);
    expect((await documentsOf(config, message.callId)).metadata).toMatchObject({ call_id: message.callId, status: 'in_progress' });
    configure();
    await pollOnce(sqs, queueUrl, handler, { emptyRounds: 4 });
  });
});
