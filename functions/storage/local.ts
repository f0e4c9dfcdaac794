/**
 * Local folder backend. Under the location:
 *
 * - `.calldata-index/<callId>.json`: the record — merged state, folder, version, sole writer and
 *   its sequence, final, last fact;
 * - `<folder>/call_metadata_<slug>_<timestamp>.json` and `<folder>/call_transcription_...json`:
 *   the spec's documents (`<folder>` is `<room slug>/<timestamp>`);
 * - `.calldata-open/<callId>`: a marker while the call is open (last fact, room) for the
 *   sweeper, removed once the record is final;
 * - `.calldata-locks/<callId>.lock`: held while a call's record is read, merged and written;
 * - `.calldata-time/<shard>/<entry>.json`, `.calldata-room/<room key>/<shard>/<entry>.json` and
 *   `.calldata-number/<number key>/<shard>/<entry>.json`: the call index `queryCalls` lists, one
 *   entry per listed call and scope holding its summary, named so that names sort newest first
 *   (see "the call index" below). Written only when the summary changes.
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
import { createHash, randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { CallState, CallSummary, DocumentKind, RenderedDocuments } from '../contract/record.ts';
import { CALL_ID_PATTERN } from '../contract/snapshot.ts';
import {
  checkQuery,
  decodeCursor,
  encodeCursor,
  matchesFilter,
  MergingBackend,
  type BackendOptions,
  type CallFilter,
  type CallPage,
  type CallQuery,
  type FastResult,
  type OpenCall,
  type RowWrite,
  type StoredCall,
} from './backend.ts';
import { DEVICE_NAME } from './names.ts';
import { BackendUnavailableError, InvalidQueryError, StorageError } from './errors.ts';

const BACKEND = 'local';
const INDEX_DIR = '.calldata-index';
const OPEN_DIR = '.calldata-open';
/** `.calldata-<scope>/<shard>/<entry name>`: the call index (see "the call index" below). */
const INDEX_ROOT = '.calldata-';
const LOCK_DIR = '.calldata-locks';
/** A lock older than this was left by a process that died holding it: it may be broken. */
const STALE_LOCK_MS = 30_000;
/** Waiting longer than a stale lock takes to expire means something is wrong: let the queue retry. */
const LOCK_WAIT_MS = 45_000;
/** Files worked on at once: keeps clear of the process's file-descriptor limit. */
const PARALLEL = 32;
/** Names Windows reserves for devices, whatever the extension. */
/** Failures that may clear by themselves: a full disk, a busy file, too many open files. */
const TRANSIENT = /^(ENOSPC|EBUSY|EMFILE|ENFILE|EAGAIN|EIO|ETIMEDOUT)$/;

/** The per-call record's body, on disk here and as the S3 backend's record object. */
export interface RecordFile {
  call_id: string;
  version: number;
  folder: string;
  sole_writer: string | null;
  writer_seq: number;
  final: boolean;
  last_fact_ms: number;
  room_name: string | null;
  started_at_ms: number | null;
  /** The summary the index entries were written from (absent in records written before the index). */
  summary?: CallSummary | null;
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

// ---- the call index (its names are shared with s3.ts) ---------------------------------------
//
// Both file-like backends list calls from an index that sorts itself: per listed call one small
// entry whose NAME sorts newest start first, ties by call id descending (the order of every
// page), holding `{ version, summary }`. A listing in name order is then a page in call order,
// a start-time window is a name range, and a cursor is a name to continue after.
//
//   name  = <13 digits: 9999999999999 - start ms> '_' <call id, each character mirrored> '~.json'
//
// Mirroring maps the id alphabet onto itself in reverse ('-' <-> 'z', '0' <-> 'Z', ...), so a
// larger id gets a smaller name; the closing '~' is above every mirrored character, so a longer
// id still sorts before its own prefix, as `newestFirst` has it. Names are ASCII, so byte order
// (S3's) and code-unit order (Array.prototype.sort, readdir here) agree.
//
// Each entry is kept under three scopes: `time` (every listed call), `room/<key>` and
// `number/<key>` (caller and agent number; one entry when they are equal), where a key is a
// readable slug plus a hash of the exact value. A query lists the narrowest scope its filter
// names: room, else number, else time. Every summary change costs one write per scope (about 4)
// and happens a few times per call (start, answer, end, recording); in return a room or number
// filter reads only that room's or number's calls instead of every call in the window.

/** The latest start a name can hold: 13 digits of milliseconds (the year 2286). */
const MAX_START_MS = 9_999_999_999_999;
/** The call id alphabet (CALL_ID_PATTERN) in ascending order. */
const ID_CHARS = '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const MIRRORED = new Map(Array.from(ID_CHARS, (c, i) => [c, ID_CHARS[ID_CHARS.length - 1 - i] as string]));
/** Closes every mirrored id: '~' is above every mirrored character. */
const ID_END = '~';
const NAME_END = `${ID_END}.json`;
/** Characters of a start part that name the local backend's shard folder (10^8 ms, about 28 hours each). */
const SHARD_CHARS = 5;

/** 13 digits that sort the latest start first (`startMs` an integer; out of range is clamped). */
function startPart(startMs: number): string {
  return String(MAX_START_MS - Math.min(MAX_START_MS, Math.max(0, startMs))).padStart(13, '0');
}

/** The index entry name of a call; undefined for an id outside the call id alphabet. */
export function entryName(startedAtMs: number, callId: string): string | undefined {
  let mirrored = '';
  for (const c of callId) {
    const m = MIRRORED.get(c);
    if (m === undefined) return undefined;
    mirrored += m;
  }
  return mirrored ? `${startPart(Math.floor(startedAtMs))}_${mirrored}${NAME_END}` : undefined;
}

/** A room or number as one safe path segment: a readable slug and a hash of the exact value. */
function valueKey(value: string): string {
  return `${value.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 32)}~${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 16)}`;
}

/** The scopes a summary is listed under: 'time', 'room/<key>', 'number/<key>'. */
function indexScopes(summary: CallSummary | null | undefined): string[] {
  if (!summary) return [];
  const scopes = ['time', `room/${valueKey(summary.roomName)}`];
  for (const number of new Set([summary.userNumber, summary.agentNumber])) if (number !== undefined) scopes.push(`number/${valueKey(number)}`);
  return scopes;
}

/** Scope/name pairs of a summary's entries, e.g. 'time/<name>' (empty for an unlisted call). */
export function indexEntries(summary: CallSummary | null | undefined): string[] {
  const name = summary ? entryName(summary.startedAtMs, summary.callId) : undefined;
  return name ? indexScopes(summary).map((scope) => `${scope}/${name}`) : [];
}

/** An entry's body: the summary and the record version it was taken from (so each version's body, and S3 ETag, is its own). */
export function entryBody(summary: CallSummary, version: number): string {
  return JSON.stringify({ version, summary });
}

/** The summary an entry holds; undefined when it is not an entry of this name (damaged, or not ours). */
export function entrySummary(text: string, name: string): CallSummary | undefined {
  try {
    const summary = (JSON.parse(text) as { summary?: CallSummary } | null)?.summary;
    if (summary && typeof summary.callId === 'string' && typeof summary.startedAtMs === 'number' && entryName(summary.startedAtMs, summary.callId) === name) return summary;
  } catch {
    // not ours
  }
  return undefined;
}

/** How a query walks the index. */
export interface IndexPlan {
  /** 'time', 'room/<key>' or 'number/<key>'. */
  scope: string;
  /** List names after this one (the window's end, or the cursor, whichever is later). */
  startAfter: string | undefined;
  /** Names whose first 13 characters are above this are before the window's start: stop there. */
  lastStartPart: string | undefined;
  /** True when scope and window are the whole filter, so (hash collisions aside) every entry matches. */
  exact: boolean;
  limit: number;
  filter: CallFilter;
}

export function planQuery(query: CallQuery): IndexPlan {
  const { limit, cursor, ...filter } = query;
  checkQuery(query);
  const position = decodeCursor(cursor);
  const after = position ? entryName(position.startedAtMs, position.callId) : undefined;
  if (position && after === undefined) throw new InvalidQueryError('the cursor is not one this store returned');
  // Starts are whole ms: start < untilMs means start < ceil(untilMs); start >= sinceMs means start >= ceil(sinceMs).
  // '~' is above the '_' after every start part, so the window's end skips every name of start untilMs.
  const end = filter.untilMs === undefined || filter.untilMs > MAX_START_MS ? undefined : `${startPart(Math.ceil(filter.untilMs))}${ID_END}`;
  const startAfter = after === undefined ? end : end === undefined || after > end ? after : end;
  const lastStartPart = filter.sinceMs === undefined ? undefined : startPart(Math.ceil(filter.sinceMs));
  const scope = filter.room !== undefined ? `room/${valueKey(filter.room)}` : filter.number !== undefined ? `number/${valueKey(filter.number)}` : 'time';
  const exact =
    filter.direction === undefined &&
    filter.answered === undefined &&
    filter.status === undefined &&
    // With both, the room is the scope and the number is filtered after reading.
    (filter.number === undefined || filter.room === undefined);
  return { scope, startAfter, lastStartPart, exact, limit, filter };
}

/** A run of entry names in index order; `last` once nothing follows it in the plan's range. */
export interface NameBatch {
  names: string[];
  last: boolean;
}

/**
 * Fills one page: takes name batches in order (`want`: how many more matches the page needs, a
 * hint for how many names to list), reads their summaries (`read`, in parallel, undefined for an
 * entry gone or not ours), keeps those that pass the filter. Reads `want` at a time for an exact
 * plan, more at once otherwise (the filter may reject most of them).
 */
export async function collectPage(
  plan: IndexPlan,
  next: (want: number) => Promise<NameBatch>,
  read: (names: string[]) => Promise<(CallSummary | undefined)[]>,
  parallel: number,
): Promise<CallPage> {
  const calls: CallSummary[] = [];
  for (;;) {
    const batch = await next(plan.limit - calls.length);
    for (let i = 0; i < batch.names.length; ) {
      const need = plan.limit - calls.length;
      const chunk = batch.names.slice(i, i + (plan.exact ? need : Math.max(need, 2 * parallel)));
      const summaries = await read(chunk);
      for (const [j, summary] of summaries.entries()) {
        if (!summary || !matchesFilter(summary, plan.filter)) continue;
        calls.push(summary);
        if (calls.length === plan.limit) {
          const more = i + j + 1 < batch.names.length || !batch.last;
          return more ? { calls, cursor: encodeCursor(summary) } : { calls };
        }
      }
      i += chunk.length;
    }
    if (batch.last) return { calls };
  }
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

  /** An index entry's file: `.calldata-<scope>/<shard>/<name>`. */
  private entryPath(entry: string): string {
    const slash = entry.lastIndexOf('/');
    const name = entry.slice(slash + 1);
    return this.inside(join(`${INDEX_ROOT}${entry.slice(0, slash)}`, name.slice(0, SHARD_CHARS), name));
  }

  /**
   * Writes a row as `version` (lock held): documents, marker and index entries first, the record
   * last. `stored` is the record it replaces: the index entries are written only when the summary
   * differs from the one that record holds (a few times per call, not per snapshot), and the
   * entries of that summary that the new one does not have (an earlier start, another room) are
   * removed. A failure before the record is written leaves the old record, so the redelivered
   * batch differs from it and writes all of this again.
   */
  private async commit(row: RowWrite, version: number, stored: RecordFile | undefined): Promise<void> {
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
      summary: row.summary ?? null,
      state: row.state,
    };
    const marker = this.markerPath(row.callId);
    // A record from before the index holds no summary: write the entries, and remove those its state would have had.
    const indexChanged = stored?.summary === undefined || JSON.stringify(stored.summary) !== JSON.stringify(record.summary);
    const entries = indexChanged ? indexEntries(row.summary) : [];
    const previous = !indexChanged || !stored ? [] : indexEntries(stored.summary === undefined ? this.model.summarize(stored.state) : stored.summary);
    await Promise.all([
      ...entries.map((entry) => this.atomicWrite(this.entryPath(entry), entryBody(row.summary as CallSummary, version))),
      ...this.documents.flatMap((kind) => {
        const document = row.documents[kind];
        return row.folder && document ? [this.atomicWrite(this.inside(documentPath(row.folder, kind)), JSON.stringify(document, null, 2))] : [];
      }),
      row.final ? rm(marker, { force: true }) : this.atomicWrite(marker, JSON.stringify({ call_id: row.callId, room_name: row.roomName ?? null, last_fact_ms: row.lastFactAtMs })),
    ]);
    await Promise.all(previous.filter((entry) => !entries.includes(entry)).map((entry) => rm(this.entryPath(entry), { force: true })));
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
            await this.commit(row, 1, undefined);
            return 'applied';
          }
          if (row.soleWriter === null || stored.sole_writer !== row.soleWriter || stored.folder !== row.folder) return 'conflict';
          if (stored.writer_seq >= row.writerSeq) return 'duplicate';
          await this.commit(row, stored.version + 1, stored);
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
          await this.commit(row, (expected ?? 0) + 1, stored);
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

  /**
   * A page of calls from the index: the scope's shard folders in name order (newest first), each
   * shard's names sorted, from the cursor or the window's end down to the window's start, reading
   * the entries in parallel and filtering them.
   *
   * Scales with what the index narrows: the time window (shards outside it are never opened; a
   * shard holds about 28 hours of calls, whose names one readdir lists) and the room or number
   * (a folder of its own). Direction, answered and status are filtered after reading, so a rare
   * one reads many entries per page. No lock: entries are renamed into place whole.
   */
  override async queryCalls(query: CallQuery): Promise<CallPage> {
    const plan = planQuery(query);
    return this.guarded('list calls', async () => {
      const scope = this.inside(`${INDEX_ROOT}${plan.scope}`);
      const names = (folder: string) =>
        readdir(folder).catch((error: unknown) => {
          if (errno(error) === 'ENOENT') return [] as string[];
          throw error;
        });
      const firstShard = plan.startAfter?.slice(0, SHARD_CHARS);
      const lastShard = plan.lastStartPart?.slice(0, SHARD_CHARS);
      const shards = (await names(scope)).filter((name) => /^[0-9]+$/.test(name) && name.length === SHARD_CHARS && (firstShard === undefined || name >= firstShard)).sort();
      let s = 0;
      const next = async (): Promise<NameBatch> => {
        const shard = shards[s++];
        if (shard === undefined || (lastShard !== undefined && shard > lastShard)) return { names: [], last: true };
        const inShard: string[] = [];
        let cut = false;
        // Temp files start with '.', entry names with a digit.
        for (const name of (await names(join(scope, shard))).filter((n) => !n.startsWith('.')).sort()) {
          if (plan.startAfter !== undefined && name <= plan.startAfter) continue;
          if (plan.lastStartPart !== undefined && name.slice(0, 13) > plan.lastStartPart) {
            cut = true;
            break;
          }
          inShard.push(name);
        }
        return { names: inShard, last: cut || s >= shards.length };
      };
      const read = (batch: string[]) =>
        settleAll(batch, PARALLEL, async (name) => {
          const text = await readFile(join(scope, name.slice(0, SHARD_CHARS), name), 'utf8').catch((error: unknown) => {
            if (errno(error) === 'ENOENT') return undefined; // removed meanwhile: the call's start or room moved
            throw error;
          });
          return text === undefined ? undefined : entrySummary(text, name);
        });
      return collectPage(plan, next, read, PARALLEL);
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }
}
