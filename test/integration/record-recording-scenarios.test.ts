/**
 * The recording failures of the first version, each as a scenario through the real pipeline on
 * real servers: the persist step (functions/wiring.ts, embedded: recording commands run in the
 * background and report facts back through the fact sink), PostgreSQL or the `s3` location
 * for the record, LocalStack S3 for the recordings, the egress stand-in for LiveKit's egress
 * (real Twirp HTTP, real tokens, a real OGG uploaded to S3) and the real webhook handler for
 * LiveKit's signed webhooks.
 *
 * The last test generates deliveries of the worker's, the webhook's and the egress's facts in
 * any order, late and twice, and checks the invariant: an answered call's recording is at its
 * key; a call that is over and was never answered has none there.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { WebhookEvent, WebhookReceiver } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, RECORDING_TIMING } from '../../functions/config/config.ts';
import { MESSAGE_VERSION, type CallFacts, type FactMessage } from '../../functions/contract/facts.ts';
import type { StoredCall } from '../../functions/storage/backend.ts';
import { isDiscarded, mainEgress, recordingKey } from '../../functions/domain/render.ts';
import { quarantineKey } from '../../functions/domain/recorder.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { drainEmbedded, embeddedPending } from '../../functions/transport/embedded-sink.ts';
import { handleWebhook } from '../../functions/webhook/handler.ts';
import { pipelineFor, type Pipeline } from '../../functions/wiring.ts';
import { EgressStandIn, inspectOgg, webhookRequest } from '../support/egress-standin.ts';
import { createBucket, localstackEndpoint, useLocalstackEnv } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../support/servers.ts';

const API_KEY = 'standin-key';
const API_SECRET = 'standin-secret-0123456789abcdef0123456789';
const START = Date.UTC(2026, 10, 24, 0, 48, 38, 120);
/** The discard waits this long for a stopped egress's upload; a slow upload takes longer. */
const DISCARD_WAIT_MS = 400;
let livekitEnv: Record<string, string> = {};
const SLOW_UPLOAD_MS = 900;

let endpoint: string;
let postgres: string;
let bucket: string;
let s3: S3Client;
let standIn: EgressStandIn;
/** The pipeline the webhooks of the running test go to. */
let current: Pipeline | undefined;
const receiver = new WebhookReceiver(API_KEY, API_SECRET);

interface Call {
  callId: string;
  roomName: string;
}

function newCall(label: string): Call {
  const tail = randomUUID().replace(/-/g, '').slice(0, 10);
  const call = { callId: `RM_${label}${tail}`, roomName: `${label}-line-${tail}` };
  standIn.roomIds.set(call.roomName, call.callId);
  return call;
}

function pipelineWith(env: Record<string, string>): Pipeline {
  const pipeline = pipelineFor({
    ...loadConfig({
      CALL_RECORDING: 'true',
      TIMEZONE: 'Asia/Kolkata',
      AWS_S3_BUCKET: bucket,
      AWS_S3_ENDPOINT: endpoint,
      AWS_S3_FORCE_PATH_STYLE: 'true',
      AWS_S3_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
      AWS_S3_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
      ...livekitEnv,
      ...env,
    }),
    recordingTiming: { ...RECORDING_TIMING, egressBackoffMs: 50, discardWaitMs: DISCARD_WAIT_MS, discardPollMs: 100 },
  });
  current = pipeline;
  return pipeline;
}

const withMetadataInPostgres = () => pipelineWith({ SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', METADATA_LOCATION: postgres, TRANSCRIPTION_LOCATION: postgres });

// ---------------------------------------------------------------------------------------------
// What the parties send.

const conversation = [
  { id: 'i0', role: 'user' as const, content: 'hello?', interrupted: false, timestampMs: START + 3_000 },
  { id: 'i1', role: 'assistant' as const, content: 'hi, how can I help?', interrupted: false, timestampMs: START + 4_000 },
];

/** The worker's cumulative view: started (ringing), answered, and its final word. */
function worker(call: Call, step: 'started' | 'answered' | 'ended' | 'unanswered'): FactMessage {
  const seq = { started: 1, answered: 2, ended: 3, unanswered: 3 }[step];
  const answered = step === 'answered' || step === 'ended';
  const endAt = START + 60_000;
  const facts: CallFacts = {
    roomName: call.roomName,
    startedAtMs: START,
    direction: { value: 'inbound', atMs: START },
    agentNumber: { value: '+14155550100', atMs: START },
    recording: { requested: true, bucket },
    ...(answered ? { answeredAtMs: START + 2_500, conversation } : {}),
    ...(step === 'ended' ? { ended: { source: 'worker' as const, atMs: endAt, reason: 'caller hung up' }, outcome: { source: 'worker' as const, atMs: endAt, status: 'completed' as const } } : {}),
    ...(step === 'unanswered'
      ? { ended: { source: 'worker' as const, atMs: START + 30_000, reason: 'nobody answered' }, outcome: { source: 'worker' as const, atMs: START + 30_000, status: 'no_answer' as const } }
      : {}),
  };
  const kind = step === 'answered' ? 'progress' : step;
  return { v: MESSAGE_VERSION, kind, callId: call.callId, writer: `job:AJ_${call.callId}`, seq, cumulative: true, sentAtMs: START + seq * 1_000, facts };
}

/** Sends a webhook the way LiveKit does: signed, through the real handler. */
async function deliverWebhook(event: WebhookEvent): Promise<void> {
  const { body, authorization } = await webhookRequest(event, API_KEY, API_SECRET);
  const pipeline = current;
  if (!pipeline) throw new Error('no pipeline for the webhook');
  // LiveKit retries a delivery that was not acknowledged.
  for (let attempt = 1; ; attempt++) {
    const response = await handleWebhook({ headers: { Authorization: authorization }, body, isBase64Encoded: false }, { receiver, facts: () => pipeline.factSink() });
    if (response.statusCode === 200) return;
    if (attempt === 3) throw new Error(`webhook not accepted: ${response.statusCode} ${response.body}`);
  }
}

function roomFinished(call: Call): WebhookEvent {
  const event = new WebhookEvent({ room: { sid: call.callId, name: call.roomName, creationTime: BigInt(Math.floor(START / 1000)) }, id: `EV_rf_${call.callId}`, createdAt: BigInt(Math.floor((START + 85_000) / 1000)) });
  event.event = 'room_finished';
  return event;
}

function participantLeft(call: Call): WebhookEvent {
  const event = new WebhookEvent({
    room: { sid: call.callId, name: call.roomName },
    participant: { identity: 'sip_+919876543210', kind: 3, disconnectReason: 1 },
    id: `EV_pl_${call.callId}`,
    createdAt: BigInt(Math.floor((START + 58_000) / 1000)),
  });
  event.event = 'participant_left';
  return event;
}

// ---------------------------------------------------------------------------------------------
// Waiting and looking.

/** Waits until no recording command, upload or webhook is in progress any more. */
async function settle(): Promise<void> {
  for (let round = 0; round < 100; round++) {
    await standIn.settled();
    expect(await drainEmbedded(60_000)).toBe(true);
    await standIn.settled();
    if (embeddedPending() === 0 && standIn.busy === 0) return;
  }
  throw new Error('background work did not settle');
}

async function stored(pipeline: Pipeline, call: Call): Promise<StoredCall> {
  const record = await (await pipeline.primary())?.read(call.callId);
  expect(record, `stored record of ${call.callId}`).toBeDefined();
  return record!;
}

/** The recording's key as the stored record names it (its egress's key, or the folder's). */
function keyOf(record: StoredCall): string {
  return mainEgress(record.state)?.key ?? recordingKey(record.folder);
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
  postgres = await requireServer('postgres');
  useLocalstackEnv(endpoint);
  bucket = await createBucket(endpoint, 'calldata-recsc');
  s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
  standIn = new EgressStandIn({
    apiKey: API_KEY,
    apiSecret: API_SECRET,
    uploadDelayMs: 100,
    webhookEvents: ['egress_started', 'egress_ended'],
    webhook: async (request) => deliverWebhookRequest(request),
  });
  const url = await standIn.start();
  // The embedded recording step takes its LiveKit settings from the pipeline's configuration, like the worker's.
  livekitEnv = { LIVEKIT_URL: url, LIVEKIT_API_KEY: API_KEY, LIVEKIT_API_SECRET: API_SECRET };
});

/** The stand-in's own (egress) webhooks, through the real handler to the running test's pipeline. */
async function deliverWebhookRequest(request: { body: string; authorization: string }): Promise<void> {
  const pipeline = current;
  if (!pipeline) return;
  for (let attempt = 1; ; attempt++) {
    const response = await handleWebhook({ headers: { Authorization: request.authorization }, body: request.body, isBase64Encoded: false }, { receiver, facts: () => pipeline.factSink() });
    if (response.statusCode === 200) return;
    if (attempt === 3) throw new Error(`egress webhook not accepted: ${response.statusCode}`);
  }
}

afterAll(async () => {
  await standIn?.close();
  await drainEmbedded(30_000);
  await closeAllBackends();
  s3?.destroy();
});

describe('recording scenarios on real servers', () => {
  it("an answered call's recording is never deleted although the persist queue lags", async () => {
    // Prepare: the call starts; its recording starts
    const call = newCall('lag');
    const pipeline = withMetadataInPostgres();
    await pipeline.persist([worker(call, 'started')]);
    await settle();
    expect(standIn.egressesOf(call.roomName)).toHaveLength(1);
    // The call is answered, but that message lags in the persist queue. The caller hangs up,
    // the room closes (the egress uploads, egress_ended arrives) and room_finished closes the
    // call, which looks unanswered: its recording is discarded.
    standIn.endRoom(call.roomName);
    await settle();
    await deliverWebhook(roomFinished(call));
    await settle();
    const before = await stored(pipeline, call);
    const key = keyOf(before);
    expect(await exists(key)).toBe(false);
    expect(await exists(quarantineKey(key))).toBe(true);
    expect(before.documents.metadata).toMatchObject({ answered: false, recording_status: 'discarded' });

    // Act: the lagging answered message arrives, then the worker's final
    await pipeline.persist([worker(call, 'answered')]);
    await settle();
    await pipeline.persist([worker(call, 'ended')]);
    await settle();

    // Assess: the recording is back at its key, and the metadata names it
    const after = await stored(pipeline, call);
    expect(keyOf(after)).toBe(key);
    expect(await exists(key)).toBe(true);
    expect(await exists(quarantineKey(key))).toBe(false);
    const ogg = inspectOgg(await readObject(key));
    expect(ogg.opus).toBe(true);
    expect(isDiscarded(after.state)).toBe(false);
    expect(after.documents.metadata).toMatchObject({
      answered: true,
      status: 'completed',
      end_reason_detail: 'caller hung up',
      recording_filename: key.slice(key.lastIndexOf('/') + 1),
      recording_location: `s3://${bucket}/${key}`,
      recording_status: 'complete',
      recording_size_bytes: standIn.ogg.length,
      recording_duration: ogg.durationMs / 1000,
    });
    expect(key).toBe(recordingKey(after.folder));
    expect(after.documents.transcription?.conversation).toHaveLength(2);
  });

  it("an unanswered call's recording never survives when the worker dies before answer, with SAVE_METADATA=false", async () => {
    // Prepare: only CALL_RECORDING=true, so the record lives in the recordings bucket (`s3`);
    // the upload takes longer than the discard waits for it
    const call = newCall('dead');
    const pipeline = pipelineWith({});
    expect(pipeline.config.saveMetadata).toBe(false);
    await pipeline.persist([worker(call, 'started')]);
    await settle();
    expect(standIn.egressesOf(call.roomName)).toHaveLength(1);
    standIn.uploadDelayMs = SLOW_UPLOAD_MS;
    try {
      // Act: the worker dies while it rings; the room closes and LiveKit says so before the upload lands
      standIn.endRoom(call.roomName);
      await deliverWebhook(roomFinished(call));
      await settle();
    } finally {
      standIn.uploadDelayMs = 100;
    }
    // Assess: the late upload was moved out too (its egress_ended asked for another discard)
    const record = await stored(pipeline, call);
    const key = keyOf(record);
    expect(standIn.uploads.map((u) => u.key)).toContain(key);
    expect(await exists(key)).toBe(false);
    expect(await exists(quarantineKey(key))).toBe(true);
    expect(record.state.answeredAtMs).toBeUndefined();
    expect(record.state.outcome).toMatchObject({ source: 'webhook' });
    expect(record.state.recording?.discardedAtMs).toBeDefined();
    expect(mainEgress(record.state)?.status).toBe('complete');
    expect(record.documents.metadata).toBeUndefined();
  });

  describe('the egress result is recorded whatever the order', () => {
    const orders = [
      { name: 'egress_ended before the worker’s final', uploadDelayMs: 100, endedFirst: true },
      { name: 'the worker’s final before egress_ended (the finish sees the end)', uploadDelayMs: 100, endedFirst: false },
      { name: 'the worker’s final before egress_ended (the upload outlasts the finish’s wait)', uploadDelayMs: SLOW_UPLOAD_MS, endedFirst: false },
    ];
    for (const order of orders) {
      it(order.name, async () => {
        // Prepare: an answered call being recorded; egress webhooks held back to choose their order
        const call = newCall('order');
        const pipeline = withMetadataInPostgres();
        await pipeline.persist([worker(call, 'started')]);
        await settle();
        await pipeline.persist([worker(call, 'answered')]);
        standIn.holdWebhooks = true;
        standIn.uploadDelayMs = order.uploadDelayMs;
        try {
          // Act
          if (order.endedFirst) {
            standIn.endRoom(call.roomName);
            await settle();
            await standIn.releaseWebhooks((h) => h.roomName === call.roomName);
            await settle();
            await pipeline.persist([worker(call, 'ended')]);
            await settle();
          } else {
            await pipeline.persist([worker(call, 'ended')]);
            await settle();
            await standIn.releaseWebhooks((h) => h.roomName === call.roomName);
            await settle();
          }
        } finally {
          standIn.holdWebhooks = false;
          standIn.uploadDelayMs = 100;
        }
        // Assess
        const record = await stored(pipeline, call);
        const key = keyOf(record);
        const ogg = inspectOgg(await readObject(key));
        expect(record.documents.metadata).toMatchObject({
          answered: true,
          status: 'completed',
          recording_filename: key.slice(key.lastIndexOf('/') + 1),
          recording_status: 'complete',
          recording_size_bytes: standIn.ogg.length,
          recording_duration: ogg.durationMs / 1000,
        });
        expect(Object.keys(record.state.recording?.egress ?? {})).toHaveLength(1);
      });
    }
  });

  it('keeps answered recordings at their key and none of calls over and never answered, over generated deliveries', async () => {
    type Step = 'answered' | 'final' | 'roomEnd' | 'roomFinished' | 'participantLeft' | 'redeliverEgress' | 'duplicate';
    const runArb = fc
      .record({
        answered: fc.boolean(),
        workerFinal: fc.boolean(),
        roomFinished: fc.boolean(),
        participantLeft: fc.boolean(),
        slowUpload: fc.boolean(),
        // Mostly the recording has started before anything else happens (calls last seconds);
        // sometimes the room closes while the start is still on its way.
        startSettles: fc.integer({ min: 0, max: 5 }).map((n) => n > 0),
        extra: fc.array(fc.constantFrom<Step>('redeliverEgress', 'duplicate'), { maxLength: 2 }),
      })
      .chain((run) => {
        const steps: Step[] = [
          ...(run.answered ? (['answered'] as const) : []),
          ...(run.workerFinal ? (['final'] as const) : []),
          'roomEnd',
          ...(run.roomFinished ? (['roomFinished'] as const) : []),
          ...(run.participantLeft ? (['participantLeft'] as const) : []),
          ...run.extra,
        ];
        return fc.record({
          run: fc.constant(run),
          steps: fc.shuffledSubarray(steps, { minLength: steps.length, maxLength: steps.length }),
          // After which steps the background work is let finish (otherwise the next delivery overlaps it).
          settleAfter: fc.array(fc.boolean(), { minLength: steps.length, maxLength: steps.length }),
        });
      });

    await fc.assert(
      fc.asyncProperty(runArb, async ({ run, steps, settleAfter }) => {
        // Prepare
        const call = newCall('prop');
        const pipeline = withMetadataInPostgres();
        const delivered: FactMessage[] = [];
        const persist = async (message: FactMessage) => {
          delivered.push(message);
          await pipeline.persist([message]);
        };
        standIn.uploadDelayMs = run.slowUpload ? SLOW_UPLOAD_MS : 50;
        try {
          await persist(worker(call, 'started'));
          if (run.startSettles) await settle();
          // Act: everything else, in the generated order
          for (const [i, step] of steps.entries()) {
            switch (step) {
              case 'answered':
                await persist(worker(call, 'answered'));
                break;
              case 'final':
                await persist(worker(call, run.answered ? 'ended' : 'unanswered'));
                break;
              case 'roomEnd':
                standIn.endRoom(call.roomName);
                break;
              case 'roomFinished':
                // LiveKit sends room_finished once the room is gone.
                standIn.endRoom(call.roomName);
                await deliverWebhook(roomFinished(call));
                break;
              case 'participantLeft':
                await deliverWebhook(participantLeft(call));
                break;
              case 'redeliverEgress':
                await standIn.redeliver((w) => w.roomName === call.roomName);
                break;
              case 'duplicate': {
                const again = delivered.at(-1);
                if (again) await persist(again);
                break;
              }
            }
            if (settleAfter[i]) await settle();
          }
          await settle();
          // LiveKit retries webhooks it could not deliver; nothing here may have failed.
          expect(standIn.webhookErrors).toEqual([]);
        } finally {
          standIn.uploadDelayMs = 100;
        }

        // Assess
        const record = await stored(pipeline, call);
        const key = keyOf(record);
        const answered = record.state.answeredAtMs !== undefined;
        const final = record.state.outcome !== undefined;
        const uploaded = standIn.uploads.some((u) => u.key === key);
        expect(answered).toBe(run.answered);
        const atKey = await exists(key);
        if (answered && uploaded) {
          expect(atKey, `answered call ${call.callId}: recording at its key`).toBe(true);
          expect(record.documents.metadata?.recording_filename).toBe(key.slice(key.lastIndexOf('/') + 1));
        }
        if (!answered && final) {
          expect(atKey, `unanswered call ${call.callId}: no recording at its key`).toBe(false);
          expect(record.documents.metadata?.recording_filename).toBeUndefined();
        }
      }),
      { numRuns: 60, endOnFailure: true },
    );
  }, 600_000);
});
