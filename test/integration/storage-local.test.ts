/**
 * Local folder backend on the real file system, each test in a temp folder of its own. The
 * cross-process test runs two real Node processes against one folder, as the agent's job
 * processes do.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FactMessage } from '../../functions/contract/facts.ts';
import { mergeAll, sameState, stateOf } from '../../functions/domain/merge.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { renderDocuments, summarize } from '../../functions/domain/render.ts';
import { entryName, LocalFolderBackend } from '../../functions/storage/local.ts';
import { BOTH, describeBackendConformance, TZ, workerMessage } from '../support/backend-conformance.ts';
import { describeQueryConformance } from '../support/query-conformance.ts';
import { HOSTILE_ROOM_NAMES, longConversation } from '../support/snapshots.ts';

const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);
/** START in Asia/Kolkata, as folder timestamps show it. */
const START_STAMP = '20261124T004838.120';

const roots: string[] = [];
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'calldata-local-'));
  roots.push(root);
  return join(root, 'Call_Metadata');
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

const newCallId = () => `RM_${randomUUID().replaceAll('-', '').slice(0, 12)}`;

/** Every file under `location`, relative to it. */
async function filesUnder(location: string): Promise<string[]> {
  const entries = await readdir(location, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(resolve(location).length + 1));
}

/** Index entries (`.calldata-time/`, `.calldata-room/`, `.calldata-number/`) apart from the other files. */
const INDEX_FILE = /^\.calldata-(time|room|number)[\\/]/;

/** The index entry files of a call (time, room, numbers), with the body each holds and its inode. */
async function indexOf(location: string, callId: string, startedAtMs: number): Promise<Map<string, { version: number; summary: { status: string; startedAtMs: number; roomName: string }; ino: number }>> {
  const name = entryName(startedAtMs, callId) ?? '';
  const found = new Map<string, { version: number; summary: { status: string; startedAtMs: number; roomName: string }; ino: number }>();
  for (const file of (await filesUnder(location)).filter((f) => INDEX_FILE.test(f) && f.endsWith(name)).sort()) {
    const path = join(location, file);
    found.set(file, { ...(JSON.parse(await readFile(path, 'utf8')) as { version: number; summary: { status: string; startedAtMs: number; roomName: string } }), ino: (await stat(path)).ino });
  }
  return found;
}

describeBackendConformance({
  name: 'local folder',
  create: (location, options) => new LocalFolderBackend(location, options),
  location: freshRoot,
});

describeQueryConformance({
  name: 'local folder',
  create: async (options) => new LocalFolderBackend(await freshRoot(), options),
  calls: 2_000,
});

describe('local folder backend specifics', () => {
  it("writes the documents at the spec's paths, the record under .calldata-index", async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    const callId = newCallId();
    const message = workerMessage(callId, 3, { roomName: 'sales-call', final: true });
    const folder = `sales-call/${START_STAMP}_${callId}`;
    // Act
    const [outcome] = await backend.merge(deltasOf([message]));
    // Assess
    expect(outcome?.folder).toBe(folder);
    expect(outcome?.location).toBe(join(resolve(location), 'sales-call', `${START_STAMP}_${callId}`));
    expect((await filesUnder(location)).filter((f) => !INDEX_FILE.test(f)).sort()).toEqual(
      [`.calldata-index/${callId}.json`, `${folder}/call_metadata_sales-call_${START_STAMP}_${callId}.json`, `${folder}/call_transcription_sales-call_${START_STAMP}_${callId}.json`].map((p) => join(...p.split('/'))).sort(),
    );
    const metadata: unknown = JSON.parse(await readFile(join(location, folder, `call_metadata_sales-call_${START_STAMP}_${callId}.json`), 'utf8'));
    expect(metadata).toEqual(renderDocuments(stateOf(message), folder, ['metadata'], TZ).metadata);
    expect(metadata).toMatchObject({ room_name: 'sales-call', start_time: '2026-11-24T00:48:38.120+05:30', timezone: TZ, status: 'completed' });
    await backend.close();
  });

  it("never names a folder with a leading '-' or a device name", async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    const rooms = ['-rf', 'con', 'LPT1.txt'];
    const ids = rooms.map(() => newCallId());
    // Act
    const outcomes = await backend.merge(deltasOf(rooms.map((roomName, i) => workerMessage(ids[i] as string, 1, { roomName }))));
    // Assess: each room's folder is a safe name holding that call's documents
    const folders = await readdir(location);
    for (const name of folders) {
      expect(name.startsWith('-')).toBe(false);
      expect(name).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i);
    }
    for (const [i, outcome] of outcomes.entries()) {
      expect(await readdir(join(location, outcome?.folder ?? ''))).toHaveLength(2);
      expect((await backend.read(ids[i] as string))?.documents.metadata?.room_name).toBe(rooms[i]);
    }
    await backend.close();
  });

  it('keeps every hostile room name inside the location and leaves no temp or lock files', async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    // Act
    await backend.merge(deltasOf(HOSTILE_ROOM_NAMES.map((roomName) => workerMessage(newCallId(), 2, { roomName, final: true }))));
    // Assess: two documents, one record and four index entries (time, room, two numbers) per call, all under the location, nothing else
    const files = await filesUnder(location);
    expect(files.filter((f) => f.endsWith('.json') && !INDEX_FILE.test(f))).toHaveLength(HOSTILE_ROOM_NAMES.length * 3);
    expect(files.filter((f) => f.endsWith('.json') && INDEX_FILE.test(f))).toHaveLength(HOSTILE_ROOM_NAMES.length * 4);
    expect(new Set(files.filter((f) => f.startsWith('.calldata-room')).map((f) => f.split(/[\\/]/)[1])).size).toBe(HOSTILE_ROOM_NAMES.length);
    expect(files.filter((f) => !f.endsWith('.json'))).toEqual([]);
    expect(await readdir(join(location, '..'))).toEqual(['Call_Metadata']);
    await backend.close();
  });

  it('two processes racing on the same 20 calls with different writers lose nothing', async () => {
    // Prepare: per process one job's snapshots of the same 20 calls, and a child script that merges them
    const location = await freshRoot();
    const ids = Array.from({ length: 20 }, () => newCallId());
    const writers = ['job:AJ_one', 'job:AJ_two'];
    const messages = writers.map((writer, w) => ids.flatMap((id) => [1, 2, 3, 4].map((seq) => workerMessage(id, seq, { writer, final: seq === 4 && w === 1 }))));
    const script = join(location, '..', `merger-${randomUUID()}.mjs`);
    const url = (path: string) => new URL(path, import.meta.url).href;
    await writeFile(
      script,
      `import { LocalFolderBackend } from ${JSON.stringify(url('../../functions/storage/local.ts'))};
import { recordModel } from ${JSON.stringify(url('../../functions/domain/model.ts'))};
import { deltasOf } from ${JSON.stringify(url('../../functions/domain/persist.ts'))};
process.once('message', async ({ location, messages }) => {
  const backend = new LocalFolderBackend(location, { documents: ['metadata', 'transcription'], model: recordModel(${JSON.stringify(TZ)}) });
  try {
    // Per call its snapshots in order, all calls at once: every call is contended by both processes.
    const callIds = [...new Set(messages.map((m) => m.callId))];
    await Promise.all(callIds.map(async (callId) => {
      for (const message of messages.filter((m) => m.callId === callId)) await backend.merge(deltasOf([message]));
    }));
    await backend.close();
    process.send({ done: true }, () => process.exit(0));
  } catch (error) {
    process.send({ error: String(error?.stack ?? error) }, () => process.exit(1));
  }
});
process.send({ ready: true });
`,
    );
    const children = messages.map(() => fork(script, [], { execArgv: ['--no-warnings'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    // What each child said last: done, its error, or that it exited without saying either.
    const results = children.map(
      (child) =>
        new Promise<Record<string, unknown>>((done) => {
          child.on('message', (m: Record<string, unknown>) => ('done' in m || 'error' in m) && done(m));
          child.once('exit', (code) => done({ exited: code }));
        }),
    );
    await Promise.all(children.map((child) => new Promise((ready) => child.once('message', ready).once('exit', ready))));
    // Act: both start at once
    children.forEach((child, i) => child.send({ location, messages: messages[i] }));
    // Assess: both finished, and each record is the merge of both jobs' facts with matching documents
    expect(await Promise.all(results)).toEqual([{ done: true }, { done: true }]);
    const backend = new LocalFolderBackend(location, BOTH);
    for (const id of ids) {
      const expected = mergeAll([...(messages[0] as FactMessage[]), ...(messages[1] as FactMessage[])].filter((m) => m.callId === id).map(stateOf));
      const stored = await backend.read(id);
      expect(stored && sameState(stored.state, expected), `record of ${id}`).toBe(true);
      expect(stored?.documents).toEqual(renderDocuments(expected, stored?.folder ?? '', BOTH.documents, TZ));
      expect(stored?.documents.transcription?.conversation).toHaveLength(16);
    }
    expect((await filesUnder(location)).filter((f) => !f.endsWith('.json'))).toEqual([]);
    await backend.close();
  });

  it('breaks a lock left behind by a process that died holding it', async () => {
    // Prepare: a lock file 31 s old
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    const callId = newCallId();
    const lock = join(location, '.calldata-locks', `${callId}.lock`);
    await mkdir(join(location, '.calldata-locks'), { recursive: true });
    await writeFile(lock, '4242 dead-process');
    const old = new Date(Date.now() - 31_000);
    await utimes(lock, old, old);
    // Act
    const [outcome] = await backend.merge(deltasOf([workerMessage(callId, 1)]));
    // Assess
    expect(outcome?.changed).toBe(true);
    expect(await readdir(join(location, '.calldata-locks'))).toEqual([]);
    await backend.close();
  });

  it('keeps an open-call marker while the call is open and removes it once final', async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    const callId = newCallId();
    // Act + Assess: open
    await backend.merge(deltasOf([workerMessage(callId, 1, { roomName: 'open-room' })]));
    expect(JSON.parse(await readFile(join(location, '.calldata-open', callId), 'utf8'))).toEqual({ call_id: callId, room_name: 'open-room', last_fact_ms: START + 2_000 });
    expect(await backend.openCalls(START + 60_000, 10)).toEqual([{ callId, roomName: 'open-room', lastFactAtMs: START + 2_000 }]);
    // Act + Assess: final
    await backend.merge(deltasOf([workerMessage(callId, 2, { roomName: 'open-room', final: true })]));
    expect(await readdir(join(location, '.calldata-open'))).toEqual([]);
    expect(await backend.openCalls(START + 60_000, 10)).toEqual([]);
    await backend.close();
  });

  it('stores a 2 MB transcript whole at its spec path', async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    const callId = newCallId();
    const items = longConversation(4 * 60 * 60 * 1000, 2 * 1024 * 1024).map((item, i) => ({ ...item, id: `long-${i}` }));
    // Act
    const [outcome] = await backend.merge(deltasOf([workerMessage(callId, 2, { final: true, items })]));
    // Assess
    const text = await readFile(join(location, outcome?.folder ?? '', `call_transcription_sip-room-1_${START_STAMP}_${callId}.json`), 'utf8');
    expect(text.length).toBeGreaterThan(2 * 1024 * 1024);
    expect((JSON.parse(text) as { conversation: unknown[] }).conversation).toHaveLength(items.length);
    await backend.close();
  });

  it('keeps one index entry per scope that follows the call from in progress to completed, and moves it when the start does', async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    const callId = newCallId();
    const room = `follow-${randomUUID()}`;
    // Act + Assess: in progress; time, room and both numbers list it
    await backend.merge(deltasOf([workerMessage(callId, 1, { roomName: room })]));
    let index = await indexOf(location, callId, START);
    expect([...index.keys()].map((k) => k.split(/[\\/]/)[0])).toEqual(['.calldata-number', '.calldata-number', '.calldata-room', '.calldata-time']);
    expect([...index.values()].map((v) => v.summary.status)).toEqual(['in_progress', 'in_progress', 'in_progress', 'in_progress']);
    expect((await backend.queryCalls({ limit: 10, room })).calls).toEqual([summarize(stateOf(workerMessage(callId, 1, { roomName: room })))]);
    // Act + Assess: completed; the same files, now completed, at the version that changed them
    await backend.merge(deltasOf([workerMessage(callId, 2, { roomName: room })]));
    await backend.merge(deltasOf([workerMessage(callId, 3, { roomName: room, final: true })]));
    const completed = await indexOf(location, callId, START);
    expect([...completed.keys()]).toEqual([...index.keys()]);
    expect([...completed.values()].map((v) => [v.summary.status, v.version])).toEqual(Array.from({ length: 4 }, () => ['completed', 3]));
    const page = await backend.queryCalls({ limit: 10, room });
    expect(page.calls.map((c) => [c.callId, c.status])).toEqual([[callId, 'completed']]);
    expect(page.cursor).toBeUndefined();
    // Act + Assess: another job reports an earlier start and a smaller room name: the entries move, none is left behind
    const earlier = workerMessage(callId, 1, { roomName: `${room.slice(0, -1)}!`, writer: 'job:AJ_other' });
    earlier.facts.startedAtMs = START - 60_000;
    await backend.merge(deltasOf([earlier]));
    expect(await indexOf(location, callId, START)).toEqual(new Map());
    index = await indexOf(location, callId, START - 60_000);
    expect([...index.values()].map((v) => [v.summary.startedAtMs, v.summary.roomName, v.version])).toEqual(Array.from({ length: 4 }, () => [START - 60_000, `${room.slice(0, -1)}!`, 4]));
    expect((await backend.queryCalls({ limit: 10, room })).calls).toEqual([]);
    expect((await backend.queryCalls({ limit: 10 })).calls.map((c) => [c.callId, c.startedAtMs])).toEqual([[callId, START - 60_000]]);
    expect((await filesUnder(location)).filter((f) => !f.endsWith('.json'))).toEqual([]);
    await backend.close();
  });

  it("one writer's progress snapshots do not rewrite the index while the summary stays the same", async () => {
    // Prepare: a stored call
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    const callId = newCallId();
    await backend.merge(deltasOf([workerMessage(callId, 1)]));
    const first = await indexOf(location, callId, START);
    expect(first.size).toBe(4);
    // Act: three more progress snapshots
    for (const seq of [2, 3, 4]) await backend.merge(deltasOf([workerMessage(callId, seq)]));
    // Assess: the record moved on; the entries are the same files (a rewrite renames a new file into place)
    expect((await backend.read(callId))?.version).toBe(4);
    expect(await indexOf(location, callId, START)).toEqual(first);
    // Act: the final snapshot changes the summary
    await backend.merge(deltasOf([workerMessage(callId, 5, { final: true })]));
    // Assess: every entry rewritten once, at the final version
    const final = await indexOf(location, callId, START);
    expect([...final.keys()]).toEqual([...first.keys()]);
    expect([...final.entries()].map(([file, v]) => [v.summary.status, v.version, first.get(file)?.ino === v.ino])).toEqual(Array.from({ length: 4 }, () => ['completed', 5, false]));
    await backend.close();
  });

  it('pages a time window of calls newest first across shard folders', async () => {
    // Prepare: 30 calls, one every 10 hours (a shard folder holds about 28 hours)
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location, BOTH);
    const messages = Array.from({ length: 30 }, (_, i) => {
      const message = workerMessage(newCallId(), 1, { final: i % 2 === 0 });
      message.facts.startedAtMs = START + i * 10 * 60 * 60_000;
      return message;
    });
    await backend.merge(deltasOf(messages));
    const want = messages
      .map((m) => m.facts.startedAtMs ?? 0)
      .filter((ms) => ms >= START + 50 * 60 * 60_000 && ms < START + 250 * 60 * 60_000)
      .sort((x, y) => y - x);
    // Act: pages of 3
    const starts: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await backend.queryCalls({ limit: 3, sinceMs: START + 50 * 60 * 60_000, untilMs: START + 250 * 60 * 60_000, cursor });
      starts.push(...page.calls.map((c) => c.startedAtMs));
      cursor = page.cursor;
    } while (cursor);
    // Assess
    expect(new Set((await readdir(join(location, '.calldata-time'))).map((n) => n.length)).size).toBe(1);
    expect((await readdir(join(location, '.calldata-time'))).length).toBeGreaterThan(5);
    expect(starts).toEqual(want);
    expect((await backend.queryCalls({ limit: 1000, status: 'completed', sinceMs: START + 50 * 60 * 60_000 })).calls).toHaveLength(12);
    await backend.close();
  });
});
