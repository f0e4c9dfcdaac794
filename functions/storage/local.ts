/**
 * Local folder backend. Under the location:
 *
 * - `.calldata-index/<callId>.json`: the record — merged state, folder, version, sole writer and
 *   its sequence, final, last fact;
 * - `<folder>/call_metadata_<slug>_<timestamp>.json` and `<folder>/call_transcription_...json`:
 *   the spec's documents (`<folder>` is `<room slug>/<timestamp>`);
 * - `.calldata-open/<callId>`: a marker while the call is open (last fact, room) for the
 *   sweeper, removed once the record is final;
 * - `.calldata-locks/<callId>.lock`: held while a call's record is read, merged and written.
 *
 * The agent runs each job in a process of its own and all of them may write here, so every
 * guarded write happens under a per-call lock file (created with O_EXCL, so exactly one process
 * holds it) on top of an in-process promise chain (so one process's merges of a call queue
 * instead of polling the file). With the lock held, both guarded writes are compare-then-write.
 *
 * Every file is written atomically (temp file, fsync, rename), so a reader never sees half a
 * file. Under the lock the documents and the marker are written first and the record last: the
 * record is the commit point, so a crash leaves at worst documents ahead of the record, which
 * the redelivered batch writes again.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { CallState, DocumentKind, RenderedDocuments } from '../contract/record.ts';
import { CALL_ID_PATTERN } from '../contract/snapshot.ts';
import { MergingBackend, type BackendOptions, type FastResult, type OpenCall, type RowWrite, type StoredCall } from './backend.ts';
import { BackendUnavailableError, StorageError } from './errors.ts';

const BACKEND = 'local';
const INDEX_DIR = '.calldata-index';
const OPEN_DIR = '.calldata-open';
const LOCK_DIR = '.calldata-locks';
/** A lock older than this was left by a process that died holding it: it may be broken. */
const STALE_LOCK_MS = 30_000;
/** Waiting longer than a stale lock takes to expire means something is wrong: let the queue retry. */
const LOCK_WAIT_MS = 45_000;
/** Files worked on at once: keeps clear of the process's file-descriptor limit. */
const PARALLEL = 32;
/** Names Windows reserves for devices, whatever the extension. */
const DEVICE_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;
/** Failures that may clear by themselves: a full disk, a busy file, too many open files. */
const TRANSIENT = /^(ENOSPC|EBUSY|EMFILE|ENFILE|EAGAIN|EIO|ETIMEDOUT)$/;

/** The record file's body (the same shape as the S3 backend's record object). */
interface RecordFile {
  call_id: string;
  version: number;
  folder: string;
  sole_writer: string | null;
  writer_seq: number;
  final: boolean;
  last_fact_ms: number;
  room_name: string | null;
  started_at_ms: number | null;
  state: CallState;
}

function errno(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? '';
}

function classify(root: string, action: string, cause: unknown): StorageError {
  if (cause instanceof StorageError) return cause;
  return new StorageError(`${BACKEND}: ${action} under ${root} failed`, { backend: BACKEND, retryable: TRANSIENT.test(errno(cause)), cause });
}

/** Runs `work` over `items`, at most `limit` at once; every item runs to the end, then the first failure is thrown. */
async function settleAll<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let failure: { error: unknown } | undefined;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw failure.error;
  return results;
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** The spec's document file in a call's folder: `<slug>/<timestamp>/call_<kind>_<slug>_<timestamp>.json`. */
function documentPath(folder: string, kind: DocumentKind): string {
  const slash = folder.lastIndexOf('/');
  return `${folder}/call_${kind}_${folder.slice(0, slash)}_${folder.slice(slash + 1)}.json`;
}

export class LocalFolderBackend extends MergingBackend {
  readonly name = BACKEND;
  private readonly root: string;
  /** Per call, the tail of this process's queue of locked work. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Folders this process already created, so repeat writes skip mkdir. */
  private readonly folders = new Set<string>();

  constructor(location: string, options: BackendOptions) {
    super(options);
    this.root = resolve(location);
  }

  /** A path under the location; anything that would resolve outside it is refused. */
  private inside(relative: string): string {
    const path = resolve(this.root, relative);
    if (!path.startsWith(this.root + sep)) throw new StorageError(`${BACKEND}: a path escapes the location`, { backend: BACKEND, retryable: false });
    return path;
  }

  /** The call id as a file name: validated, and a Windows device name gets a '_' (which no call id starts with). */
  private fileName(callId: string): string {
    if (!CALL_ID_PATTERN.test(callId)) throw new StorageError(`${BACKEND}: call id ${JSON.stringify(callId.slice(0, 40))} cannot name a file`, { backend: BACKEND, retryable: false });
    return DEVICE_NAME.test(callId) ? `_${callId}` : callId;
  }

  private recordPath(callId: string): string {
    return this.inside(join(INDEX_DIR, `${this.fileName(callId)}.json`));
  }

  private markerPath(callId: string): string {
    return this.inside(join(OPEN_DIR, this.fileName(callId)));
  }

  private lockPath(callId: string): string {
    return this.inside(join(LOCK_DIR, `${this.fileName(callId)}.lock`));
  }

  protected locate(callId: string, folder: string): string {
    return folder ? this.inside(folder) : this.recordPath(callId);
  }

  private async ensureFolder(folder: string): Promise<void> {
    if (this.folders.has(folder)) return;
    await mkdir(folder, { recursive: true });
    if (this.folders.size > 10_000) this.folders.clear();
    this.folders.add(folder);
  }

  /** Temp file in the same folder (so rename is atomic), fsync, rename over the target. */
  private async atomicWrite(path: string, content: string): Promise<void> {
    const folder = dirname(path);
    await this.ensureFolder(folder);
    // A short name of its own: the target's name plus a suffix could pass the 255-byte limit.
    const temp = join(folder, `.calldata-${randomUUID()}.tmp`);
    try {
      await writeFile(temp, content, { encoding: 'utf8', flush: true });
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      // Someone removed the folder after we created it: create it again next time.
      if (errno(error) === 'ENOENT') this.folders.delete(folder);
      throw error;
    }
  }

  private async readRecord(callId: string): Promise<RecordFile | undefined> {
    const path = this.recordPath(callId);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined;
      throw error;
    }
    let record: RecordFile;
    try {
      record = JSON.parse(text) as RecordFile;
    } catch (cause) {
      // Records are renamed into place whole, so this is damage from outside. Not retryable:
      // merging into it would silently drop the facts it held.
      throw new StorageError(`${BACKEND}: ${path} is not valid JSON`, { backend: BACKEND, retryable: false, cause });
    }
    // A case-insensitive file system maps two ids differing in case to one file: refuse to mix them.
    if (record?.call_id !== callId || typeof record.version !== 'number') {
      throw new StorageError(`${BACKEND}: ${path} is not a call record of ${callId}`, { backend: BACKEND, retryable: false });
    }
    return record;
  }

  private stored(record: RecordFile, documents: RenderedDocuments = {}): StoredCall {
    return { callId: record.call_id, version: record.version, folder: record.folder, state: record.state, documents, location: this.locate(record.call_id, record.folder) };
  }

  // ---- locking ------------------------------------------------------------------------------

  /** Runs `work` holding the call's lock: first this process's queue for the call, then the lock file. */
  private withCallLock<T>(callId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(callId) ?? Promise.resolve();
    const run = previous.then(async () => {
      const release = await this.acquire(callId);
      try {
        return await work();
      } finally {
        await release();
      }
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(callId, settled);
    void settled.then(() => {
      if (this.chains.get(callId) === settled) this.chains.delete(callId);
    });
    return run;
  }

  /** Creates the lock file (O_EXCL: exactly one creator wins); waits with jitter while another process holds it. */
  private async acquire(callId: string): Promise<() => Promise<void>> {
    const path = this.lockPath(callId);
    const token = `${process.pid} ${randomUUID()}`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(path, 'wx');
        try {
          await handle.writeFile(token, 'utf8');
        } finally {
          await handle.close();
        }
        return () => this.release(path, token);
      } catch (error) {
        if (errno(error) === 'ENOENT') {
          this.folders.delete(dirname(path));
          await this.ensureFolder(dirname(path));
          continue;
        }
        if (errno(error) !== 'EEXIST') throw error;
      }
      if (await this.breakIfStale(path)) continue;
      if (Date.now() > deadline) throw new BackendUnavailableError(BACKEND, `${BACKEND}: the lock of call ${callId} stayed held for ${LOCK_WAIT_MS / 1000} s`);
      // Jittered and growing (1-50 ms): two waiting processes do not retry in step.
      await sleep(1 + Math.random() * Math.min(50, 2 * 1.5 ** attempt));
    }
  }

  /** Removes the lock only while it is still ours: after 30 s another process may have broken it and taken it. */
  private async release(path: string, token: string): Promise<void> {
    const holder = await readFile(path, 'utf8').catch(() => undefined);
    if (holder === token) await rm(path, { force: true });
  }

  /**
   * Breaks a lock left by a process that died holding it. Renaming it away first means only
   * one of several breakers takes it; should that one have renamed a lock someone had just
   * taken (the stale one was broken meanwhile), it puts it back (link fails if the name is taken).
   */
  private async breakIfStale(path: string): Promise<boolean> {
    const info = await stat(path).catch(() => undefined);
    if (!info) return true; // released meanwhile: try again at once
    if (Date.now() - info.mtimeMs < STALE_LOCK_MS) return false;
    const aside = `${path}.${randomUUID()}.stale`;
    try {
      await rename(path, aside);
    } catch (error) {
      if (errno(error) === 'ENOENT') return true; // another breaker was first
      throw error;
    }
    const moved = await stat(aside).catch(() => undefined);
    if (moved && Date.now() - moved.mtimeMs < STALE_LOCK_MS) await link(aside, path).catch(() => undefined);
    await rm(aside, { force: true });
    return true;
  }

  // ---- writes -------------------------------------------------------------------------------

  /** Writes a row as `version` (lock held): documents and marker first, the record last. */
  private async commit(row: RowWrite, version: number): Promise<void> {
    const record: RecordFile = {
      call_id: row.callId,
      version,
      folder: row.folder,
      sole_writer: row.soleWriter,
      writer_seq: row.writerSeq,
      final: row.final,
      last_fact_ms: row.lastFactAtMs,
      room_name: row.roomName ?? null,
      started_at_ms: row.startedAtMs ?? null,
      state: row.state,
    };
    const marker = this.markerPath(row.callId);
    await Promise.all([
      ...this.documents.flatMap((kind) => {
        const document = row.documents[kind];
        return row.folder && document ? [this.atomicWrite(this.inside(documentPath(row.folder, kind)), JSON.stringify(document, null, 2))] : [];
      }),
      row.final ? rm(marker, { force: true }) : this.atomicWrite(marker, JSON.stringify({ call_id: row.callId, room_name: row.roomName ?? null, last_fact_ms: row.lastFactAtMs })),
    ]);
    await this.atomicWrite(this.recordPath(row.callId), JSON.stringify(record));
  }

  private async guarded<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw classify(this.root, action, error);
    }
  }

  protected async writeIfSoleWriter(rows: readonly RowWrite[]): Promise<FastResult[]> {
    return this.guarded('write', () =>
      settleAll(rows, PARALLEL, (row) =>
        this.withCallLock(row.callId, async (): Promise<FastResult> => {
          const stored = await this.readRecord(row.callId);
          if (!stored) {
            await this.commit(row, 1);
            return 'applied';
          }
          if (row.soleWriter === null || stored.sole_writer !== row.soleWriter || stored.folder !== row.folder) return 'conflict';
          if (stored.writer_seq >= row.writerSeq) return 'duplicate';
          await this.commit(row, stored.version + 1);
          return 'applied';
        }),
      ),
    );
  }

  protected async writeIfVersion(rows: readonly { row: RowWrite; expected: number | undefined }[]): Promise<boolean[]> {
    return this.guarded('write', () =>
      settleAll(rows, PARALLEL, ({ row, expected }) =>
        this.withCallLock(row.callId, async () => {
          const stored = await this.readRecord(row.callId);
          if (expected === undefined ? stored !== undefined : stored?.version !== expected) return false;
          await this.commit(row, (expected ?? 0) + 1);
          return true;
        }),
      ),
    );
  }

  protected async readRows(callIds: readonly string[]): Promise<Map<string, StoredCall>> {
    // No lock: records are renamed into place whole, and the write that follows compares versions under the lock.
    return this.guarded('read', async () => {
      const records = await settleAll(callIds, PARALLEL, (callId) => this.readRecord(callId));
      // The merge needs state, version and folder only; read() loads the documents themselves.
      return new Map(records.flatMap((record) => (record ? [[record.call_id, this.stored(record)] as const] : [])));
    });
  }

  async read(callId: string): Promise<StoredCall | undefined> {
    return this.guarded('read', async () => {
      const record = await this.readRecord(callId);
      if (!record) return undefined;
      const documents: RenderedDocuments = {};
      if (record.folder) {
        await Promise.all(
          this.documents.map(async (kind) => {
            const text = await readFile(this.inside(documentPath(record.folder, kind)), 'utf8').catch((error: unknown) => {
              if (errno(error) === 'ENOENT') return undefined;
              throw error;
            });
            if (text !== undefined) Object.assign(documents, { [kind]: JSON.parse(text) as unknown });
          }),
        );
      }
      return this.stored(record, documents);
    });
  }

  async openCalls(quietSinceMs: number, limit: number): Promise<OpenCall[]> {
    return this.guarded('list open calls', async () => {
      const folder = this.inside(OPEN_DIR);
      const names = await readdir(folder).catch((error: unknown) => {
        if (errno(error) === 'ENOENT') return [] as string[];
        throw error;
      });
      const markers = await settleAll(
        names.filter((name) => !name.endsWith('.tmp')),
        PARALLEL,
        async (name): Promise<OpenCall | undefined> => {
          const text = await readFile(join(folder, name), 'utf8').catch(() => undefined);
          if (text === undefined) return undefined; // removed meanwhile: the call became final
          try {
            const body = JSON.parse(text) as { call_id?: unknown; room_name?: unknown; last_fact_ms?: unknown };
            if (typeof body.call_id !== 'string' || typeof body.last_fact_ms !== 'number') return undefined;
            return { callId: body.call_id, ...(typeof body.room_name === 'string' ? { roomName: body.room_name } : {}), lastFactAtMs: body.last_fact_ms };
          } catch {
            return undefined; // not ours
          }
        },
      );
      return markers
        .filter((m): m is OpenCall => m !== undefined && m.lastFactAtMs < quietSinceMs)
        .sort((a, b) => a.lastFactAtMs - b.lastFactAtMs || (a.callId < b.callId ? -1 : a.callId > b.callId ? 1 : 0))
        .slice(0, limit);
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }
}
