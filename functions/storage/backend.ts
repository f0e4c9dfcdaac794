/**
 * The one small interface every storage backend implements. Adding a backend means one
 * file implementing it, one line in select.ts and one integration test.
 */
import type { ArtifactKind, ArtifactRecord } from './documents.ts';

export interface WriteOutcome {
  /** Human-readable place the artifact lives, with no credentials in it. */
  location: string;
  /** False when a record with an equal or newer sequence was already stored (nothing changed). */
  applied: boolean;
}

export interface StoredArtifact {
  seq: number;
  document: unknown;
  location: string;
}

export interface StorageBackend {
  /** e.g. 'postgres'; used in logs and errors. */
  readonly name: string;
  /**
   * Stores the records, keyed by call id and kind, never letting an older sequence replace
   * a newer one. Records of the same call and kind in one call may appear more than once.
   * Returns one outcome per record, in order. Throws a StorageError if the batch could not be
   * written (retryable when the backend is unreachable).
   */
  write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]>;
  /** The stored artifact for a call, or undefined. */
  read(kind: ArtifactKind, callId: string): Promise<StoredArtifact | undefined>;
  close(): Promise<void>;
}

/** Table / collection / key prefix names, as the spec's artifact names. */
export const COLLECTION: Record<ArtifactKind, 'call_metadata' | 'call_transcription'> = {
  metadata: 'call_metadata',
  transcription: 'call_transcription',
};

/**
 * Within one write, only the newest record per (kind, call) matters; the others are
 * reported as not applied. Returns the winners and a function to spread outcomes back.
 */
export function newestPerCall(records: readonly ArtifactRecord[]): { winners: ArtifactRecord[]; winnerIndex: number[] } {
  const best = new Map<string, number>();
  records.forEach((record, index) => {
    const key = `${record.kind}\u0000${record.callId}`;
    const current = best.get(key);
    if (current === undefined || (records[current]?.seq ?? -1) < record.seq) best.set(key, index);
  });
  const winnerIndex = [...best.values()].sort((a, b) => a - b);
  return { winners: winnerIndex.map((i) => records[i] as ArtifactRecord), winnerIndex };
}

/** Expands outcomes of the winners to one outcome per input record. */
export function spreadOutcomes(records: readonly ArtifactRecord[], winnerIndex: number[], winnerOutcomes: WriteOutcome[]): WriteOutcome[] {
  const byKey = new Map<string, WriteOutcome>();
  winnerIndex.forEach((recordIndex, i) => {
    const record = records[recordIndex] as ArtifactRecord;
    byKey.set(`${record.kind}\u0000${record.callId}`, winnerOutcomes[i] as WriteOutcome);
  });
  const winners = new Set(winnerIndex);
  return records.map((record, index) => {
    const outcome = byKey.get(`${record.kind}\u0000${record.callId}`) as WriteOutcome;
    return winners.has(index) ? outcome : { location: outcome.location, applied: false };
  });
}
