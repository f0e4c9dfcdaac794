/**
 * A loopback stand-in for LiveKit's egress service, speaking the same Twirp JSON API the
 * livekit-server-sdk EgressClient calls (POST /twirp/livekit.Egress/<Method>):
 *
 *   StartRoomCompositeEgress  checks the signed token (roomRecord grant), records the request
 *   StopEgress                ends it: after `uploadDelayMs` uploads a small real OGG to the S3
 *                             location the request named (LocalStack), then reports COMPLETE
 *   ListEgress                the egresses it knows, filtered like LiveKit does
 *
 * LiveKit's real egress needs Chrome and GStreamer, which cannot run here; this stand-in lets
 * the recording function be tested against real HTTP, real tokens and a real S3 object.
 * It can also deliver signed egress_started / egress_ended webhooks (at once, or held until a
 * test releases them in the order it wants), and fail starts with 503s on demand.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AccessToken, EgressInfo, EgressStatus, TokenVerifier, WebhookEvent } from 'livekit-server-sdk';

// ---------------------------------------------------------------------------------------------
// A tiny valid Ogg Opus file, built here (no encoder or sox needed).

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? ((r << 1) ^ 0x04c11db7) >>> 0 : (r << 1) >>> 0;
    table[i] = r >>> 0;
  }
  return table;
})();

/** Ogg's CRC-32 (polynomial 0x04c11db7, no reflection, zero init, no final xor). */
export function oggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ byte) & 0xff] as number)) >>> 0;
  return crc >>> 0;
}

function oggPage(packets: Buffer[], flags: number, granule: bigint, serial: number, sequence: number): Buffer {
  const lacing: number[] = [];
  for (const packet of packets) {
    let left = packet.length;
    while (left >= 255) {
      lacing.push(255);
      left -= 255;
    }
    lacing.push(left);
  }
  const header = Buffer.alloc(27 + lacing.length);
  header.write('OggS', 0, 'ascii');
  header.writeUInt8(0, 4);
  header.writeUInt8(flags, 5);
  header.writeBigInt64LE(granule, 6);
  header.writeUInt32LE(serial, 14);
  header.writeUInt32LE(sequence, 18);
  header.writeUInt32LE(0, 22);
  header.writeUInt8(lacing.length, 26);
  Buffer.from(lacing).copy(header, 27);
  const page = Buffer.concat([header, ...packets]);
  page.writeUInt32LE(oggCrc(page), 22);
  return page;
}

/** An Ogg Opus stream of `frames` × 20 ms of silence (mono, 48 kHz). */
export function makeOgg(frames = 50, serial = 0x43414c4c): Buffer {
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'ascii');
  head.writeUInt8(1, 8); // version
  head.writeUInt8(1, 9); // channels
  head.writeUInt16LE(312, 10); // pre-skip
  head.writeUInt32LE(48_000, 12); // input sample rate
  head.writeInt16LE(0, 16); // output gain
  head.writeUInt8(0, 18); // mapping family
  const vendor = Buffer.from('calldata egress stand-in', 'utf8');
  const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
  tags.write('OpusTags', 0, 'ascii');
  tags.writeUInt32LE(vendor.length, 8);
  vendor.copy(tags, 12);
  tags.writeUInt32LE(0, 12 + vendor.length);
  // TOC 0xF8: CELT-only fullband 20 ms mono, one frame; 0xFF 0xFE encodes silence.
  const silence = Buffer.from([0xf8, 0xff, 0xfe]);
  const audio = Array.from({ length: frames }, () => silence);
  return Buffer.concat([
    oggPage([head], 0x02, 0n, serial, 0),
    oggPage([tags], 0x00, 0n, serial, 1),
    oggPage(audio, 0x04, BigInt(312 + frames * 960), serial, 2),
  ]);
}

/** Checks that bytes are a well-formed Ogg Opus stream: every page's CRC, BOS OpusHead, EOS. */
export function inspectOgg(bytes: Uint8Array): { pages: number; opus: boolean; durationMs: number } {
  const buf = Buffer.from(bytes);
  let offset = 0;
  let pages = 0;
  let opus = false;
  let granule = 0n;
  let eos = false;
  while (offset < buf.length) {
    if (buf.toString('ascii', offset, offset + 4) !== 'OggS') throw new Error(`no Ogg capture pattern at ${offset}`);
    const segments = buf.readUInt8(offset + 26);
    const lacing = buf.subarray(offset + 27, offset + 27 + segments);
    const bodyLength = lacing.reduce((a, b) => a + b, 0);
    const end = offset + 27 + segments + bodyLength;
    const page = Buffer.from(buf.subarray(offset, end));
    const crc = page.readUInt32LE(22);
    page.writeUInt32LE(0, 22);
    if (oggCrc(page) !== crc) throw new Error(`bad CRC on page ${pages}`);
    if (pages === 0) opus = page.toString('ascii', 27 + segments, 27 + segments + 8) === 'OpusHead' && (page.readUInt8(5) & 0x02) === 0x02;
    granule = page.readBigInt64LE(6);
    eos = (page.readUInt8(5) & 0x04) === 0x04;
    pages++;
    offset = end;
  }
  if (!eos) throw new Error('stream has no end-of-stream page');
  return { pages, opus, durationMs: Number(((granule - 312n) * 1000n) / 48_000n) };
}

// ---------------------------------------------------------------------------------------------
// Signed webhooks, as LiveKit sends them.

/** The Authorization header LiveKit puts on a webhook: a JWT whose sha256 claim is the body's hash. */
export async function signWebhook(body: string, apiKey: string, apiSecret: string): Promise<string> {
  const token = new AccessToken(apiKey, apiSecret);
  token.sha256 = createHash('sha256').update(body, 'utf8').digest('base64');
  return token.toJwt();
}

export async function webhookRequest(event: WebhookEvent, apiKey: string, apiSecret: string): Promise<{ body: string; authorization: string }> {
  const body = event.toJsonString();
  return { body, authorization: await signWebhook(body, apiKey, apiSecret) };
}

// ---------------------------------------------------------------------------------------------
// The Twirp service.

interface S3Target {
  bucket: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  accessKey?: string;
  secret?: string;
}

export interface StandInEgress {
  info: EgressInfo;
  key: string;
  s3: S3Target;
}

export type StandInWebhookEvent = 'egress_started' | 'egress_ended';

export interface EgressStandInOptions {
  apiKey: string;
  apiSecret: string;
  /** Delay between StopEgress (or endRoom) and the upload + COMPLETE. */
  uploadDelayMs?: number;
  /** Receives signed webhooks, e.g. the webhook handler. */
  webhook?: (request: { body: string; authorization: string }) => Promise<unknown>;
  /** Which events go to `webhook` (default: egress_ended only). */
  webhookEvents?: readonly StandInWebhookEvent[];
  /** Keep webhooks in `held` until `releaseWebhooks` (a test decides their order). */
  holdWebhooks?: boolean;
  ogg?: Buffer;
}

export interface HeldWebhook {
  event: StandInWebhookEvent;
  egressId: string;
  roomName: string;
  request: { body: string; authorization: string };
}

export interface RecordedRequest {
  method: string;
  body: Record<string, unknown>;
}

export class EgressStandIn {
  readonly requests: RecordedRequest[] = [];
  readonly egresses = new Map<string, StandInEgress>();
  readonly uploads: { bucket: string; key: string; bytes: number }[] = [];
  readonly ogg: Buffer;
  url = '';
  /** Start requests still to fail, with this status and message. */
  private startFailures: { status: number; code: string; msg: string }[] = [];
  private server: Server | undefined;
  private readonly options: EgressStandInOptions;
  /** Delay between StopEgress (or endRoom) and the upload + COMPLETE; tests may change it between calls. */
  uploadDelayMs: number;
  /** Keep webhooks in `held` until `releaseWebhooks`; tests may change it between calls. */
  holdWebhooks: boolean;
  /** Rooms LiveKit closed: starting an egress for one fails like LiveKit's (404 room does not exist). */
  readonly endedRooms = new Set<string>();
  /** Every webhook delivered (or held), for redelivery as LiveKit's retries would. */
  readonly sentWebhooks: HeldWebhook[] = [];
  private readonly verifier: TokenVerifier;
  private readonly pending = new Set<Promise<unknown>>();
  private counter = 0;
  /** Room SIDs by name (the recording function sends names; webhooks carry SIDs). */
  readonly roomIds = new Map<string, string>();
  /** Webhooks kept back (holdWebhooks), in the order LiveKit would have sent them. */
  readonly held: HeldWebhook[] = [];
  /** Webhook deliveries that threw (LiveKit would retry them). */
  readonly webhookErrors: unknown[] = [];

  constructor(options: EgressStandInOptions) {
    this.options = options;
    this.uploadDelayMs = options.uploadDelayMs ?? 0;
    this.holdWebhooks = options.holdWebhooks ?? false;
    this.verifier = new TokenVerifier(options.apiKey, options.apiSecret);
    this.ogg = options.ogg ?? makeOgg();
  }

  failStarts(count: number, status = 503, msg = 'no response from servers', code = 'unavailable'): void {
    for (let i = 0; i < count; i++) this.startFailures.push({ status, code, msg });
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => this.reply(res, 500, { code: 'internal', msg: String(error) }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    return this.url;
  }

  async close(): Promise<void> {
    await this.settled();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Waits for uploads and webhooks still in progress. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Uploads or webhook deliveries in progress. */
  get busy(): number {
    return this.pending.size;
  }

  /** The egresses started for a room. */
  egressesOf(roomName: string): StandInEgress[] {
    return [...this.egresses.values()].filter((e) => e.info.roomName === roomName);
  }

  /** Delivers again webhooks already sent (LiveKit retries with the same event id). */
  async redeliver(which: (sent: HeldWebhook) => boolean = () => true): Promise<number> {
    const chosen = this.sentWebhooks.filter(which);
    for (const item of chosen) await this.deliver(item.request);
    return chosen.length;
  }

  /** Delivers held webhooks (those `which` selects, default all) in order and forgets them. */
  async releaseWebhooks(which: (held: HeldWebhook) => boolean = () => true): Promise<number> {
    const chosen = this.held.filter(which);
    for (const item of chosen) this.held.splice(this.held.indexOf(item), 1);
    for (const item of chosen) await this.deliver(item.request);
    return chosen.length;
  }

  private async deliver(request: { body: string; authorization: string }): Promise<void> {
    try {
      await this.options.webhook?.(request);
    } catch (error) {
      this.webhookErrors.push(error);
    }
  }

  /** Signs and delivers (or holds) one webhook about an egress. */
  private async sendWebhook(name: StandInWebhookEvent, info: EgressInfo): Promise<void> {
    if (!this.options.webhook || !(this.options.webhookEvents ?? ['egress_ended']).includes(name)) return;
    const event = new WebhookEvent({ egressInfo: info.clone(), id: `EV_${name}_${info.egressId}`, createdAt: BigInt(Math.floor(Date.now() / 1000)) });
    // The SDK's WebhookEvent constructor resets `event`; set it afterwards.
    event.event = name;
    const request = await webhookRequest(event, this.options.apiKey, this.options.apiSecret);
    const item = { event: name, egressId: info.egressId, roomName: info.roomName, request };
    this.sentWebhooks.push(item);
    if (this.holdWebhooks) this.held.push(item);
    else await this.deliver(request);
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const match = /^\/twirp\/livekit\.Egress\/(\w+)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) return this.reply(res, 404, { code: 'bad_route', msg: 'no such method' });
    const method = match[1] as string;
    const token = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    try {
      const claims = await this.verifier.verify(token);
      if (!claims.video?.roomRecord) return this.reply(res, 401, { code: 'permission_denied', msg: 'roomRecord grant required' });
    } catch {
      return this.reply(res, 401, { code: 'unauthenticated', msg: 'invalid token' });
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    this.requests.push({ method, body });
    switch (method) {
      case 'StartRoomCompositeEgress':
        return this.startEgress(body, res);
      case 'StopEgress':
        return this.stopEgress(String(body.egressId ?? ''), res);
      case 'ListEgress': {
        const items = [...this.egresses.values()]
          .map((e) => e.info)
          .filter((info) => (!body.egressId || info.egressId === body.egressId) && (!body.roomName || info.roomName === body.roomName))
          .filter((info) => !body.active || info.status < EgressStatus.EGRESS_COMPLETE);
        return this.reply(res, 200, `{"items":[${items.map((i) => i.toJsonString()).join(',')}]}`);
      }
      default:
        return this.reply(res, 404, { code: 'bad_route', msg: `method ${method} not supported by the stand-in` });
    }
  }

  private startEgress(body: Record<string, unknown>, res: ServerResponse): void {
    const failure = this.startFailures.shift();
    if (failure) return this.reply(res, failure.status, { code: failure.code, msg: failure.msg });
    const roomName = String(body.roomName ?? '');
    if (this.endedRooms.has(roomName)) return this.reply(res, 404, { code: 'not_found', msg: 'requested room does not exist' });
    const file = ((body.fileOutputs as Record<string, unknown>[] | undefined)?.[0] ?? body.file) as Record<string, unknown> | undefined;
    const s3 = file?.s3 as S3Target | undefined;
    if (!roomName || !file || !s3?.bucket || typeof file.filepath !== 'string') {
      return this.reply(res, 400, { code: 'invalid_argument', msg: 'request has missing or invalid field: output' });
    }
    this.counter++;
    const egressId = `EG_standin${this.counter}`;
    const info = new EgressInfo({
      egressId,
      roomName,
      roomId: this.roomIds.get(roomName) ?? `RM_${roomName.replace(/[^A-Za-z0-9]/g, '').slice(0, 12)}`,
      status: EgressStatus.EGRESS_ACTIVE,
      startedAt: BigInt(Date.now()) * 1_000_000n,
      updatedAt: BigInt(Date.now()) * 1_000_000n,
    });
    this.egresses.set(egressId, { info, key: file.filepath, s3 });
    const starting = info.clone();
    starting.status = EgressStatus.EGRESS_STARTING;
    this.reply(res, 200, starting.toJsonString());
    const started = this.sendWebhook('egress_started', info);
    this.pending.add(started);
    void started.finally(() => this.pending.delete(started));
  }

  private stopEgress(egressId: string, res: ServerResponse): void {
    const egress = this.egresses.get(egressId);
    if (!egress) return this.reply(res, 404, { code: 'not_found', msg: 'egress not found' });
    if (egress.info.status >= EgressStatus.EGRESS_ENDING) {
      return this.reply(res, 412, { code: 'failed_precondition', msg: `egress with status ${EgressStatus[egress.info.status]} cannot be stopped` });
    }
    this.finish(egress);
    this.reply(res, 200, egress.info.toJsonString());
  }

  /** What LiveKit does when the room closes: every active egress of the room ends (and no new one starts). */
  endRoom(roomName: string): void {
    this.endedRooms.add(roomName);
    for (const egress of this.egresses.values()) {
      if (egress.info.roomName === roomName && egress.info.status < EgressStatus.EGRESS_ENDING) this.finish(egress);
    }
  }

  private finish(egress: StandInEgress): void {
    egress.info.status = EgressStatus.EGRESS_ENDING;
    const work = (async () => {
      await new Promise((resolve) => setTimeout(resolve, this.uploadDelayMs));
      const { s3, key } = egress;
      const client = new S3Client({
        region: s3.region || 'us-east-1',
        endpoint: s3.endpoint || undefined,
        forcePathStyle: s3.forcePathStyle ?? false,
        credentials: s3.accessKey && s3.secret ? { accessKeyId: s3.accessKey, secretAccessKey: s3.secret } : undefined,
      });
      try {
        await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: this.ogg, ContentType: 'audio/ogg' }));
        this.uploads.push({ bucket: s3.bucket, key, bytes: this.ogg.length });
        const { durationMs } = inspectOgg(this.ogg);
        const now = BigInt(Date.now()) * 1_000_000n;
        const previous = egress.info;
        egress.info = new EgressInfo({
          egressId: previous.egressId,
          roomId: previous.roomId,
          roomName: previous.roomName,
          status: EgressStatus.EGRESS_COMPLETE,
          startedAt: previous.startedAt,
          updatedAt: now,
          endedAt: now,
          fileResults: [{ filename: key, size: BigInt(this.ogg.length), duration: BigInt(durationMs) * 1_000_000n, location: `s3://${s3.bucket}/${key}`, startedAt: previous.startedAt, endedAt: now }],
        });
      } catch (error) {
        egress.info.status = EgressStatus.EGRESS_FAILED;
        egress.info.error = `upload failed: ${(error as Error).message}`;
      } finally {
        client.destroy();
      }
      await this.sendWebhook('egress_ended', egress.info);
    })();
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }
}
