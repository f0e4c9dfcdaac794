/**
 * Local folder backend on the real file system, each test in a temp folder of its own. The
 * cross-process test runs two real Node processes against one folder, as the agent's job
 * processes do.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FactMessage } from '../../functions/contract/facts.ts';
import { mergeAll, sameState, stateOf } from '../../functions/domain/merge.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { renderDocuments } from '../../functions/domain/render.ts';
import { LocalFolderBackend } from '../../functions/storage/local.ts';
import { BOTH, describeBackendConformance, TZ, workerMessage } from '../support/backend-conformance.ts';
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

describeBackendConformance({
  name: 'local folder',
  create: (location, options) => new LocalFolderBackend(location, options),
  location: freshRoot,
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
    expect((await filesUnder(location)).sort()).toEqual(
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
    // Assess: two documents and one record per call, all under the location, nothing else
    const files = await filesUnder(location);
    expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(HOSTILE_ROOM_NAMES.length * 3);
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
});
