import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalFolderBackend } from '../../functions/storage/local.ts';
import { metadataRecord, transcriptionRecord } from '../../functions/storage/documents.ts';
import { describeBackendConformance } from '../support/backend-conformance.ts';
import { buildSnapshot, HOSTILE_ROOM_NAMES } from '../support/snapshots.ts';

const roots: string[] = [];
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'calldata-local-'));
  roots.push(root);
  return join(root, 'Call_Metadata');
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

describeBackendConformance({
  name: 'local folder',
  create: (location) => new LocalFolderBackend(location),
  location: freshRoot,
});

describe('local folder layout', () => {
  it('writes the spec path <location>/<room>/<timestamp>/call_metadata_<room>_<timestamp>.json', async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location);
    const snapshot = buildSnapshot({ roomName: 'sales-call', kind: 'ended', startedAtMs: Date.UTC(2026, 10, 23, 19, 18, 38, 120) });
    // Act
    const [meta, transcript] = await backend.write([metadataRecord(snapshot, 'Asia/Kolkata'), transcriptionRecord(snapshot, 'Asia/Kolkata')]);
    // Assess
    const suffix = snapshot.callId.replace(/[^A-Za-z0-9]/g, '').slice(-8);
    const folder = join(resolve(location), 'sales-call', `20261124T004838.120_${suffix}`);
    expect(meta?.location).toBe(join(folder, `call_metadata_sales-call_20261124T004838.120_${suffix}.json`));
    expect(transcript?.location).toBe(join(folder, `call_transcription_sales-call_20261124T004838.120_${suffix}.json`));
    const stored = JSON.parse(await readFile(meta?.location ?? '', 'utf8'));
    expect(stored).toMatchObject({ room_name: 'sales-call', start_time: '2026-11-24T00:48:38.120+05:30', timezone: 'Asia/Kolkata', answered: true, status: 'completed' });
  });

  it('keeps every hostile room name inside the location folder and leaves no temp files', async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location);
    // Act
    for (const roomName of HOSTILE_ROOM_NAMES) await backend.write([metadataRecord(buildSnapshot({ roomName }), 'UTC')]);
    // Assess: every file is under the location, and nothing half-written remains
    const files = (await readdir(location, { recursive: true })).map(String);
    expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(HOSTILE_ROOM_NAMES.length);
    expect(files.some((f) => f.endsWith('.tmp'))).toBe(false);
    for (const f of files) expect(resolve(location, f).startsWith(resolve(location))).toBe(true);
    expect(await readdir(join(location, '..'))).toEqual(['Call_Metadata']);
  });

  it('never shows a half-written file to a reader during concurrent writes', async () => {
    // Prepare
    const location = await freshRoot();
    const backend = new LocalFolderBackend(location);
    const callId = 'concurrent-call-1';
    const versions = Array.from({ length: 30 }, (_, i) => buildSnapshot({ callId, seq: 100 + i, turns: 200 }));
    // Act: write all versions at once while reading repeatedly
    const writes = Promise.all(versions.map((s) => backend.write([transcriptionRecord(s, 'UTC')])));
    const reads: unknown[] = [];
    for (let i = 0; i < 30; i++) {
      reads.push(await backend.read('transcription', callId).catch((e: unknown) => e));
    }
    await writes;
    // Assess: every read parsed (no SyntaxError), and the newest version won
    expect(reads.filter((r) => r instanceof Error)).toEqual([]);
    expect((await backend.read('transcription', callId))?.seq).toBe(129);
  });
});
