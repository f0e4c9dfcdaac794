/**
 * The webhook function: real WebhookReceiver signature checks with tokens signed the way
 * LiveKit signs them, and the finalization domain over a real local-folder metadata backend.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressInfo, EgressStatus, WebhookEvent, WebhookReceiver } from 'livekit-server-sdk';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import type { Snapshot } from '../../functions/contract/snapshot.ts';
import { persistSnapshots } from '../../functions/persist/persist.ts';
import type { EgressApi } from '../../functions/recording/egress.ts';
import { Recorder } from '../../functions/recording/recorder.ts';
import { loadRecordingSettings } from '../../functions/recording/settings.ts';
import { MemoryRecordingStateStore } from '../../functions/recording/state.ts';
import { LocalFolderBackend } from '../../functions/storage/local.ts';
import { CallFinalizer, FINALIZED_BY_WEBHOOK } from '../../functions/webhook/finalize.ts';
import { handleWebhook, type WebhookDeps } from '../../functions/webhook/handler.ts';
import { signWebhook } from '../support/egress-standin.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const API_KEY = 'webhook-key';
const API_SECRET = 'webhook-secret-that-is-long-enough-0123456789';
const TZ = 'Asia/Kolkata';

function roomFinished(sid: string, createdAtS: number): string {
  const event = new WebhookEvent({ room: { sid, name: 'sip-room-1' }, id: 'EV_1', createdAt: BigInt(createdAtS) });
  event.event = 'room_finished';
  return event.toJsonString();
}

async function signed(body: string, secret = API_SECRET) {
  return { headers: { Authorization: await signWebhook(body, API_KEY, secret) }, body, isBase64Encoded: false };
}

describe('webhook signature verification', () => {
  const finalizer = { roomFinished: vi.fn(async () => 'finalized' as const), egressEnded: vi.fn(async () => 'recorded' as const) };
  const deps: WebhookDeps = { receiver: new WebhookReceiver(API_KEY, API_SECRET), finalizer };
  beforeEach(() => vi.clearAllMocks());

  it('accepts a correctly signed room_finished and finalizes the room SID', async () => {
    // Prepare
    const request = await signed(roomFinished('RM_abc', 1_800_000_000));
    // Act
    const response = await handleWebhook(request, deps);
    // Assess
    expect(response.statusCode).toBe(200);
    expect(finalizer.roomFinished).toHaveBeenCalledWith({ sid: 'RM_abc', name: 'sip-room-1', finishedAtMs: 1_800_000_000_000 });
  });

  it('rejects a request without a signature', async () => {
    const response = await handleWebhook({ headers: {}, body: roomFinished('RM_abc', 1), isBase64Encoded: false }, deps);
    expect(response.statusCode).toBe(401);
    expect(finalizer.roomFinished).not.toHaveBeenCalled();
  });

  it('rejects a signature made with another secret', async () => {
    const response = await handleWebhook(await signed(roomFinished('RM_abc', 1), 'another-secret-that-is-long-enough-012345'), deps);
    expect(response.statusCode).toBe(401);
    expect(finalizer.roomFinished).not.toHaveBeenCalled();
  });

  it('rejects a body changed after signing', async () => {
    const request = await signed(roomFinished('RM_abc', 1));
    const response = await handleWebhook({ ...request, body: roomFinished('RM_other', 1) }, deps);
    expect(response.statusCode).toBe(401);
  });

  it('rejects a garbage token', async () => {
    const response = await handleWebhook({ headers: { authorization: 'not-a-jwt' }, body: '{}', isBase64Encoded: false }, deps);
    expect(response.statusCode).toBe(401);
  });

  it('reads base64 bodies (API Gateway) and lower-case headers (function URLs)', async () => {
    const body = roomFinished('RM_b64', 2);
    const authorization = await signWebhook(body, API_KEY, API_SECRET);
    const response = await handleWebhook({ headers: { authorization }, body: Buffer.from(body).toString('base64'), isBase64Encoded: true }, deps);
    expect(response.statusCode).toBe(200);
    expect(finalizer.roomFinished).toHaveBeenCalledWith(expect.objectContaining({ sid: 'RM_b64' }));
  });

  it('answers 400 to a correctly signed body that is not JSON', async () => {
    const response = await handleWebhook(await signed('not json'), deps);
    expect(response.statusCode).toBe(400);
  });

  it('routes egress_ended and acknowledges other events without acting', async () => {
    const egress = new WebhookEvent({ egressInfo: { egressId: 'EG_1', roomId: 'RM_abc', status: EgressStatus.EGRESS_COMPLETE } });
    egress.event = 'egress_ended';
    expect((await handleWebhook(await signed(egress.toJsonString()), deps)).statusCode).toBe(200);
    expect(finalizer.egressEnded).toHaveBeenCalledWith(expect.objectContaining({ egressId: 'EG_1', roomId: 'RM_abc' }));
    const joined = new WebhookEvent({ room: { sid: 'RM_abc' } });
    joined.event = 'participant_joined';
    const response = await handleWebhook(await signed(joined.toJsonString()), deps);
    expect(JSON.parse(response.body)).toMatchObject({ result: 'ignored' });
  });

  it('asks LiveKit to deliver again when storage is temporarily down', async () => {
    finalizer.roomFinished.mockRejectedValueOnce(Object.assign(new Error('backend down'), { retryable: true }));
    expect((await handleWebhook(await signed(roomFinished('RM_abc', 1)), deps)).statusCode).toBe(503);
  });
});

describe('finalizing calls from webhooks', () => {
  let folder: string;
  let backend: LocalFolderBackend;
  let state: MemoryRecordingStateStore;
  let deletes: string[];
  let egress: { stopped: string[] } & EgressApi;

  function finalizerFor(env: Record<string, string> = {}) {
    const config = loadConfig({ SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', CALL_RECORDING: 'true', AWS_S3_BUCKET: 'recordings', TIMEZONE: TZ, ...env });
    const settings = loadRecordingSettings({ LIVEKIT_URL: 'http://127.0.0.1:1', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's', CALLDATA_DISCARD_WAIT_MS: '0' });
    const recorder = new Recorder({
      config,
      settings,
      egress: () => egress,
      state,
      objects: { delete: async (bucket, key) => void deletes.push(`${bucket}/${key}`) },
      metadata: async () => backend,
      sleep: async () => undefined,
    });
    return { config, finalizer: new CallFinalizer(recorder, config) };
  }

  async function persist(snapshot: Snapshot, config = finalizerFor().config) {
    const [outcome] = await persistSnapshots([snapshot], config, { metadata: backend, transcription: backend });
    expect(outcome?.ok).toBe(true);
  }

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), 'webhook-'));
    backend = new LocalFolderBackend(folder);
    state = new MemoryRecordingStateStore();
    deletes = [];
    egress = {
      stopped: [],
      startRoomCompositeEgress: async () => new EgressInfo({}),
      stopEgress: async function (this: { stopped: string[] }, id: string) {
        egress.stopped.push(id);
        return new EgressInfo({ egressId: id, status: EgressStatus.EGRESS_COMPLETE });
      },
      listEgress: async () => [],
    };
  });
  afterEach(async () => {
    await backend.close();
    await rm(folder, { recursive: true, force: true });
  });

  it('finalizes an answered call whose worker died, keeping the transcript of its last snapshot', async () => {
    // Prepare: the worker stored a progress snapshot with three turns, then died
    const callId = 'RM_killed1';
    const last = buildSnapshot({ callId, kind: 'progress', turns: 3, seq: 1_000 });
    await persist(last);
    const { finalizer } = finalizerFor({ CALL_RECORDING: 'false' });
    const finishedAtMs = last.call.startedAtMs + 120_000;
    // Act
    const result = await finalizer.roomFinished({ sid: callId, name: last.call.roomName, finishedAtMs });
    // Assess
    expect(result).toBe('finalized');
    const meta = await backend.read('metadata', callId);
    expect(meta?.document).toMatchObject({ answered: true, status: 'completed', end_reason: FINALIZED_BY_WEBHOOK, duration: 120 });
    expect(meta?.seq).toBe(finishedAtMs * 1000);
    const transcript = await backend.read('transcription', callId);
    expect((transcript?.document as { conversation: unknown[] }).conversation).toHaveLength(6);
  });

  it('leaves a call the worker already ended as it is', async () => {
    const callId = 'RM_done1';
    const ended = buildSnapshot({ callId, kind: 'ended', turns: 1 });
    await persist(ended);
    const { finalizer } = finalizerFor({ CALL_RECORDING: 'false' });
    await expect(finalizer.roomFinished({ sid: callId, name: 'r', finishedAtMs: Date.now() })).resolves.toBe('already_final');
    expect((await backend.read('metadata', callId))?.seq).toBe(ended.seq);
  });

  it('finalizes a never-answered call as unanswered and discards its recording', async () => {
    // Prepare: started with a recording, then the worker died while it was ringing
    const callId = 'RM_ringing1';
    const key = 'room/t_x/call_room_t_x.ogg';
    const started = { ...buildSnapshot({ callId, kind: 'started', recordingKey: key }), conversation: undefined };
    started.call = { ...started.call, answered: false, answeredAtMs: undefined };
    await persist(started);
    await state.put(callId, 'egress', { egressId: 'EG_5', key, bucket: 'recordings', startedAtMs: 1 });
    const { finalizer } = finalizerFor();
    // Act
    const result = await finalizer.roomFinished({ sid: callId, name: started.call.roomName, finishedAtMs: started.call.startedAtMs + 40_000 });
    // Assess
    expect(result).toBe('finalized');
    expect(egress.stopped).toEqual(['EG_5']);
    expect(deletes).toEqual([`recordings/${key}`]);
    const meta = (await backend.read('metadata', callId))?.document as Record<string, unknown>;
    expect(meta).toMatchObject({ answered: false, status: 'failed', recording_status: 'discarded' });
    expect(meta.recording_filename).toBeUndefined();
    expect(await backend.read('transcription', callId)).toBeUndefined();
  });

  it('ignores rooms it has no record of', async () => {
    const { finalizer } = finalizerFor();
    await expect(finalizer.roomFinished({ sid: 'RM_unknown', name: 'x', finishedAtMs: 1 })).resolves.toBe('unknown_call');
  });

  it('records the egress result in the finalized record whichever webhook comes first', async () => {
    for (const order of [['room', 'egress'], ['egress', 'room']] as const) {
      // Prepare
      const callId = `RM_order${order[0]}`;
      const key = `room/t_${order[0]}/call.ogg`;
      const last = buildSnapshot({ callId, kind: 'progress', turns: 2, recordingKey: key });
      await persist(last);
      await state.put(callId, 'egress', { egressId: `EG_${callId}`, key, bucket: 'recordings', startedAtMs: 1 });
      const { finalizer } = finalizerFor();
      const info = new EgressInfo({
        egressId: `EG_${callId}`,
        roomId: callId,
        status: EgressStatus.EGRESS_COMPLETE,
        fileResults: [{ filename: key, size: 2_048n, duration: 61_000_000_000n }],
      });
      // Act
      for (const step of order) {
        if (step === 'room') await finalizer.roomFinished({ sid: callId, name: 'r', finishedAtMs: last.call.startedAtMs + 61_000 });
        else await finalizer.egressEnded(info);
      }
      // Assess
      const meta = (await backend.read('metadata', callId))?.document as Record<string, unknown>;
      expect(meta, order.join(' then ')).toMatchObject({
        answered: true,
        status: 'completed',
        recording_status: 'complete',
        recording_size_bytes: 2_048,
        recording_duration: 61,
        recording_filename: 'call.ogg',
      });
      expect(meta.end_time).not.toBeNull();
    }
  });
});
