/**
 * The recording function against the real livekit-server (dev mode), which has no egress
 * service: LiveKit answers StartRoomCompositeEgress with 503 "no response from servers" after
 * about 23 s. The failure must be recorded in the call's status without holding back the
 * metadata. Also the client-side timeout path, which is retried.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../functions/config/config.ts';
import { encodeSnapshot, type Snapshot } from '../../functions/contract/snapshot.ts';
import { persistSnapshots } from '../../functions/persist/persist.ts';
import { createRecorder, recordingBatch } from '../../functions/recording/handler.ts';
import { loadRecordingSettings } from '../../functions/recording/settings.ts';
import { S3RecordingStateStore } from '../../functions/recording/state.ts';
import { backendFor, closeAllBackends } from '../../functions/storage/select.ts';
import { createBucket, localstackEndpoint, useLocalstackEnv } from '../support/localstack.ts';
import { testContext } from '../support/queue-poller.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const API_KEY = 'devkey';
const API_SECRET = 'secret';

let livekitUrl: string;
let rooms: RoomServiceClient;
let config: Config;
let folder: string;
const created: string[] = [];

async function roomSnapshot(label: string): Promise<Snapshot> {
  const name = `calldata-rec-${label}-${Date.now()}`;
  const room = await rooms.createRoom({ name, emptyTimeout: 60 });
  created.push(name);
  const base = buildSnapshot({ callId: room.sid, roomName: name, kind: 'started', recordingKey: `${name}/t/call_${name}_t.ogg` });
  return { ...base, recording: { key: base.recording!.key, bucket: config.s3.bucket }, call: { ...base.call, answered: false, answeredAtMs: undefined }, conversation: undefined };
}

function event(snapshot: Snapshot) {
  return {
    Records: [
      {
        messageId: `m-${snapshot.callId}`,
        receiptHandle: 'r',
        body: encodeSnapshot(snapshot),
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 's', ApproximateFirstReceiveTimestamp: '0' },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:recording',
        awsRegion: 'us-east-1',
      },
    ],
  };
}

beforeAll(async () => {
  livekitUrl = await requireServer('livekit');
  const endpoint = await localstackEndpoint();
  useLocalstackEnv(endpoint);
  const bucket = await createBucket(endpoint, 'calldata-lk');
  folder = await mkdtemp(join(tmpdir(), 'calldata-lk-'));
  config = loadConfig({
    CALL_RECORDING: 'true',
    SAVE_METADATA: 'true',
    METADATA_LOCATION: join(folder, 'Call_Metadata'),
    AWS_S3_BUCKET: bucket,
    AWS_S3_ENDPOINT: endpoint,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_S3_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
    AWS_S3_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
  });
  rooms = new RoomServiceClient(livekitUrl.replace(/^ws/, 'http'), API_KEY, API_SECRET);
});

afterAll(async () => {
  await Promise.allSettled(created.map((name) => rooms.deleteRoom(name)));
  await closeAllBackends();
  await rm(folder, { recursive: true, force: true });
});

describe('recording function against livekit-server without an egress service', () => {
  it('records a 503 "no response from servers" as a failed recording and keeps the metadata', async () => {
    // Prepare: one attempt with a timeout longer than LiveKit's own wait
    const snapshot = await roomSnapshot('503');
    const metadata = await backendFor(config.metadataLocation, { s3: config.s3 });
    await persistSnapshots([snapshot], config, { metadata });
    const recorder = createRecorder(
      config,
      loadRecordingSettings({ LIVEKIT_URL: livekitUrl, LIVEKIT_API_KEY: API_KEY, LIVEKIT_API_SECRET: API_SECRET, CALLDATA_EGRESS_ATTEMPTS: '1', CALLDATA_EGRESS_TIMEOUT_MS: '45000' }),
    );
    // Act
    const started = Date.now();
    const response = await recordingBatch(event(snapshot), testContext('recording'), recorder);
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(Date.now() - started).toBeGreaterThan(5_000);
    const state = await new S3RecordingStateStore(config.s3, '_calldata-recordings').load(snapshot.callId);
    expect(state.result).toMatchObject({ status: 'failed', error: expect.stringMatching(/503.*no response from servers/) });
    expect(state.egress).toBeUndefined();
    const doc = (await metadata.read('metadata', snapshot.callId))?.document as Record<string, unknown>;
    expect(doc).toMatchObject({ call_id: snapshot.callId, recording_status: 'failed', status: 'in_progress' });
    expect(doc.recording_error).toMatch(/no response from servers/);
  }, 90_000);

  it('retries a request that times out and then records the failure', async () => {
    const snapshot = await roomSnapshot('timeout');
    const recorder = createRecorder(
      config,
      loadRecordingSettings({ LIVEKIT_URL: livekitUrl, LIVEKIT_API_KEY: API_KEY, LIVEKIT_API_SECRET: API_SECRET, CALLDATA_EGRESS_ATTEMPTS: '2', CALLDATA_EGRESS_TIMEOUT_MS: '1000', CALLDATA_EGRESS_BACKOFF_MS: '100' }),
    );
    const started = Date.now();
    await recordingBatch(event(snapshot), testContext('recording'), recorder);
    const elapsed = Date.now() - started;
    const state = await new S3RecordingStateStore(config.s3, '_calldata-recordings').load(snapshot.callId);
    expect(state.result).toMatchObject({ status: 'failed', error: expect.stringMatching(/did not answer/) });
    // Two attempts of ~1 s each, not LiveKit's 23 s.
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(elapsed).toBeLessThan(15_000);
  }, 60_000);
});
