import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../functions/contract/snapshot.ts';
import { applyRecordingFacts, snapshotFromMetadata, updateCallRecord } from '../../functions/recording/call-record.ts';
import { classifyEgressError, ConcurrentUpdateError, EgressRejectedError, EgressUnavailableError } from '../../functions/recording/errors.ts';
import { loadRecordingSettings } from '../../functions/recording/settings.ts';
import { callStatusForRecording, isTerminal, recordingStatusOf } from '../../functions/recording/status.ts';
import type { StorageBackend, StoredArtifact, WriteOutcome } from '../../functions/storage/backend.ts';
import { metadataRecord, type ArtifactKind, type ArtifactRecord } from '../../functions/storage/documents.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const TZ = 'Asia/Kolkata';
const KEY = 'room/20261124T004838.120_abc/call_room_20261124T004838.120_abc.ogg';

describe('rebuilding a snapshot from stored metadata', () => {
  it.each([
    ['an answered call with a recording', buildSnapshot({ kind: 'ended', recordingKey: KEY })],
    ['an unanswered call', buildSnapshot({ kind: 'unanswered' })],
    ['a call in progress', buildSnapshot({ kind: 'progress', direction: 'outbound' })],
  ])('rebuilds %s so that the document comes out the same', (_label, snapshot: Snapshot) => {
    // Prepare
    const record = metadataRecord(snapshot, TZ);
    // Act
    const rebuilt = snapshotFromMetadata(record.document, record.seq);
    // Assess
    expect(rebuilt).toBeDefined();
    const again = metadataRecord(rebuilt!, TZ);
    expect(again.document).toEqual(record.document);
    expect(again.paths).toEqual(record.paths);
  });

  it('recomputes the recording key when the document has no recording location', () => {
    const snapshot = buildSnapshot({ kind: 'unanswered', roomName: 'sales' });
    const doc = metadataRecord(snapshot, TZ).document;
    const rebuilt = snapshotFromMetadata(doc, 5, { recordingTimezone: TZ, bucket: 'recordings' });
    expect(rebuilt?.recording?.key).toMatch(/^sales\/\d{8}T\d{6}\.\d{3}_[A-Za-z0-9]+\/call_sales_.*\.ogg$/);
  });

  it('refuses documents that are not call metadata', () => {
    expect(snapshotFromMetadata({ hello: 'world' }, 1)).toBeUndefined();
    expect(snapshotFromMetadata({ call_id: 'x', room_name: 'r', call_direction: 'inbound', start_time: 'not a time', answered: true, status: 's' }, 1)).toBeUndefined();
  });
});

describe('applying recording facts', () => {
  const ended = buildSnapshot({ kind: 'ended', recordingKey: KEY });

  it('records a complete egress as the completed call with its file size and duration', () => {
    const next = applyRecordingFacts(ended, { result: { status: 'complete', egressId: 'EG_1', sizeBytes: 10, durationMs: 2_000, atMs: 1 } });
    expect(next.call.status).toBe('completed');
    expect(next.recording).toMatchObject({ key: KEY, egressId: 'EG_1', status: 'complete', sizeBytes: 10, durationMs: 2_000 });
    expect(metadataRecord(next, TZ).document.recording_filename).toBe(KEY.slice(KEY.lastIndexOf('/') + 1));
  });

  it('marks a discarded recording and leaves no file name in the metadata', () => {
    const unanswered = buildSnapshot({ kind: 'unanswered', recordingKey: KEY });
    const next = applyRecordingFacts(unanswered, { discard: { key: KEY, bucket: 'b', reason: 'no_answer', atMs: 1 }, result: { status: 'complete', atMs: 2 } });
    expect(next.recording?.status).toBe('discarded');
    expect(next.call.status).toBe('no_answer');
    const doc = metadataRecord(next, TZ).document;
    expect(doc.recording_filename).toBeUndefined();
    expect(doc.recording_status).toBe('discarded');
  });

  it('keeps the status of a call still in progress', () => {
    const progress = buildSnapshot({ kind: 'progress', recordingKey: KEY });
    const next = applyRecordingFacts(progress, { result: { status: 'failed', error: 'boom', atMs: 1 } });
    expect(next.call.status).toBe('in_progress');
    expect(next.recording?.status).toBe('failed');
  });

  it('adds the recording from the facts when the record had none', () => {
    const plain = buildSnapshot({ kind: 'ended' });
    const next = applyRecordingFacts(plain, { call: { key: KEY, bucket: 'b', roomName: 'r', seenAtMs: 1 } });
    expect(next.recording).toEqual({ key: KEY, bucket: 'b' });
  });
});

class OneRecordBackend implements StorageBackend {
  readonly name = 'one';
  stored: StoredArtifact | undefined;
  /** Every write loses against a newer record appearing at the same time. */
  alwaysLose = false;
  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    return records.map((record) => {
      if (this.alwaysLose) {
        this.stored = { ...this.stored!, seq: record.seq + 1 };
        return { location: 'x', applied: false };
      }
      if (this.stored && this.stored.seq >= record.seq) return { location: 'x', applied: false };
      this.stored = { seq: record.seq, document: record.document, location: 'x' };
      return { location: 'x', applied: true };
    });
  }
  async read(_kind: ArtifactKind, _callId: string): Promise<StoredArtifact | undefined> {
    return this.stored;
  }
  async close(): Promise<void> {}
}

describe('updating a stored call record', () => {
  it('keeps fields a newer document format added, and writes a higher sequence', async () => {
    // Prepare
    const backend = new OneRecordBackend();
    const snapshot = buildSnapshot({ kind: 'ended', recordingKey: KEY });
    const record = metadataRecord(snapshot, TZ);
    backend.stored = { seq: snapshot.seq, document: { ...record.document, sip_call_id: 'SCL_1' }, location: 'x' };
    // Act
    const outcome = await updateCallRecord(backend, snapshot.callId, (s) => applyRecordingFacts(s, { result: { status: 'complete', sizeBytes: 1, atMs: 1 } }), { timezone: TZ });
    // Assess
    expect(outcome.result).toBe('applied');
    expect(backend.stored?.seq).toBe(snapshot.seq + 1);
    expect(backend.stored?.document).toMatchObject({ sip_call_id: 'SCL_1', recording_status: 'complete', sequence: snapshot.seq + 1 });
  });

  it('writes nothing when the merge changes nothing', async () => {
    const backend = new OneRecordBackend();
    const snapshot = buildSnapshot({ kind: 'ended' });
    backend.stored = { seq: snapshot.seq, document: metadataRecord(snapshot, TZ).document, location: 'x' };
    await expect(updateCallRecord(backend, snapshot.callId, (s) => s, { timezone: TZ })).resolves.toMatchObject({ result: 'unchanged' });
    expect(backend.stored.seq).toBe(snapshot.seq);
  });

  it('reports a call it has no record of as missing', async () => {
    await expect(updateCallRecord(new OneRecordBackend(), 'nope', (s) => s, { timezone: TZ })).resolves.toEqual({ result: 'missing' });
  });

  it('gives up with a retryable error when it keeps losing the race', async () => {
    const backend = new OneRecordBackend();
    const snapshot = buildSnapshot({ kind: 'progress' });
    backend.stored = { seq: snapshot.seq, document: metadataRecord(snapshot, TZ).document, location: 'x' };
    backend.alwaysLose = true;
    const error = await updateCallRecord(backend, snapshot.callId, (s) => ({ ...s, call: { ...s.call, status: 'x' } }), { timezone: TZ, attempts: 3 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrentUpdateError);
    expect((error as ConcurrentUpdateError).retryable).toBe(true);
  });

  it('starts the sequence at the given minimum', async () => {
    const backend = new OneRecordBackend();
    const snapshot = buildSnapshot({ kind: 'progress', seq: 10 });
    backend.stored = { seq: 10, document: metadataRecord(snapshot, TZ).document, location: 'x' };
    await updateCallRecord(backend, snapshot.callId, (s) => ({ ...s, call: { ...s.call, status: 'x' } }), { timezone: TZ, minSeq: 5_000 });
    expect(backend.stored.seq).toBe(5_000);
  });
});

describe('egress errors and statuses', () => {
  it.each([
    [{ status: 503, message: 'no response from servers' }, EgressUnavailableError],
    [{ status: 500, message: 'egress not connected' }, EgressUnavailableError],
    [{ status: 408, message: 'request canceled' }, EgressUnavailableError],
    [Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }), EgressUnavailableError],
    [new TypeError('fetch failed'), EgressUnavailableError],
    [{ status: 404, message: 'requested room does not exist' }, EgressRejectedError],
    [{ status: 401, message: 'unauthorized' }, EgressRejectedError],
  ])('classifies %o', (cause, type) => {
    const error = classifyEgressError('start egress', cause);
    expect(error).toBeInstanceOf(type);
    expect(error.retryable).toBe(type === EgressUnavailableError);
  });

  it('maps egress statuses to recording and call statuses', () => {
    expect(recordingStatusOf(3)).toBe('complete');
    expect(recordingStatusOf('EGRESS_LIMIT_REACHED')).toBe('limit_reached');
    expect(recordingStatusOf(99)).toBeUndefined();
    expect(isTerminal('active')).toBe(false);
    expect(isTerminal('discarded')).toBe(true);
    expect(callStatusForRecording('complete')).toBe('completed');
    expect(callStatusForRecording('aborted')).toBe('aborted');
    expect(callStatusForRecording('active')).toBeUndefined();
  });

  it('reads its settings with defaults and names a bad variable', () => {
    const settings = loadRecordingSettings({});
    expect(settings).toMatchObject({ egressAttempts: 3, egressTimeoutMs: 30_000, statePrefix: '_calldata-recordings' });
    expect(() => loadRecordingSettings({ CALLDATA_EGRESS_ATTEMPTS: '0' })).toThrow(/CALLDATA_EGRESS_ATTEMPTS/);
    expect(() => loadRecordingSettings({ CALLDATA_RECORDING_STATE_PREFIX: '../x' })).toThrow(/CALLDATA_RECORDING_STATE_PREFIX/);
  });
});
