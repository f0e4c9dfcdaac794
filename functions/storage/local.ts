/**
 * Local folder backend: `<location>/<room>/<timestamp>/call_<kind>_<room>_<timestamp>.json`.
 * Writes are atomic (temp file + rename), so no half-written JSON is ever visible, and
 * guarded by the stored `sequence`, so an older snapshot never replaces a newer one.
 */
import { mkdir, readFile, rename, writeFile, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve, sep } from 'node:path';
import type { StorageBackend, StoredArtifact, WriteOutcome } from './backend.ts';
import { newestPerCall, spreadOutcomes } from './backend.ts';
import type { ArtifactKind, ArtifactRecord } from './documents.ts';
import { LocationError, StorageError } from './errors.ts';

/** An index from call id to the artifact's relative path, so read() needs no directory scan. */
const INDEX_DIR = '.calldata-index';

export class LocalFolderBackend implements StorageBackend {
  readonly name = 'local';
  private readonly root: string;
  /** Serializes writes to one file within this process (the embedded default is one process). */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Index entries this process already wrote: their content never changes for a call. */
  private readonly indexed = new Set<string>();
  /** Folders this process already created, so repeat writes skip mkdir. */
  private readonly folders = new Set<string>();

  constructor(location: string) {
    this.root = resolve(location);
  }

  private inside(...parts: string[]): string {
    const path = resolve(this.root, ...parts);
    if (!path.startsWith(this.root + sep)) throw new LocationError(this.name, 'artifact path escapes the location');
    return path;
  }

  private relativePath(record: ArtifactRecord): string {
    const file = record.kind === 'metadata' ? record.paths.metadataFile : record.paths.transcriptionFile;
    return join(record.paths.folder, file);
  }

  private indexPath(kind: ArtifactKind, callId: string): string {
    return this.inside(INDEX_DIR, kind, `${callId}.path`);
  }

  private async storedSeq(path: string): Promise<number | undefined> {
    try {
      const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
      const seq = typeof parsed === 'object' && parsed !== null ? (parsed as { sequence?: unknown }).sequence : undefined;
      return typeof seq === 'number' ? seq : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // An unreadable file cannot be newer than anything we have: overwrite it.
      if (error instanceof SyntaxError) return undefined;
      throw error;
    }
  }

  /** Creates the file's folder; true when it did not exist before (so neither did the file). */
  private async ensureFolder(path: string): Promise<boolean> {
    const folder = dirname(path);
    if (this.folders.has(folder)) return false;
    const created = await mkdir(folder, { recursive: true });
    if (this.folders.size > 10_000) this.folders.clear();
    this.folders.add(folder);
    return created !== undefined;
  }

  /** The index entry is tiny and never changes once written: create it only if absent. */
  private async writeIndex(index: string, relative: string): Promise<void> {
    await this.ensureFolder(index);
    await writeFile(index, relative, { encoding: 'utf8', flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    this.indexed.add(index);
  }

  private async atomicWrite(path: string, content: string): Promise<void> {
    await this.ensureFolder(path);
    const temp = `${path}.${randomUUID()}.tmp`;
    try {
      await writeFile(temp, content, { encoding: 'utf8', flush: true });
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  private async writeOne(record: ArtifactRecord): Promise<WriteOutcome> {
    const relative = this.relativePath(record);
    const path = this.inside(relative);
    const previous = this.locks.get(path) ?? Promise.resolve();
    const run = previous.then(async () => {
      // A folder we just created holds no older version: skip reading it.
      const stored = (await this.ensureFolder(path)) ? undefined : await this.storedSeq(path);
      if (stored !== undefined && stored >= record.seq) return { location: path, applied: false };
      const index = this.indexPath(record.kind, record.callId);
      await Promise.all([
        this.atomicWrite(path, JSON.stringify(record.document, null, 2)),
        this.indexed.has(index) ? undefined : this.writeIndex(index, relative),
      ]);
      return { location: path, applied: true };
    });
    const settled = run.catch(() => undefined);
    this.locks.set(path, settled);
    void settled.then(() => {
      if (this.locks.get(path) === settled) this.locks.delete(path);
    });
    return run;
  }

  async write(records: readonly ArtifactRecord[]): Promise<WriteOutcome[]> {
    const { winners, winnerIndex } = newestPerCall(records);
    try {
      const outcomes = await Promise.all(winners.map((record) => this.writeOne(record)));
      return spreadOutcomes(records, winnerIndex, outcomes);
    } catch (cause) {
      if (cause instanceof StorageError) throw cause;
      const code = (cause as NodeJS.ErrnoException).code ?? '';
      // A full disk or a momentarily busy file may clear; a permission problem will not.
      throw new StorageError(`local: write under ${this.root} failed`, { backend: this.name, retryable: /^(ENOSPC|EBUSY|EMFILE|ENFILE|EAGAIN|EIO)$/.test(code), cause });
    }
  }

  async read(kind: ArtifactKind, callId: string): Promise<StoredArtifact | undefined> {
    let relative: string;
    try {
      relative = await readFile(this.indexPath(kind, callId), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    // An index entry still being created reads empty: the artifact is not there yet either.
    if (relative === '') return undefined;
    const path = this.inside(relative);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      // The index entry is written beside the first version, so it can briefly lead it.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const document: unknown = JSON.parse(text);
    const seq = (document as { sequence?: unknown }).sequence;
    return { seq: typeof seq === 'number' ? seq : 0, document, location: path };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.locks.values()]);
  }
}
