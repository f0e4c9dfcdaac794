/**
 * What the SQL backends share: both guarded writes are the same multi-row upsert with a
 * different guard, so a backend only says how to run one (`runUpserts`) and which rows it wrote.
 */
import { MergingBackend, type FastResult, type RowWrite } from './backend.ts';

export type UpsertKind = 'fast' | 'cas';
export type DocumentColumn = 'metadata' | 'transcription';

export abstract class SqlBackend extends MergingBackend {
  /**
   * Runs the guarded upserts of one kind and returns the call ids written. `version` is what a
   * new or replaced row gets: for 'fast' 1 when inserted (the server adds 1 to a replaced row's),
   * for 'cas' the expected version + 1 (so "insert only when absent" is version 1).
   */
  protected abstract runUpserts(kind: UpsertKind, rows: readonly { row: RowWrite; version: number }[]): Promise<Set<string>>;

  /** The document columns this location stores; the others are left as they are. */
  protected documentColumns(): DocumentColumn[] {
    return (['metadata', 'transcription'] as const).filter((kind) => this.documents.includes(kind));
  }

  protected async writeIfSoleWriter(rows: readonly RowWrite[]): Promise<FastResult[]> {
    const written = await this.runUpserts(
      'fast',
      rows.map((row) => ({ row, version: 1 })),
    );
    // Not written: a duplicate or another writer's record; the read-merge-write tells them apart.
    return rows.map((row) => (written.has(row.callId) ? 'applied' : 'conflict'));
  }

  protected async writeIfVersion(rows: readonly { row: RowWrite; expected: number | undefined }[]): Promise<boolean[]> {
    const written = await this.runUpserts(
      'cas',
      rows.map(({ row, expected }) => ({ row, version: (expected ?? 0) + 1 })),
    );
    return rows.map(({ row }) => written.has(row.callId));
  }
}
