/**
 * The recording function against the real livekit-server (dev mode), which has no egress
 * service: LiveKit answers StartRoomCompositeEgress with 503 "no response from servers" after
 * about 23 s. The failure is reported as a fact (the start error) and shows in the call's
 * metadata without holding anything back. Also the client-side timeout path, which is retried.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { MESSAGE_VERSION, type FactMessage, type RecordingCommand } from '../../functions/contract/facts.ts';
import { recordingKey } from '../../functions/domain/render.ts';
import { RECORDING_TIMING } from '../../functions/config/config.ts';
import { recordingSettings } from '../../functions/recording/settings.ts';
import { recordingStep } from '../../functions/recording/step.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { pipelineFor, type Pipeline } from '../../functions/wiring.ts';
import { createBucket, localstackEndpoint, useLocalstackEnv } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../support/servers.ts';

const API_KEY = 'devkey';
const API_SECRET = 'secret';

let livekitUrl: string;
let rooms: RoomServiceClient;
let pipeline: Pipeline;
let folder: string;
const created: string[] = [];

/** A real room, and the record of its call (the worker's first report, as persisted). */
async function roomCall(label: string): Promise<RecordingCommand> {
  const name = `calldata-rec-${label}-${Date.now()}`;
  const room = await rooms.createRoom({ name, emptyTimeout: 60 });
  created.push(name);
  const startedAtMs = Date.now();
  const progress: FactMessage = {
    v: MESSAGE_VERSION,
    kind: 'progress',
    callId: room.sid,
    writer: `job:AJ_${room.sid}`,
    seq: 1,
    cumulative: true,
    sentAtMs: startedAtMs,
    facts: { roomName: name, startedAtMs, direction: { value: 'inbound', atMs: startedAtMs }, recording: { requested: true, bucket: pipeline.config.s3.bucket } },
  };
  const outcome = (await pipeline.persist([progress])).get(room.sid);
  expect(outcome?.error).toBeUndefined();
  // The start command the persist step issues for the worker's first message.
  return { v: MESSAGE_VERSION, type: 'recording', action: 'start', callId: room.sid, roomName: name, key: recordingKey(outcome!.merged!.folder), egressIds: [], issuedAtMs: Date.now() };
}

async function stored(callId: string) {
  const record = await (await pipeline.primary())?.read(callId);
  expect(record).toBeDefined();
  return record!;
}

beforeAll(async () => {
  livekitUrl = await requireServer('livekit');
  const endpoint = await localstackEndpoint();
  useLocalstackEnv(endpoint);
  const bucket = await createBucket(endpoint, 'calldata-lk');
  folder = await mkdtemp(join(tmpdir(), 'calldata-lk-'));
  pipeline = pipelineFor(
    loadConfig({
      CALL_RECORDING: 'true',
      SAVE_METADATA: 'true',
      METADATA_LOCATION: join(folder, 'Call_Metadata'),
      AWS_S3_BUCKET: bucket,
      AWS_S3_ENDPOINT: endpoint,
      AWS_S3_FORCE_PATH_STYLE: 'true',
      AWS_S3_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
      AWS_S3_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
    }),
  );
  rooms = new RoomServiceClient(livekitUrl.replace(/^ws/, 'http'), API_KEY, API_SECRET);
});

afterAll(async () => {
  await Promise.allSettled(created.map((name) => rooms.deleteRoom(name)));
  await closeAllBackends();
  await rm(folder, { recursive: true, force: true });
});

describe('recording function against livekit-server without an egress service', () => {
  it('reports a 503 "no response from servers" as the start error and the metadata shows a failed recording', async () => {
    // Prepare: one attempt with a timeout longer than LiveKit's own wait
    const command = await roomCall('503');
    const step = await recordingStep(pipeline, {
      settings: recordingSettings({
        livekit: { url: livekitUrl, apiKey: API_KEY, apiSecret: API_SECRET },
        recordingTiming: { ...RECORDING_TIMING, egressAttempts: 1, egressTimeoutMs: 45_000 },
      }),
    });
    // Act
    const started = Date.now();
    const result = await step.run(command);
    // Assess
    expect(result).toBe('start_failed');
    expect(Date.now() - started).toBeGreaterThan(5_000);
    const record = await stored(command.callId);
    expect(record.state.recording?.startError?.error).toMatch(/503.*no response from servers/);
    expect(record.state.recording?.egress).toBeUndefined();
    expect(record.documents.metadata).toMatchObject({ call_id: command.callId, recording_status: 'failed', status: 'in_progress' });
    expect(record.documents.metadata?.recording_error).toMatch(/no response from servers/);
  }, 90_000);

  it('retries a request that times out and then reports the failure', async () => {
    const command = await roomCall('timeout');
    const step = await recordingStep(pipeline, {
      settings: recordingSettings({
        livekit: { url: livekitUrl, apiKey: API_KEY, apiSecret: API_SECRET },
        recordingTiming: { ...RECORDING_TIMING, egressAttempts: 2, egressTimeoutMs: 1_000, egressBackoffMs: 100 },
      }),
    });
    const started = Date.now();
    expect(await step.run(command)).toBe('start_failed');
    const elapsed = Date.now() - started;
    expect((await stored(command.callId)).state.recording?.startError?.error).toMatch(/did not answer/);
    // Two attempts of ~1 s each, not LiveKit's 23 s.
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(elapsed).toBeLessThan(15_000);
  }, 60_000);
});
