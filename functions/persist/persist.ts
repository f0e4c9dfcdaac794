/**
 * The persist domain: turn a batch of snapshots into metadata and transcription writes on
 * the configured backends, one write per backend per batch, and say per snapshot whether it
 * is safely stored.
 */
import type { Config } from '../config/config.ts';
import type { Snapshot } from '../contract/snapshot.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { metadataRecord, transcriptionRecord, type ArtifactRecord } from '../storage/documents.ts';

export interface PersistTargets {
  metadata?: StorageBackend;
  transcription?: StorageBackend;
}

export type PersistOutcome =
  | { ok: true; locations: { kind: 'metadata' | 'transcription'; location: string; applied: boolean }[] }
  | { ok: false; error: unknown };

/** Which artifacts a snapshot produces under the flags. */
export function artifactsFor(snapshot: Snapshot, config: Pick<Config, 'saveMetadata' | 'saveTranscription' | 'timezone'>): ArtifactRecord[] {
  const records: ArtifactRecord[] = [];
  if (config.saveMetadata) records.push(metadataRecord(snapshot, config.timezone));
  // Unanswered calls keep metadata only (the spec); a call with nothing said yet has no transcript.
  if (config.saveTranscription && snapshot.kind !== 'unanswered' && snapshot.conversation) {
    records.push(transcriptionRecord(snapshot, config.timezone));
  }
  return records;
}

export async function persistSnapshots(
  snapshots: readonly Snapshot[],
  config: Pick<Config, 'saveMetadata' | 'saveTranscription' | 'timezone'>,
  targets: PersistTargets,
): Promise<PersistOutcome[]> {
  const perSnapshot = snapshots.map((snapshot) => artifactsFor(snapshot, config));
  const byTarget = new Map<StorageBackend, { snapshotIndex: number; record: ArtifactRecord }[]>();
  perSnapshot.forEach((records, snapshotIndex) => {
    for (const record of records) {
      const target = record.kind === 'metadata' ? targets.metadata : targets.transcription;
      if (!target) continue;
      const list = byTarget.get(target) ?? [];
      list.push({ snapshotIndex, record });
      byTarget.set(target, list);
    }
  });

  const outcomes: PersistOutcome[] = snapshots.map(() => ({ ok: true, locations: [] }));
  // Metadata and transcripts may share one backend (one write) or use two (written concurrently).
  await Promise.all(
    [...byTarget].map(async ([target, items]) => {
      try {
        const results = await target.write(items.map((i) => i.record));
        items.forEach((item, i) => {
          const outcome = outcomes[item.snapshotIndex];
          const result = results[i];
          if (outcome?.ok && result) outcome.locations.push({ kind: item.record.kind, ...result });
        });
      } catch (error) {
        for (const item of items) outcomes[item.snapshotIndex] = { ok: false, error };
      }
    }),
  );
  return outcomes;
}
