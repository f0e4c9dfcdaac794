import { describe, expect, it } from 'vitest';
import { artifactsFor, persistSnapshots } from '../../functions/persist/persist.ts';
import type { StorageBackend, WriteOutcome } from '../../functions/storage/backend.ts';
import { buildMetadata } from '../../functions/storage/documents.ts';
import { BackendUnavailableError } from '../../functions/storage/errors.ts';
import type { ArtifactRecord } from '../../functions/storage/documents.ts';
import { buildSnapshot } from '../support/snapshots.ts';

const flags = { saveMetadata: true, saveTranscription: true, timezone: 'UTC' };

/** Records what it is asked to write; fails when told to. A unit-test edge, not a backend. */
class RecordingStore implements StorageBackend {
  readonly name = 'recording-store';
  writes: ArtifactRecord[][] = [];
  failing = false;
  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    if (this.failing) throw new BackendUnavailableError(this.name, 'down');
    this.writes.push([...records]);
    return records.map((r) => ({ location: `mem:${r.kind}:${r.callId}`, applied: true }));
  }
  async read() {
    return undefined;
  }
  async close() {}
}

describe('persist domain', () => {
  it('writes metadata only for an unanswered call, never a transcription', () => {
    const records = artifactsFor(buildSnapshot({ kind: 'unanswered' }), flags);
    expect(records.map((r) => r.kind)).toEqual(['metadata']);
    expect(records[0]?.document).toMatchObject({ answered: false, status: 'no_answer' });
    expect(records[0]?.document).not.toHaveProperty('recording_filename');
  });

  it('honours SAVE_METADATA and SAVE_TRANSCRIPTION independently', () => {
    const snapshot = buildSnapshot({ kind: 'ended' });
    expect(artifactsFor(snapshot, { ...flags, saveMetadata: false }).map((r) => r.kind)).toEqual(['transcription']);
    expect(artifactsFor(snapshot, { ...flags, saveTranscription: false }).map((r) => r.kind)).toEqual(['metadata']);
    expect(artifactsFor(snapshot, { ...flags, saveMetadata: false, saveTranscription: false })).toEqual([]);
  });

  it('writes a whole batch to a shared backend in one call', async () => {
    const store = new RecordingStore();
    const snapshots = [buildSnapshot({}), buildSnapshot({}), buildSnapshot({ kind: 'unanswered' })];
    const outcomes = await persistSnapshots(snapshots, flags, { metadata: store, transcription: store });
    expect(store.writes).toHaveLength(1);
    expect(store.writes[0]).toHaveLength(5);
    expect(outcomes.every((o) => o.ok)).toBe(true);
  });

  it('fails only the snapshots that needed the backend that is down', async () => {
    const metadata = new RecordingStore();
    const transcription = new RecordingStore();
    transcription.failing = true;
    const outcomes = await persistSnapshots([buildSnapshot({ kind: 'unanswered' }), buildSnapshot({ kind: 'ended' })], flags, { metadata, transcription });
    expect(outcomes.map((o) => o.ok)).toEqual([true, false]);
  });

  it('names the recording file only for an answered call whose recording was kept', () => {
    const key = 'room/20261123T191838.120_abc/call_room_20261123T191838.120_abc.ogg';
    const answered = buildSnapshot({ kind: 'ended', recordingKey: key });
    expect(buildMetadata(answered, 'UTC').recording_filename).toBe('call_room_20261123T191838.120_abc.ogg');
    const discarded = { ...answered, recording: { key, status: 'discarded' } };
    expect(buildMetadata(discarded, 'UTC')).not.toHaveProperty('recording_filename');
    const unanswered = buildSnapshot({ kind: 'unanswered', recordingKey: key });
    expect(buildMetadata(unanswered, 'UTC')).not.toHaveProperty('recording_filename');
  });
});
