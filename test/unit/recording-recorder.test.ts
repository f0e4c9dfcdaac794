/**
 * The recording function's commands with LiveKit faked at the SDK edge (an EgressClient
 * stand-in object), markers and objects in memory, and the reported facts collected. The
 * races between commands of one call (start vs discard, discard vs restore, two starts) are
 * proved with fast-check's scheduler, which interleaves every step of the commands.
 */
import fc from 'fast-check';
import { EgressInfo, EgressStatus } from 'livekit-server-sdk';
import { beforeEach, describe, expect, it } from 'vitest';
import { factMessageSchema, MESSAGE_VERSION, type FactMessage, type RecordingCommand } from '../../functions/contract/facts.ts';
import { quarantineKey } from '../../functions/domain/recorder.ts';
import type { EgressApi } from '../../functions/recording/egress.ts';
import type { RecordingObjects } from '../../functions/recording/objects.ts';
import { Recorder } from '../../functions/recording/recorder.ts';
import { RECORDING_TIMING } from '../../functions/config/config.ts';
import { recordingSettings } from '../../functions/recording/settings.ts';
import { MemoryRecordingStateStore } from '../../functions/recording/state.ts';
import { RecordingObjectError } from '../../functions/recording/errors.ts';

const BUCKET = 'recordings';
const CALL = 'RM_call';
const KEY = 'sip-room-1/20261124T061838.120_RM_call/call_sip-room-1_20261124T061838.120_RM_call.ogg';
const QUARANTINE = `_calldata-discarded/${KEY}`;

type Failure = { status?: number; message: string; name?: string };

class FakeEgress implements EgressApi {
  readonly started: { roomName: string; output: Record<string, unknown>; opts: unknown }[] = [];
  readonly stopped: string[] = [];
  startFailures: Failure[] = [];
  /** Runs between the start request and its answer (to interleave another command). */
  duringStart: (() => Promise<void>) | undefined;
  readonly egress = new Map<string, EgressInfo>();
  /** What the egress reports when it ends. */
  endWith = { status: EgressStatus.EGRESS_COMPLETE, size: 4_096n, durationNs: 12_500_000_000n, error: '' };
  /** False: a stopped egress stays ENDING (its upload takes longer than any wait). */
  endOnStop = true;
  /** Called when an egress ends: the upload lands. */
  onEnd: ((info: EgressInfo) => Promise<void> | void) | undefined;

  async startRoomCompositeEgress(roomName: string, output: unknown, opts?: unknown): Promise<EgressInfo> {
    this.started.push({ roomName, output: output as Record<string, unknown>, opts });
    const failure = this.startFailures.shift();
    if (failure) throw Object.assign(new Error(failure.message), failure.name ? { name: failure.name } : {}, failure.status ? { status: failure.status } : {});
    if (this.duringStart) await this.duringStart();
    const info = new EgressInfo({ egressId: `EG_${this.started.length}`, roomName, roomId: CALL, status: EgressStatus.EGRESS_STARTING });
    this.egress.set(info.egressId, info);
    return info.clone();
  }
  async end(egressId: string): Promise<EgressInfo> {
    const info = this.egress.get(egressId)!;
    if (info.status >= EgressStatus.EGRESS_COMPLETE) return info;
    info.status = this.endWith.status;
    info.error = this.endWith.error;
    info.updatedAt = 1_800_000_000_000_000_000n;
    info.fileResults = [{ filename: KEY, size: this.endWith.size, duration: this.endWith.durationNs, location: `s3://${BUCKET}/${KEY}` } as never];
    await this.onEnd?.(info);
    return info;
  }
  async stopEgress(egressId: string): Promise<EgressInfo> {
    this.stopped.push(egressId);
    const info = this.egress.get(egressId);
    if (!info) throw Object.assign(new Error('egress not found'), { status: 404 });
    if (info.status >= EgressStatus.EGRESS_ENDING) throw Object.assign(new Error('egress cannot be stopped'), { status: 412 });
    info.status = EgressStatus.EGRESS_ENDING;
    if (this.endOnStop) await this.end(egressId);
    return info.clone();
  }
  async listEgress(options?: { egressId?: string }): Promise<EgressInfo[]> {
    const info = options?.egressId ? this.egress.get(options.egressId) : undefined;
    return info ? [info.clone()] : [];
  }
}

/** Objects in memory, with a hook before every operation (the scheduler interleaves there). */
class MemoryObjects implements RecordingObjects {
  readonly objects = new Map<string, string>();
  beforeOp: ((op: string) => Promise<void>) | undefined;
  failDeletes = 0;
  async exists(bucket: string, key: string): Promise<boolean> {
    await this.beforeOp?.('exists');
    return this.objects.has(`${bucket}/${key}`);
  }
  async copy(bucket: string, from: string, to: string): Promise<boolean> {
    await this.beforeOp?.('copy:read');
    const body = this.objects.get(`${bucket}/${from}`);
    if (body === undefined) return false;
    await this.beforeOp?.('copy:write');
    this.objects.set(`${bucket}/${to}`, body);
    return true;
  }
  async delete(bucket: string, key: string): Promise<void> {
    await this.beforeOp?.('delete');
    if (this.failDeletes > 0) {
      this.failDeletes--;
      throw new RecordingObjectError('S3 down');
    }
    this.objects.delete(`${bucket}/${key}`);
  }
  has(key: string): boolean {
    return this.objects.has(`${BUCKET}/${key}`);
  }
  put(key: string, body = 'ogg'): void {
    this.objects.set(`${BUCKET}/${key}`, body);
  }
}

function harness(options: { callRecording?: boolean; discardWaitMs?: number } = {}) {
  const settings = recordingSettings({
    livekit: { url: 'http://127.0.0.1:1', apiKey: 'k', apiSecret: 's' },
    recordingTiming: { ...RECORDING_TIMING, egressBackoffMs: 0, discardWaitMs: options.discardWaitMs ?? 200, discardPollMs: 50 },
  });
  const egress = new FakeEgress();
  const state = new MemoryRecordingStateStore();
  const objects = new MemoryObjects();
  const reported: FactMessage[] = [];
  let clock = Date.UTC(2026, 10, 24, 0, 48, 40);
  let ids = 0;
  // The egress's upload lands at the key it was asked for when it ends.
  egress.onEnd = () => objects.put(KEY);
  const recorder = new Recorder({
    callRecording: options.callRecording ?? true,
    s3: { bucket: BUCKET, region: 'us-east-1', forcePathStyle: true, endpoint: 'http://127.0.0.1:4566', accessKeyId: 'a', secretAccessKey: 'b' },
    settings,
    egress: () => egress,
    state,
    objects,
    report: async (message) => {
      // Exactly what a fact sink accepts.
      reported.push(factMessageSchema.parse(message));
    },
    now: () => (clock += 10),
    sleep: async () => undefined,
    uuid: () => `u${++ids}`,
  });
  return { egress, state, objects, reported, recorder, settings };
}

function command(action: RecordingCommand['action'], egressIds: string[] = []): RecordingCommand {
  return { v: MESSAGE_VERSION, type: 'recording', action, callId: CALL, roomName: 'sip-room-1', key: KEY, bucket: 'worker-bucket', egressIds, issuedAtMs: 1 };
}

const recordingFacts = (reported: FactMessage[]) => reported.map((m) => m.facts.recording);

describe('start', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('starts an audio-only OGG room composite egress with layout speaker at the key, in its own bucket, and reports it', async () => {
    // Act
    const result = await h.recorder.run(command('start'));
    // Assess: the request
    expect(result).toBe('started');
    expect(h.egress.started).toHaveLength(1);
    const [request] = h.egress.started;
    expect(request?.roomName).toBe('sip-room-1');
    expect(request?.opts).toEqual({ layout: 'speaker', audioOnly: true });
    expect(request?.output).toMatchObject({ fileType: 2, filepath: KEY, output: { case: 's3', value: { bucket: BUCKET, forcePathStyle: true } } });
    // ...and the report: one fact, from a writer of its own
    expect(h.reported).toHaveLength(1);
    expect(h.reported[0]).toMatchObject({ kind: 'recording', callId: CALL, writer: `recording:${CALL}:start:EG_1`, cumulative: false });
    expect(h.reported[0]?.facts).toEqual({ recording: { egress: { EG_1: { status: 'starting', atMs: expect.any(Number), key: KEY, bucket: BUCKET } } } });
  });

  it('starts no second egress for a repeated command, and repeats the same report', async () => {
    await h.recorder.run(command('start'));
    const again = await h.recorder.run(command('start'));
    expect(again).toBe('reported');
    expect(h.egress.started).toHaveLength(1);
    expect(h.reported).toHaveLength(2);
    expect(h.reported[1]).toEqual(h.reported[0]);
  });

  it('starts one egress when two starts run at once', async () => {
    // Prepare: the second start arrives while LiveKit is answering the first
    let second: Promise<string> | undefined;
    h.egress.duringStart = async () => {
      h.egress.duringStart = undefined;
      second = h.recorder.run(command('start'));
      await second;
    };
    // Act
    const first = await h.recorder.run(command('start'));
    // Assess
    expect([first, await second]).toEqual(['started', 'in_flight']);
    expect(h.egress.started).toHaveLength(1);
  });

  it('takes over the claim of a start that died longer ago than the start lease', async () => {
    await h.state.claimStart(CALL, { token: 'dead', atMs: Date.UTC(2026, 10, 23) }, 1);
    expect(await h.recorder.run(command('start'))).toBe('started');
  });

  it('retries a 503 from the egress service and starts once it answers', async () => {
    h.egress.startFailures = [
      { status: 503, message: 'no response from servers' },
      { status: 503, message: 'no response from servers' },
    ];
    expect(await h.recorder.run(command('start'))).toBe('started');
    expect(h.egress.started).toHaveLength(3);
  });

  it('reports the start error after the last attempt, and lets a later start try again', async () => {
    // Prepare
    h.egress.startFailures = Array.from({ length: 3 }, () => ({ status: 503, message: 'no response from servers' }));
    // Act
    const result = await h.recorder.run(command('start'));
    // Assess
    expect(result).toBe('start_failed');
    expect(h.egress.started).toHaveLength(3);
    expect(recordingFacts(h.reported)).toEqual([{ startError: { atMs: expect.any(Number), error: expect.stringMatching(/503.*no response from servers/) } }]);
    expect(await h.recorder.run(command('start'))).toBe('started');
  });

  it('does not retry a request LiveKit rejected', async () => {
    h.egress.startFailures = [{ status: 404, message: 'requested room does not exist' }];
    expect(await h.recorder.run(command('start'))).toBe('start_failed');
    expect(h.egress.started).toHaveLength(1);
    expect(h.reported[0]?.facts.recording?.startError?.error).toMatch(/rejected \(404\)/);
  });

  it('starts nothing when the function itself runs without CALL_RECORDING', async () => {
    const off = harness({ callRecording: false });
    expect(await off.recorder.run(command('start'))).toBe('not_recording');
    expect(off.egress.started).toEqual([]);
    expect(off.reported).toEqual([]);
  });

  it('starts nothing for a call that was discarded before the start ran', async () => {
    await h.recorder.run(command('discard'));
    expect(await h.recorder.run(command('start'))).toBe('discarded');
    expect(h.egress.started).toEqual([]);
  });

  it('stops and moves out a recording whose call was discarded while it started', async () => {
    // Prepare: the discard runs while LiveKit answers the start (it finds no egress to stop)
    h.egress.duringStart = async () => {
      h.egress.duringStart = undefined;
      expect(await h.recorder.run(command('discard'))).toBe('discarded');
    };
    // Act
    const result = await h.recorder.run(command('start'));
    // Assess
    expect(result).toBe('discarded');
    expect(h.egress.stopped).toEqual(['EG_1']);
    expect(h.objects.has(KEY)).toBe(false);
    expect(h.objects.has(QUARANTINE)).toBe(true);
  });
});

describe('finish', () => {
  it('stops the egress and reports its result: status, key, size and duration', async () => {
    // Prepare
    const h = harness();
    await h.recorder.run(command('start'));
    // Act
    const result = await h.recorder.run(command('finish', ['EG_1']));
    // Assess
    expect(result).toBe('finished');
    expect(h.egress.stopped).toEqual(['EG_1']);
    expect(h.reported[1]).toMatchObject({ writer: `recording:${CALL}:finish:EG_1` });
    expect(h.reported[1]?.facts).toEqual({
      recording: { egress: { EG_1: { status: 'complete', atMs: 1_800_000_000_000, key: KEY, bucket: BUCKET, sizeBytes: 4_096, durationMs: 12_500 } } },
    });
  });

  it('reports nothing when the egress is still uploading after the wait (egress_ended will)', async () => {
    const h = harness();
    await h.recorder.run(command('start'));
    h.egress.endOnStop = false;
    expect(await h.recorder.run(command('finish', ['EG_1']))).toBe('still_running');
    expect(h.reported).toHaveLength(1);
  });

  it('finds the egress from its marker when the command names none', async () => {
    const h = harness();
    await h.recorder.run(command('start'));
    await h.recorder.run(command('finish', []));
    expect(h.egress.stopped).toEqual(['EG_1']);
  });

  it('reports an egress that had already ended (stop refused with 412)', async () => {
    const h = harness();
    await h.recorder.run(command('start'));
    await h.egress.end('EG_1');
    expect(await h.recorder.run(command('finish', ['EG_1']))).toBe('finished');
    expect(h.reported[1]?.facts.recording?.egress?.EG_1?.status).toBe('complete');
  });
});

describe('discard and restore', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('discard: stops the egress, waits for its upload, moves the file to quarantine and reports only the discard', async () => {
    // Prepare
    await h.recorder.run(command('start'));
    h.reported.length = 0;
    // Act
    const result = await h.recorder.run(command('discard', ['EG_1']));
    // Assess
    expect(result).toBe('discarded');
    expect(h.egress.stopped).toEqual(['EG_1']);
    expect(h.objects.has(KEY)).toBe(false);
    expect(h.objects.has(QUARANTINE)).toBe(true);
    // No egress fact: a terminal one would make the plan ask for another discard, forever.
    expect(recordingFacts(h.reported)).toEqual([{ discardedAtMs: expect.any(Number) }]);
    expect(h.reported[0]?.writer).toMatch(new RegExp(`^recording:${CALL}:discard:`));
  });

  it('discard: an upload that lands after the wait is moved by the next discard (the one its egress_ended brings)', async () => {
    await h.recorder.run(command('start'));
    h.egress.endOnStop = false;
    expect(await h.recorder.run(command('discard', ['EG_1']))).toBe('discarded');
    expect(h.objects.has(KEY)).toBe(false);
    // The upload lands, LiveKit reports egress_ended, the plan discards again
    await h.egress.end('EG_1');
    expect(h.objects.has(KEY)).toBe(true);
    expect(await h.recorder.run(command('discard', ['EG_1']))).toBe('discarded');
    expect(h.objects.has(KEY)).toBe(false);
    expect(h.objects.has(QUARANTINE)).toBe(true);
  });

  it('restore: moves the file back to its key, drops the quarantined copy and reports it', async () => {
    // Prepare
    await h.recorder.run(command('start'));
    await h.recorder.run(command('discard', ['EG_1']));
    h.reported.length = 0;
    // Act
    const result = await h.recorder.run(command('restore', ['EG_1']));
    // Assess
    expect(result).toBe('restored');
    expect(h.objects.has(KEY)).toBe(true);
    expect(h.objects.has(QUARANTINE)).toBe(false);
    expect(recordingFacts(h.reported)).toEqual([{ restoredAtMs: expect.any(Number) }]);
  });

  it('a discard that arrives after the restore moves nothing and reports nothing', async () => {
    await h.recorder.run(command('start'));
    await h.recorder.run(command('discard', ['EG_1']));
    await h.recorder.run(command('restore', ['EG_1']));
    h.reported.length = 0;
    expect(await h.recorder.run(command('discard', ['EG_1']))).toBe('answered');
    expect(h.objects.has(KEY)).toBe(true);
    expect(h.reported).toEqual([]);
  });

  it('an S3 failure fails the command (the queue runs it again) and running it again finishes the move', async () => {
    await h.recorder.run(command('start'));
    await h.egress.end('EG_1');
    h.objects.failDeletes = 1;
    await expect(h.recorder.run(command('discard', ['EG_1']))).rejects.toMatchObject({ retryable: true });
    expect(await h.recorder.run(command('discard', ['EG_1']))).toBe('discarded');
    expect(h.objects.has(KEY)).toBe(false);
    expect(h.objects.has(QUARANTINE)).toBe(true);
  });

  it('quarantine keys keep the whole key under the discard prefix', () => {
    expect(quarantineKey(KEY)).toBe(QUARANTINE);
  });
});

describe('commands of one call running at the same time (every interleaving)', () => {
  /**
   * Runs the commands concurrently, each marker and object operation a scheduling point; a
   * command starts after `delays[i]` scheduling points of its own, so that short commands also
   * land in the middle of long ones.
   */
  async function interleave(s: fc.Scheduler, h: ReturnType<typeof harness>, commands: RecordingCommand[], delays: readonly number[] = []) {
    h.state.beforeOp = (op) => s.schedule(Promise.resolve(), op);
    h.objects.beforeOp = (op) => s.schedule(Promise.resolve(), op);
    const delayed = async (c: RecordingCommand, delay: number) => {
      for (let i = 0; i < delay; i++) await s.schedule(Promise.resolve(), `wait:${c.action}`);
      return h.recorder.run(c);
    };
    await s.waitFor(Promise.all(commands.map((c, i) => delayed(c, delays[i] ?? 0))));
    h.state.beforeOp = undefined;
    h.objects.beforeOp = undefined;
  }

  const delaysArb = fc.array(fc.nat(12), { minLength: 3, maxLength: 3 });

  it('discards racing a restore never lose an answered call’s recording', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 1, max: 2 }), fc.boolean(), delaysArb, async (s, discards, alreadyMoved, delays) => {
        // Prepare: the egress ended; its file is at the key, or an earlier discard moved it already
        const h = harness();
        await h.recorder.run(command('start'));
        await h.egress.end('EG_1');
        if (alreadyMoved) await h.recorder.run(command('discard', ['EG_1']));
        // Act: a restore (the answer arrived) and late discards, all at once
        await interleave(s, h, [command('restore', ['EG_1']), ...Array.from({ length: discards }, () => command('discard', ['EG_1']))], delays);
        // Assess: the answered call's file is at its key, and a discard after the restore changes nothing
        expect(h.objects.has(KEY)).toBe(true);
        await h.recorder.run(command('discard', ['EG_1']));
        expect(h.objects.has(KEY)).toBe(true);
      }),
      { numRuns: 1_000 },
    );
  });

  it('a start racing a discard never leaves the recording running or at its key', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), delaysArb, async (s, delays) => {
        // Prepare
        const h = harness();
        h.egress.duringStart = () => s.schedule(Promise.resolve(), 'livekit answers');
        // Act
        await interleave(s, h, [command('start'), command('discard')], delays);
        // Assess: whichever saw the other, the egress was stopped and its file moved out
        for (const info of h.egress.egress.values()) expect(info.status).toBeGreaterThanOrEqual(EgressStatus.EGRESS_COMPLETE);
        expect(h.objects.has(KEY)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('two starts racing start exactly one egress', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), delaysArb, async (s, delays) => {
        const h = harness();
        h.egress.duringStart = () => s.schedule(Promise.resolve(), 'livekit answers');
        await interleave(s, h, [command('start'), command('start')], delays);
        expect(h.egress.started).toHaveLength(1);
      }),
      { numRuns: 100 },
    );
  });
});
