/**
 * The recording domain with LiveKit faked at the SDK edge (an EgressClient stand-in object)
 * and in-memory recording state, objects and metadata backend. The metadata is written by
 * the real persist domain, exactly as the persist function would.
 */
import { EgressInfo, EgressStatus } from 'livekit-server-sdk';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import type { Snapshot } from '../../functions/contract/snapshot.ts';
import { persistSnapshots } from '../../functions/persist/persist.ts';
import type { EgressApi, RecordingObjects } from '../../functions/recording/egress.ts';
import { EgressRejectedError, NotPersistedYetError } from '../../functions/recording/errors.ts';
import { Recorder } from '../../functions/recording/recorder.ts';
import { loadRecordingSettings } from '../../functions/recording/settings.ts';
import { MemoryRecordingStateStore } from '../../functions/recording/state.ts';
import type { StorageBackend, StoredArtifact, WriteOutcome } from '../../functions/storage/backend.ts';
import type { ArtifactKind, ArtifactRecord, MetadataDocument } from '../../functions/storage/documents.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const TZ = 'Asia/Kolkata';

/** A storage backend with the real sequence guard, and a hook to slip in a competing write. */
class MemoryBackend implements StorageBackend {
  readonly name = 'memory';
  readonly data = new Map<string, StoredArtifact>();
  beforeWrite: (() => Promise<void>) | undefined;
  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    const hook = this.beforeWrite;
    this.beforeWrite = undefined;
    if (hook) await hook();
    return records.map((record) => {
      const key = `${record.kind}:${record.callId}`;
      const stored = this.data.get(key);
      const location = `${record.paths.folder}/${record.kind === 'metadata' ? record.paths.metadataFile : record.paths.transcriptionFile}`;
      if (stored && stored.seq >= record.seq) return { location, applied: false };
      this.data.set(key, { seq: record.seq, document: structuredClone(record.document), location });
      return { location, applied: true };
    });
  }
  async read(kind: ArtifactKind, callId: string): Promise<StoredArtifact | undefined> {
    return this.data.get(`${kind}:${callId}`);
  }
  async close(): Promise<void> {}
  metadata(callId: string): MetadataDocument & Record<string, unknown> {
    return this.data.get(`metadata:${callId}`)?.document as MetadataDocument & Record<string, unknown>;
  }
}

type Failure = { status?: number; message: string; name?: string };

class FakeEgress implements EgressApi {
  readonly started: { roomName: string; output: unknown; opts: unknown }[] = [];
  readonly stopped: string[] = [];
  startFailures: Failure[] = [];
  /** Called between the start request and its answer (to interleave a discard). */
  duringStart: (() => Promise<void>) | undefined;
  egress = new Map<string, EgressInfo>();
  /** Size/duration the egress reports when it ends. */
  endWith = { status: EgressStatus.EGRESS_COMPLETE, size: 4_096n, durationNs: 12_500_000_000n, error: '' };
  endOnStop = true;

  async startRoomCompositeEgress(roomName: string, output: unknown, opts?: unknown): Promise<EgressInfo> {
    this.started.push({ roomName, output, opts });
    const failure = this.startFailures.shift();
    if (failure) throw Object.assign(new Error(failure.message), failure.name ? { name: failure.name } : {}, failure.status ? { status: failure.status } : {});
    if (this.duringStart) await this.duringStart();
    const info = new EgressInfo({ egressId: `EG_${this.started.length}`, roomName, roomId: 'RM_call', status: EgressStatus.EGRESS_STARTING });
    this.egress.set(info.egressId, info);
    return info;
  }
  end(egressId: string): EgressInfo {
    const info = this.egress.get(egressId)!;
    info.status = this.endWith.status;
    info.error = this.endWith.error;
    info.fileResults = [{ filename: 'x.ogg', size: this.endWith.size, duration: this.endWith.durationNs, location: 's3://x', startedAt: 0n, endedAt: 0n } as never];
    return info;
  }
  async stopEgress(egressId: string): Promise<EgressInfo> {
    this.stopped.push(egressId);
    const info = this.egress.get(egressId);
    if (!info) throw Object.assign(new Error('egress not found'), { status: 404 });
    info.status = EgressStatus.EGRESS_ENDING;
    if (this.endOnStop) this.end(egressId);
    return info;
  }
  async listEgress(options?: { egressId?: string }): Promise<EgressInfo[]> {
    const info = options?.egressId ? this.egress.get(options.egressId) : undefined;
    return info ? [info] : [];
  }
}

class FakeObjects implements RecordingObjects {
  readonly stored = new Set<string>();
  readonly deletes: string[] = [];
  async delete(bucket: string, key: string): Promise<void> {
    this.deletes.push(`${bucket}/${key}`);
    this.stored.delete(`${bucket}/${key}`);
  }
}

function harness(env: Record<string, string> = {}) {
  const config = loadConfig({ CALL_RECORDING: 'true', SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', AWS_S3_BUCKET: 'recordings', TIMEZONE: TZ, ...env });
  const settings = loadRecordingSettings({ LIVEKIT_URL: 'http://127.0.0.1:1', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's', CALLDATA_EGRESS_BACKOFF_MS: '0', CALLDATA_DISCARD_WAIT_MS: '100', CALLDATA_DISCARD_POLL_MS: '50' });
  const egress = new FakeEgress();
  const state = new MemoryRecordingStateStore();
  const objects = new FakeObjects();
  const backend = new MemoryBackend();
  const recorder = new Recorder({ config, settings, egress: () => egress, state, objects, metadata: async () => backend, sleep: async () => undefined });
  /** What the persist function does with a worker snapshot. */
  const persist = async (snapshot: Snapshot) => {
    const [outcome] = await persistSnapshots([snapshot], config, { metadata: backend, transcription: backend });
    expect(outcome?.ok).toBe(true);
  };
  return { config, egress, state, objects, backend, recorder, persist };
}

const KEY = 'sip-room-1/20261124T004838.120_call/call_sip-room-1_20261124T004838.120_call.ogg';

function callSnapshots(callId = 'RM_call') {
  const started = buildSnapshot({ callId, kind: 'started', seq: 1_000, recordingKey: KEY });
  const progress = buildSnapshot({ callId, kind: 'progress', seq: 2_000, recordingKey: KEY, turns: 2 });
  const ended = buildSnapshot({ callId, kind: 'ended', seq: 3_000, recordingKey: KEY, turns: 3 });
  const unanswered = buildSnapshot({ callId, kind: 'unanswered', seq: 3_000, recordingKey: KEY });
  return { started, progress, ended, unanswered };
}

describe('recording start', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('starts an audio-only OGG room composite egress with layout speaker at the recording key', async () => {
    // Prepare
    const { started } = callSnapshots();
    // Act
    const outcome = await h.recorder.start(started);
    // Assess
    expect(outcome).toBe('started');
    expect(h.egress.started).toHaveLength(1);
    const request = h.egress.started[0]!;
    expect(request.roomName).toBe('sip-room-1');
    expect(request.opts).toEqual({ layout: 'speaker', audioOnly: true });
    const output = request.output as { fileType: number; filepath: string; output: { case: string; value: { bucket: string } } };
    expect(output.fileType).toBe(2 /* EncodedFileType.OGG */);
    expect(output.filepath).toBe(KEY);
    expect(output.output.case).toBe('s3');
    expect(output.output.value.bucket).toBe('recordings');
    expect((await h.state.load('RM_call')).egress).toMatchObject({ egressId: 'EG_1', key: KEY, bucket: 'recordings' });
  });

  it('starts one egress when the started snapshot is delivered twice', async () => {
    const { started } = callSnapshots();
    await h.recorder.start(started);
    await expect(h.recorder.start(started)).resolves.toBe('already_started');
    expect(h.egress.started).toHaveLength(1);
  });

  it('retries "no response from servers" (503) and timeouts, then starts', async () => {
    h.egress.startFailures = [
      { status: 503, message: 'twirp error unknown: no response from servers' },
      { name: 'TimeoutError', message: 'The operation was aborted due to timeout' },
    ];
    await expect(h.recorder.start(callSnapshots().started)).resolves.toBe('started');
    expect(h.egress.started).toHaveLength(3);
  });

  it('records a failed recording after the bounded attempts, without blocking metadata', async () => {
    // Prepare: metadata already stored, egress service missing
    const { started } = callSnapshots();
    await h.persist(started);
    h.egress.startFailures = [1, 2, 3].map(() => ({ status: 503, message: 'twirp error unknown: no response from servers' }));
    // Act
    const outcome = await h.recorder.start(started);
    // Assess
    expect(outcome).toBe('failed');
    expect(h.egress.started).toHaveLength(3);
    expect((await h.state.load('RM_call')).result).toMatchObject({ status: 'failed', error: expect.stringContaining('no response from servers') });
    const doc = h.backend.metadata('RM_call');
    expect(doc.recording_status).toBe('failed');
    expect(doc.recording_error).toContain('503');
    expect(doc.recording_filename).toBeUndefined();
  });

  it('does not retry a request LiveKit rejects', async () => {
    h.egress.startFailures = [{ status: 400, message: 'invalid request' }];
    await expect(h.recorder.start(callSnapshots().started)).resolves.toBe('failed');
    expect(h.egress.started).toHaveLength(1);
  });

  it('does nothing when CALL_RECORDING=false', async () => {
    const off = harness({ CALL_RECORDING: 'false' });
    await off.recorder.onSnapshot(callSnapshots().started);
    expect(off.egress.started).toHaveLength(0);
  });
});

describe('discarding the recording of an unanswered call', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('stops the egress, waits for it to end and deletes the object', async () => {
    // Prepare
    const { started, unanswered } = callSnapshots();
    await h.recorder.start(started);
    await h.persist(unanswered);
    // Act
    await h.recorder.onSnapshot(unanswered);
    // Assess
    expect(h.egress.stopped).toEqual(['EG_1']);
    expect(h.objects.deletes).toEqual([`recordings/${KEY}`]);
    const doc = h.backend.metadata('RM_call');
    expect(doc).toMatchObject({ answered: false, status: 'no_answer', recording_status: 'discarded' });
    expect(doc.recording_filename).toBeUndefined();
  });

  it('never starts an egress when the unanswered snapshot is handled first', async () => {
    const { started, unanswered } = callSnapshots();
    await h.persist(unanswered);
    await h.recorder.onSnapshot(unanswered);
    await expect(h.recorder.start(started)).resolves.toBe('discarded');
    expect(h.egress.started).toHaveLength(0);
  });

  it('undoes a start that was in flight while the call was discarded', async () => {
    // Prepare: the discard runs while LiveKit is still answering the start
    const { started } = callSnapshots();
    h.egress.duringStart = async () => {
      await h.recorder.discard('RM_call', { key: KEY, bucket: 'recordings', reason: 'no_answer' });
    };
    // Act
    const outcome = await h.recorder.start(started);
    // Assess: the start saw the discard and stopped its own egress, then deleted the object
    expect(outcome).toBe('discarded');
    expect(h.egress.stopped).toEqual(['EG_1']);
    expect(h.objects.deletes.filter((d) => d === `recordings/${KEY}`).length).toBeGreaterThanOrEqual(2);
  });

  it('deletes the object again when the egress uploads after the discard', async () => {
    // Prepare: an egress that keeps uploading past the discard wait
    const { started, unanswered } = callSnapshots();
    h.egress.endOnStop = false;
    await h.recorder.start(started);
    await h.persist(unanswered);
    await h.recorder.onSnapshot(unanswered);
    const deletesAfterDiscard = h.objects.deletes.length;
    // Act: the upload lands and LiveKit reports egress_ended
    h.objects.stored.add(`recordings/${KEY}`);
    await h.recorder.onEgressEnded(h.egress.end('EG_1'));
    // Assess
    expect(h.objects.deletes.length).toBe(deletesAfterDiscard + 1);
    expect(h.objects.stored.has(`recordings/${KEY}`)).toBe(false);
    expect(h.backend.metadata('RM_call')).toMatchObject({ recording_status: 'discarded', answered: false });
  });
});

describe('the final metadata carries the recording result whatever the order', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  function expectResult(doc: Record<string, unknown>) {
    expect(doc).toMatchObject({
      answered: true,
      status: 'completed',
      recording_filename: KEY.slice(KEY.lastIndexOf('/') + 1),
      recording_location: `s3://recordings/${KEY}`,
      recording_status: 'complete',
      recording_size_bytes: 4_096,
      recording_duration: 12.5,
    });
    expect(doc.end_time).not.toBeNull();
  }

  it('when the worker final snapshot is stored first and egress_ended follows', async () => {
    const { started, progress, ended } = callSnapshots();
    h.egress.endOnStop = false;
    await h.persist(started);
    await h.recorder.onSnapshot(started);
    await h.persist(progress);
    await h.persist(ended);
    await h.recorder.onSnapshot(ended);
    await h.recorder.onEgressEnded(h.egress.end('EG_1'));
    expectResult(h.backend.metadata('RM_call'));
  });

  it('when egress_ended is handled before the worker final snapshot is stored', async () => {
    // Prepare
    const { started, progress, ended } = callSnapshots();
    h.egress.endOnStop = false;
    await h.persist(started);
    await h.recorder.onSnapshot(started);
    await h.persist(progress);
    // Act: the result is merged into the progress record...
    await h.recorder.onEgressEnded(h.egress.end('EG_1'));
    expect(h.backend.metadata('RM_call').recording_status).toBe('complete');
    // ...then the worker's final snapshot overwrites it (it knows nothing of the egress)...
    await h.persist(ended);
    expect(h.backend.metadata('RM_call').recording_status).toBeUndefined();
    // ...and the recording step for that final snapshot merges the result back.
    await h.recorder.onSnapshot(ended);
    // Assess
    expectResult(h.backend.metadata('RM_call'));
    expect(h.backend.data.get('transcription:RM_call')?.seq).toBe(ended.seq);
  });

  it('when the egress ends in time for the ended step (no webhook at all)', async () => {
    const { started, ended } = callSnapshots();
    await h.recorder.onSnapshot(started);
    await h.persist(ended);
    await h.recorder.onSnapshot(ended);
    expect(h.egress.stopped).toEqual(['EG_1']);
    expectResult(h.backend.metadata('RM_call'));
  });

  it('asks to be retried when the final snapshot is not stored yet', async () => {
    const { started, ended } = callSnapshots();
    await h.recorder.onSnapshot(started);
    await h.persist(started);
    await expect(h.recorder.onSnapshot(ended)).rejects.toBeInstanceOf(NotPersistedYetError);
  });

  it('redoes the merge on the newer record when a worker snapshot lands in between', async () => {
    // Prepare
    const { started, progress, ended } = callSnapshots();
    h.egress.endOnStop = false;
    await h.persist(started);
    await h.recorder.onSnapshot(started);
    await h.persist(progress);
    // Act: the final snapshot is stored between the merge's read and its write
    h.backend.beforeWrite = () => h.persist(ended);
    await h.recorder.onEgressEnded(h.egress.end('EG_1'));
    // Assess: the merge lost the race once, re-read the final record and merged into it
    expectResult(h.backend.metadata('RM_call'));
    expect(h.backend.data.get('metadata:RM_call')!.seq).toBeGreaterThan(ended.seq);
  });

  it.each([
    [EgressStatus.EGRESS_LIMIT_REACHED, 'limit_reached'],
    [EgressStatus.EGRESS_ABORTED, 'aborted'],
    [EgressStatus.EGRESS_FAILED, 'failed'],
  ])('takes the call status from the egress result %s', async (status, expected) => {
    const { started, ended } = callSnapshots();
    h.egress.endWith = { ...h.egress.endWith, status, error: expected === 'failed' ? 'upload failed' : '' };
    await h.recorder.onSnapshot(started);
    await h.persist(ended);
    await h.recorder.onSnapshot(ended);
    const doc = h.backend.metadata('RM_call');
    expect(doc.status).toBe(expected);
    expect(doc.recording_status).toBe(expected);
  });

  it('ignores egress results of egresses it did not start', async () => {
    const { started } = callSnapshots();
    await h.recorder.onSnapshot(started);
    const foreign = new EgressInfo({ egressId: 'EG_other', roomId: 'RM_call', status: EgressStatus.EGRESS_COMPLETE });
    await expect(h.recorder.onEgressEnded(foreign)).resolves.toBe('ignored');
    const unknownCall = new EgressInfo({ egressId: 'EG_9', roomId: 'RM_unknown', status: EgressStatus.EGRESS_COMPLETE });
    await expect(h.recorder.onEgressEnded(unknownCall)).resolves.toBe('ignored');
  });

  it('classifies a refused stop as not retryable but still deletes', async () => {
    const { started, unanswered } = callSnapshots();
    await h.recorder.start(started);
    h.egress.stopEgress = async () => {
      throw new EgressRejectedError('failed precondition', 412);
    };
    await h.persist(unanswered);
    await h.recorder.onSnapshot(unanswered);
    expect(h.objects.deletes).toContain(`recordings/${KEY}`);
  });
});
