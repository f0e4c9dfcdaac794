/**
 * The webhook function: real WebhookReceiver signature checks with tokens signed the way
 * LiveKit signs them, and the mapping of every event it understands to facts
 * (functions/domain/webhook-facts.ts), read back from the JSON LiveKit actually sends.
 */
import { EgressInfo, EgressStatus, ParticipantInfo, WebhookEvent, WebhookReceiver } from 'livekit-server-sdk';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resetConfigForTests } from '../../functions/config/config.ts';
import { ConfigError } from '../../functions/config/errors.ts';
import { factMessageSchema, type FactMessage } from '../../functions/contract/facts.ts';
import { EGRESS_STATUSES, WORKER_LOST } from '../../functions/contract/vocabulary.ts';
import { DISCONNECT_REASONS, webhookFacts } from '../../functions/domain/webhook-facts.ts';
import { egressStatusOf } from '../../functions/domain/recorder.ts';
import { SendFailedError } from '../../functions/transport/errors.ts';
import { handler, handleWebhook, resetWebhookForTests, type WebhookDeps } from '../../functions/webhook/handler.ts';
import { signWebhook } from '../support/egress-standin.ts';

const API_KEY = 'webhook-key';
const API_SECRET = 'webhook-secret-that-is-long-enough-0123456789';
const NOW = Date.UTC(2026, 10, 24, 1, 0, 0);
const receiver = new WebhookReceiver(API_KEY, API_SECRET);

function eventJson(name: WebhookEvent['event'], init: ConstructorParameters<typeof WebhookEvent>[0]): string {
  const event = new WebhookEvent(init);
  // The SDK's WebhookEvent constructor resets `event`; set it afterwards.
  event.event = name;
  return event.toJsonString();
}

const roomFinished = (sid: string, createdAtS = 1_800_000_000, id = 'EV_room1') =>
  eventJson('room_finished', { room: { sid, name: 'sip-room-1', creationTime: 1_799_999_900n, creationTimeMs: 1_799_999_900_250n }, id, createdAt: BigInt(createdAtS) });

async function signed(body: string, secret = API_SECRET) {
  return { headers: { Authorization: await signWebhook(body, API_KEY, secret) }, body, isBase64Encoded: false };
}

/** The facts a body maps to, exactly as the handler reads it (the verified, parsed event). */
async function factsOf(body: string): Promise<ReturnType<typeof webhookFacts>> {
  return webhookFacts(await receiver.receive(body, await signWebhook(body, API_KEY, API_SECRET)), { nowMs: NOW });
}

async function messageOf(body: string): Promise<FactMessage> {
  const mapped = await factsOf(body);
  if (mapped.kind !== 'facts') throw new Error(`ignored: ${mapped.reason}`);
  return mapped.message;
}

describe('webhook handler', () => {
  let sent: FactMessage[];
  let failure: Error | undefined;
  let deps: WebhookDeps;

  beforeEach(() => {
    sent = [];
    failure = undefined;
    deps = {
      receiver,
      now: () => NOW,
      facts: async () => ({
        send: async (message: FactMessage) => {
          if (failure) throw failure;
          sent.push(message);
          return { transport: 'embedded' as const, messageId: 'm', bytes: 1, offloaded: false };
        },
      }),
    };
  });

  it('sends the facts of a correctly signed room_finished through the fact sink', async () => {
    // Prepare
    const request = await signed(roomFinished('RM_abc'));
    // Act
    const response = await handleWebhook(request, deps);
    // Assess
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ result: 'recorded', callId: 'RM_abc' });
    expect(sent).toHaveLength(1);
    expect(factMessageSchema.parse(sent[0])).toEqual(sent[0]);
  });

  it('rejects a request without a signature', async () => {
    const response = await handleWebhook({ headers: {}, body: roomFinished('RM_abc'), isBase64Encoded: false }, deps);
    expect(response.statusCode).toBe(401);
    expect(sent).toEqual([]);
  });

  it('rejects a signature made with another secret', async () => {
    const response = await handleWebhook(await signed(roomFinished('RM_abc'), 'another-secret-that-is-long-enough-012345'), deps);
    expect(response.statusCode).toBe(401);
    expect(sent).toEqual([]);
  });

  it('rejects a body changed after signing', async () => {
    const request = await signed(roomFinished('RM_abc'));
    const response = await handleWebhook({ ...request, body: roomFinished('RM_other') }, deps);
    expect(response.statusCode).toBe(401);
    expect(sent).toEqual([]);
  });

  it('rejects a garbage token', async () => {
    const response = await handleWebhook({ headers: { authorization: 'not-a-jwt' }, body: '{}', isBase64Encoded: false }, deps);
    expect(response.statusCode).toBe(401);
  });

  it('reads base64 bodies (API Gateway) and lower-case headers (function URLs)', async () => {
    const body = roomFinished('RM_b64');
    const authorization = await signWebhook(body, API_KEY, API_SECRET);
    const response = await handleWebhook({ headers: { authorization }, body: Buffer.from(body).toString('base64'), isBase64Encoded: true }, deps);
    expect(response.statusCode).toBe(200);
    expect(sent[0]?.callId).toBe('RM_b64');
  });

  it('answers 400 to a correctly signed body that is not JSON', async () => {
    const response = await handleWebhook(await signed('not json'), deps);
    expect(response.statusCode).toBe(400);
  });

  it('acknowledges events that say nothing about a call without sending anything', async () => {
    const joined = eventJson('participant_joined', { room: { sid: 'RM_abc' }, participant: { identity: 'sip_caller', kind: 3 } });
    const agentLeft = eventJson('participant_left', { room: { sid: 'RM_abc' }, participant: { identity: 'agent', kind: 4 } });
    for (const body of [joined, agentLeft]) {
      const response = await handleWebhook(await signed(body), deps);
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body)).toMatchObject({ result: 'ignored' });
    }
    expect(sent).toEqual([]);
  });

  it('ignores a room whose SID is not a usable call id', async () => {
    const response = await handleWebhook(await signed(roomFinished('../etc/passwd')), deps);
    expect(JSON.parse(response.body)).toMatchObject({ result: 'ignored' });
    expect(sent).toEqual([]);
  });

  it('asks LiveKit to deliver again when the fact sink does not accept the facts', async () => {
    failure = new SendFailedError('queue down');
    expect((await handleWebhook(await signed(roomFinished('RM_abc')), deps)).statusCode).toBe(503);
    failure = new Error('a bug');
    expect((await handleWebhook(await signed(roomFinished('RM_abc')), deps)).statusCode).toBe(500);
  });

  it('sends the same message again when LiveKit retries an event (same id): merging it twice changes nothing', async () => {
    const body = roomFinished('RM_retry', 1_800_000_000, 'EV_same');
    await handleWebhook(await signed(body), { ...deps, now: () => NOW });
    await handleWebhook(await signed(body), { ...deps, now: () => NOW + 60_000 });
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual(sent[0]);
    expect(sent[0]?.writer).toBe('webhook:EV_same');
  });
});

describe('webhook facts', () => {
  it('room_finished: the room, its creation as start, the close as a weak end and an inferred outcome', async () => {
    // Act
    const message = await messageOf(roomFinished('RM_closed', 1_800_000_000, 'EV_rf'));
    // Assess
    expect(message).toMatchObject({ v: 2, kind: 'webhook', callId: 'RM_closed', writer: 'webhook:EV_rf', cumulative: false, sentAtMs: 1_800_000_000_000 });
    expect(message.facts).toEqual({
      roomName: 'sip-room-1',
      startedAtMs: 1_799_999_900_250,
      ended: { source: 'room_finished', atMs: 1_800_000_000_000 },
      outcome: { source: 'webhook', atMs: 1_800_000_000_000, reason: WORKER_LOST.webhook, endReason: 'worker_lost', evidence: 'room_finished' },
    });
  });

  it('room_finished: the creation time in seconds when LiveKit sends no milliseconds', async () => {
    const body = eventJson('room_finished', { room: { sid: 'RM_secs', name: 'r', creationTime: 1_799_999_000n }, id: 'EV_s', createdAt: 1_800_000_000n });
    expect((await messageOf(body)).facts.startedAtMs).toBe(1_799_999_000_000);
  });

  it('participant_left of the SIP participant: when the caller hung up, and why', async () => {
    // Prepare: kind SIP, and (older servers) a standard participant recognised by its sip.* attributes
    const byKind = eventJson('participant_left', {
      room: { sid: 'RM_left', name: 'sip-room-1' },
      participant: { identity: 'sip_+14155550100', kind: 3, disconnectReason: 1 },
      id: 'EV_pl',
      createdAt: 1_800_000_018n,
    });
    const byAttributes = eventJson('participant_left', {
      room: { sid: 'RM_left' },
      participant: { identity: 'caller', kind: 0, attributes: { 'sip.callStatus': 'hangup', 'sip.phoneNumber': '+14155550100' } },
      id: 'EV_pl2',
      createdAt: 1_800_000_018n,
    });
    // Act
    const [a, b] = [await messageOf(byKind), await messageOf(byAttributes)];
    // Assess
    expect(a.facts).toEqual({
      ended: { source: 'participant_left', atMs: 1_800_000_018_000, reason: 'sip participant left: CLIENT_INITIATED', endReason: 'caller_hangup', evidence: 'disconnect:CLIENT_INITIATED' },
    });
    expect(b.facts).toEqual({ ended: { source: 'participant_left', atMs: 1_800_000_018_000, reason: 'sip participant left: hangup' } });
  });

  it('knows every DisconnectReason by the name LiveKit gives it', () => {
    DISCONNECT_REASONS.forEach((name, value) => {
      const json = new ParticipantInfo({ disconnectReason: value }).toJson() as { disconnectReason?: string };
      expect(json.disconnectReason ?? 'UNKNOWN_REASON').toBe(name);
    });
    expect((new ParticipantInfo({ kind: 3 }).toJson() as { kind?: string }).kind).toBe('SIP');
  });

  it('maps every egress status 0..6 with LiveKit numbering, through the JSON LiveKit sends', async () => {
    for (let value = 0; value <= 6; value++) {
      // Prepare: the SDK's own name for the number
      const name = EgressStatus[value] as string;
      const body = eventJson('egress_updated', { egressInfo: { egressId: 'EG_1', roomId: 'RM_eg', status: value }, id: `EV_${value}`, createdAt: 1_800_000_000n });
      // Act
      const message = await messageOf(body);
      // Assess
      const status = message.facts.recording?.egress?.EG_1?.status;
      expect(status, name).toBe(EGRESS_STATUSES[value]);
      expect(`EGRESS_${status?.toUpperCase()}`).toBe(name);
      expect(egressStatusOf(value)).toBe(status);
      expect(egressStatusOf(name)).toBe(status);
    }
    expect(EGRESS_STATUSES.indexOf('complete')).toBe(EgressStatus.EGRESS_COMPLETE);
    expect(EGRESS_STATUSES.indexOf('limit_reached')).toBe(EgressStatus.EGRESS_LIMIT_REACHED);
    expect(egressStatusOf(7)).toBeUndefined();
  });

  it('egress_ended: status, file key, size, duration (ns → ms) and error', async () => {
    // Prepare
    const key = 'sip-room-1/20261124T061838.120_RM_eg/call_sip-room-1_20261124T061838.120_RM_eg.ogg';
    const ended = eventJson('egress_ended', {
      egressInfo: new EgressInfo({
        egressId: 'EG_done',
        roomId: 'RM_eg',
        roomName: 'sip-room-1',
        status: EgressStatus.EGRESS_LIMIT_REACHED,
        error: 'max duration reached',
        updatedAt: 1_800_000_061_500_000_000n,
        fileResults: [{ filename: key, size: 98_765n, duration: 61_250_000_000n, location: `s3://recordings/${key}` }],
      }),
      id: 'EV_end',
      createdAt: 1_800_000_062n,
    });
    // Act
    const message = await messageOf(ended);
    // Assess
    expect(message.callId).toBe('RM_eg');
    expect(message.writer).toBe('webhook:EV_end');
    expect(message.facts).toEqual({
      recording: { egress: { EG_done: { status: 'limit_reached', atMs: 1_800_000_061_500, key, error: 'max duration reached', sizeBytes: 98_765, durationMs: 61_250 } } },
    });
  });

  it('egress_started: the key and bucket the egress was asked for, no size yet', async () => {
    const started = eventJson('egress_started', {
      egressInfo: {
        egressId: 'EG_new',
        roomId: 'RM_eg',
        status: EgressStatus.EGRESS_STARTING,
        request: { case: 'roomComposite', value: { roomName: 'sip-room-1', fileOutputs: [{ filepath: 'a/b/call.ogg', output: { case: 's3', value: { bucket: 'recordings' } } }] } },
      },
      id: 'EV_start',
      createdAt: 1_800_000_001n,
    });
    const message = await messageOf(started);
    expect(message.facts.recording?.egress?.EG_new).toEqual({ status: 'starting', atMs: 1_800_000_001_000, key: 'a/b/call.ogg', bucket: 'recordings' });
  });

  it('names an event without id by its body, so a retry of it is still one writer', () => {
    const event = { event: 'room_finished', room: { sid: 'RM_noid', name: 'r' }, createdAt: 1_800_000_000 };
    const a = webhookFacts(event, { nowMs: NOW, bodyHash: 'abc123' });
    const b = webhookFacts(event, { nowMs: NOW + 5, bodyHash: 'abc123' });
    expect(a).toEqual(b);
    expect(a.kind === 'facts' && a.message.writer).toMatch(/^webhook:[0-9a-f]{40}$/);
  });
});

describe('webhook function without LiveKit credentials', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    resetConfigForTests();
    resetWebhookForTests();
  });

  it('fails naming the missing variable (the one LiveKit check), and needs no LIVEKIT_URL to verify signatures', async () => {
    // Prepare: a key but no secret, and no URL
    vi.stubEnv('LIVEKIT_URL', '');
    vi.stubEnv('LIVEKIT_API_KEY', API_KEY);
    vi.stubEnv('LIVEKIT_API_SECRET', '');
    resetConfigForTests();
    resetWebhookForTests();
    const body = roomFinished('RM_nocreds');
    const context = { functionName: 'calldata-webhook', awsRequestId: 'req-1' } as never;

    // Act
    const run = handler(await signed(body), context);

    // Assess: only the secret is named, never the URL the webhook does not need
    await expect(run).rejects.toBeInstanceOf(ConfigError);
    await expect(run).rejects.toThrow(/^invalid configuration: LIVEKIT_API_SECRET: is required to verify webhooks \(or LIVEKIT_API_SECRET_SECRET_ARN on Lambda\)$/);
  });
});
