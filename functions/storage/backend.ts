/**
 * The one small interface every storage backend implements, and the base that holds what
 * every backend repeats: how a batch of facts becomes guarded writes.
 *
 * Each backend keeps one row (document, hash, object) per call holding the merged record, the
 * folder chosen for it, a version, and the documents rendered from it. A write goes:
 *
 *   1. fast path, one round trip per batch: a call whose facts in this batch all come from one
 *      cumulative writer (the worker) is inserted when new, or replaced when the stored record
 *      came from that same writer alone with a lower sequence (its facts are then a subset of
 *      ours). Otherwise the backend writes nothing and reports a conflict;
 *   2. read-merge-write for the rest: read the stored rows, merge, write back guarded by the
 *      stored version (compare-and-swap), and retry what lost a race.
 *
 * A backend fills in three protected methods (and `read`, `openCalls`, `close`); adding a backend
 * means one file implementing them, one line in select.ts and one test file.
 *
 * Storage knows nothing of the merge rules: the domain hands them in as a RecordModel.
 */
import type { CallState, CallSummary, DocumentKind, RenderedDocuments } from '../contract/record.ts';
import { BackendUnavailableError, InvalidQueryError } from './errors.ts';

/** The merge rules and renderers, supplied by functions/domain/model.ts. */
export interface RecordModel {
  /** Equal for models that render alike (the zone and rendering options): part of a backend's cache key. */
  readonly key: string;
  merge(a: CallState, b: CallState): CallState;
  same(a: CallState, b: CallState): boolean;
  /** `<slug>/<timestamp>` once the record knows its room and start. */
  chooseFolder(state: CallState): string | undefined;
  render(state: CallState, folder: string, kinds: readonly DocumentKind[]): RenderedDocuments;
  isFinal(state: CallState): boolean;
  /** The call's line in a list; undefined for records no agent reported (they are never listed). */
  summarize(state: CallState): CallSummary | undefined;
}

/** Which calls a query wants. Every field is optional; times are the call's start. */
export interface CallFilter {
  /** Start at or after (ms). */
  sinceMs?: number;
  /** Start before (ms). */
  untilMs?: number;
  /** Exact room name. */
  room?: string;
  /** Exact phone number, the caller's or the agent's. */
  number?: string;
  direction?: 'inbound' | 'outbound';
  answered?: boolean;
  status?: string;
}

export interface CallQuery extends CallFilter {
  /** Page size (1-1000). */
  limit: number;
  /** From the previous page: continue after its last call. */
  cursor?: string;
}

export interface CallPage {
  /** Newest start first; ties by call id, descending. */
  calls: CallSummary[];
  /** Present when more calls may follow. */
  cursor?: string;
}

/** Keyset position of a page: the last call's start and id. Opaque to callers. */
export function encodeCursor(last: Pick<CallSummary, 'startedAtMs' | 'callId'>): string {
  return Buffer.from(JSON.stringify([last.startedAtMs, last.callId]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): { startedAtMs: number; callId: string } | undefined {
  if (!cursor) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && typeof value[0] === 'number' && Number.isSafeInteger(value[0]) && typeof value[1] === 'string' && value[1].length <= 128) {
      return { startedAtMs: value[0], callId: value[1] };
    }
  } catch {
    // fall through: a cursor we did not make
  }
  throw new InvalidQueryError('the cursor is not one this store returned');
}

/** Largest page a query may ask for. */
export const MAX_PAGE = 1_000;

/** Refuses a query no store should run: a bad limit, time bound or filter value (values may come from users). */
export function checkQuery(query: CallQuery): void {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > MAX_PAGE) throw new InvalidQueryError(`limit must be a whole number from 1 to ${MAX_PAGE}`);
  for (const bound of [query.sinceMs, query.untilMs]) {
    if (bound !== undefined && (typeof bound !== 'number' || Number.isNaN(bound))) throw new InvalidQueryError('since and until must be times in milliseconds');
  }
  for (const key of ['room', 'number', 'status'] as const) {
    if (query[key] !== undefined && typeof query[key] !== 'string') throw new InvalidQueryError(`${key} must be text`);
  }
  if (query.direction !== undefined && query.direction !== 'inbound' && query.direction !== 'outbound') throw new InvalidQueryError('direction must be inbound or outbound');
  if (query.answered !== undefined && typeof query.answered !== 'boolean') throw new InvalidQueryError('answered must be true or false');
}

/** True when `call` passes `filter` (backends that cannot filter natively apply it after reading). */
export function matchesFilter(call: CallSummary, filter: CallFilter): boolean {
  return (
    (filter.sinceMs === undefined || call.startedAtMs >= filter.sinceMs) &&
    (filter.untilMs === undefined || call.startedAtMs < filter.untilMs) &&
    (filter.room === undefined || call.roomName === filter.room) &&
    (filter.number === undefined || call.userNumber === filter.number || call.agentNumber === filter.number) &&
    (filter.direction === undefined || call.direction === filter.direction) &&
    (filter.answered === undefined || call.answered === filter.answered) &&
    (filter.status === undefined || call.status === filter.status)
  );
}

/** Newest first, ties by call id descending: the order of every page. */
export function newestFirst(a: Pick<CallSummary, 'startedAtMs' | 'callId'>, b: Pick<CallSummary, 'startedAtMs' | 'callId'>): number {
  return b.startedAtMs - a.startedAtMs || (a.callId < b.callId ? 1 : a.callId > b.callId ? -1 : 0);
}

/** What one batch says about one call. */
export interface CallDelta {
  callId: string;
  /** The merge of the batch's messages for this call. */
  state: CallState;
  /** Set when every message came from this one cumulative writer (enables the fast path). */
  cumulativeWriter?: { writer: string; seq: number };
}

export interface StoredCall {
  callId: string;
  version: number;
  /** '' until the record knows its room and start. */
  folder: string;
  state: CallState;
  documents: RenderedDocuments;
  /** Human-readable place, with no credentials in it. */
  location: string;
}

export interface MergeOutcome {
  callId: string;
  /** False when the stored record already held every fact of the delta. */
  changed: boolean;
  location: string;
  /** The stored record after this write. */
  state: CallState;
  folder: string;
}

/** A call nobody has closed, for the sweeper. */
export interface OpenCall {
  callId: string;
  roomName?: string;
  lastFactAtMs: number;
}

export interface StorageBackend {
  /** e.g. 'postgres'; used in logs and errors. */
  readonly name: string;
  /** Merges each delta into its call's stored record. Throws a StorageError (retryable when the backend is unreachable). */
  merge(deltas: readonly CallDelta[]): Promise<MergeOutcome[]>;
  read(callId: string): Promise<StoredCall | undefined>;
  /** Calls without an outcome whose last fact is older than `quietSinceMs`, oldest first. */
  openCalls(quietSinceMs: number, limit: number): Promise<OpenCall[]>;
  /** A page of calls an agent reported, newest first, filtered natively where the store can. */
  queryCalls(query: CallQuery): Promise<CallPage>;
  close(): Promise<void>;
}

export interface BackendOptions {
  /** Which documents this location stores (the record itself is always stored). */
  documents: readonly DocumentKind[];
  model: RecordModel;
}

/** One row as a backend writes it, with the fields backends index. */
export interface RowWrite {
  callId: string;
  folder: string;
  state: CallState;
  documents: RenderedDocuments;
  roomName: string | undefined;
  startedAtMs: number | undefined;
  lastFactAtMs: number;
  final: boolean;
  /** The only writer of the record, or null once several wrote to it. */
  soleWriter: string | null;
  /** That writer's sequence (0 when there are several). */
  writerSeq: number;
  /** What queries index; undefined while no agent reported the call (then it is not listed). */
  summary: CallSummary | undefined;
}

export type FastResult = 'applied' | 'duplicate' | 'conflict';

/** Read-merge-write rounds before a batch gives up (only when other writers keep winning). */
const MAX_ROUNDS = 8;

/** Table / collection / key prefix names. */
export const RECORDS = 'call_records';

/** Calls remembered as written by several writers (their fast path would only fail). */
const SHARED_CALLS_MAX = 10_000;

export abstract class MergingBackend implements StorageBackend {
  abstract readonly name: string;
  protected readonly documents: readonly DocumentKind[];
  protected readonly model: RecordModel;
  /** Calls this process saw stored with several writers: a guarded one-writer write cannot succeed for them. */
  private readonly shared = new Set<string>();

  constructor(options: BackendOptions) {
    this.documents = options.documents;
    this.model = options.model;
  }

  /**
   * Per row, atomically: insert when absent (version 1); replace (version + 1) when the stored
   * row's sole writer is `row.soleWriter` with a lower sequence and the same folder; report
   * 'duplicate' when that writer's stored sequence is equal or higher; otherwise write nothing
   * and report 'conflict'. One round trip for the whole batch where the server allows.
   */
  protected abstract writeIfSoleWriter(rows: readonly RowWrite[]): Promise<FastResult[]>;
  /** The stored rows of these calls (absent ones left out). */
  protected abstract readRows(callIds: readonly string[]): Promise<Map<string, StoredCall>>;
  /**
   * Per row, atomically: with `expected` undefined insert only when absent; otherwise replace
   * only when the stored version equals `expected` (the new version is expected + 1).
   * Resolves one boolean per row: written or not.
   */
  protected abstract writeIfVersion(rows: readonly { row: RowWrite; expected: number | undefined }[]): Promise<boolean[]>;

  abstract read(callId: string): Promise<StoredCall | undefined>;
  abstract openCalls(quietSinceMs: number, limit: number): Promise<OpenCall[]>;
  abstract queryCalls(query: CallQuery): Promise<CallPage>;
  abstract close(): Promise<void>;
  /** Where a call's record lives, for outcomes and logs. */
  protected abstract locate(callId: string, folder: string): string;

  protected row(callId: string, state: CallState, folder: string): RowWrite {
    const only = Object.entries(state.writers);
    const [first] = only;
    const sole = only.length === 1 && first ? first : undefined;
    return {
      callId,
      folder,
      state,
      documents: folder ? this.model.render(state, folder, this.documents) : {},
      roomName: state.roomName,
      startedAtMs: state.startedAtMs,
      lastFactAtMs: state.lastFactAtMs,
      final: this.model.isFinal(state),
      soleWriter: sole ? sole[0] : null,
      writerSeq: sole ? sole[1] : 0,
      summary: this.model.summarize(state),
    };
  }

  private rememberShared(callId: string): void {
    if (this.shared.size >= SHARED_CALLS_MAX) this.shared.clear();
    this.shared.add(callId);
  }

  async merge(deltas: readonly CallDelta[]): Promise<MergeOutcome[]> {
    // One delta per call: a batch may name a call more than once.
    const byCall = new Map<string, CallDelta>();
    for (const delta of deltas) {
      const current = byCall.get(delta.callId);
      if (!current) byCall.set(delta.callId, delta);
      else {
        const same = current.cumulativeWriter && delta.cumulativeWriter && current.cumulativeWriter.writer === delta.cumulativeWriter.writer;
        byCall.set(delta.callId, {
          callId: delta.callId,
          state: this.model.merge(current.state, delta.state),
          cumulativeWriter: same ? { writer: delta.cumulativeWriter!.writer, seq: Math.max(current.cumulativeWriter!.seq, delta.cumulativeWriter!.seq) } : undefined,
        });
      }
    }
    const results = new Map<string, MergeOutcome>();

    // 1. Fast path.
    const fast = [...byCall.values()].flatMap((delta) => {
      const folder = this.model.chooseFolder(delta.state);
      return delta.cumulativeWriter && folder && !this.shared.has(delta.callId) ? [{ delta, row: this.row(delta.callId, delta.state, folder) }] : [];
    });
    if (fast.length > 0) {
      const outcomes = await this.writeIfSoleWriter(fast.map((f) => f.row));
      fast.forEach(({ delta, row }, i) => {
        const outcome = outcomes[i];
        if (outcome === 'applied' || outcome === 'duplicate') {
          // Same sole writer: the stored facts are a subset of ours (or ours of theirs, for a duplicate).
          results.set(delta.callId, { callId: delta.callId, changed: outcome === 'applied', location: this.locate(delta.callId, row.folder), state: delta.state, folder: row.folder });
        }
      });
    }

    // 2. Read-merge-write for everything else.
    let pending = [...byCall.values()].filter((delta) => !results.has(delta.callId));
    for (let round = 0; pending.length > 0; round++) {
      if (round === MAX_ROUNDS) throw new BackendUnavailableError(this.name, `${this.name}: records kept changing under concurrent writers; try again`);
      const stored = await this.readRows(pending.map((d) => d.callId));
      const writes: { delta: CallDelta; row: RowWrite; expected: number | undefined }[] = [];
      for (const delta of pending) {
        const current = stored.get(delta.callId);
        const merged = current ? this.model.merge(current.state, delta.state) : delta.state;
        if (current && this.model.same(merged, current.state) && (current.folder || !this.model.chooseFolder(merged))) {
          results.set(delta.callId, { callId: delta.callId, changed: false, location: current.location, state: current.state, folder: current.folder });
          continue;
        }
        // The folder is chosen once: by the first write that knew the room and the start.
        const folder = current?.folder || this.model.chooseFolder(merged) || '';
        writes.push({ delta, row: this.row(delta.callId, merged, folder), expected: current?.version });
      }
      const written = writes.length > 0 ? await this.writeIfVersion(writes.map(({ row, expected }) => ({ row, expected }))) : [];
      writes.forEach(({ delta, row }, i) => {
        if (!written[i]) return;
        results.set(delta.callId, { callId: delta.callId, changed: true, location: this.locate(delta.callId, row.folder), state: row.state, folder: row.folder });
        if (row.soleWriter === null) this.rememberShared(delta.callId);
      });
      pending = pending.filter((delta) => !results.has(delta.callId));
    }
    return deltas.map((delta) => results.get(delta.callId) as MergeOutcome);
  }
}
