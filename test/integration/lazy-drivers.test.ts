/**
 * A process loads only the database driver its locations need: one fact message through the
 * embedded pipeline and one sweep, in a child process with the environment under test, then the
 * list of drivers the process loaded.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { requireServer } from '../support/servers.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const dirs: string[] = [];

const module = (path: string) => JSON.stringify(pathToFileURL(join(ROOT, path)).href);

/** Sends one final fact message through the embedded pipeline, sweeps once, prints the drivers loaded. */
const PROBE = `
import { createRequire } from 'node:module';
const { loadConfig } = await import(${module('functions/config/config.ts')});
const { MESSAGE_VERSION } = await import(${module('functions/contract/facts.ts')});
const { closeAllBackends } = await import(${module('functions/storage/select.ts')});
const { sweep } = await import(${module('functions/sweeper/sweep.ts')});
const { pipelineFor } = await import(${module('functions/wiring.ts')});

const pipeline = pipelineFor(loadConfig());
const now = Date.now();
await (await pipeline.factSink()).send({
  v: MESSAGE_VERSION, kind: 'ended', callId: 'probe-' + now, writer: 'job:AJ_probe', seq: 1, cumulative: true, sentAtMs: now,
  facts: {
    roomName: 'probe-room', startedAtMs: now - 60000, answeredAtMs: now - 59000,
    ended: { source: 'worker', atMs: now }, outcome: { source: 'worker', atMs: now, status: 'completed' },
    conversation: [{ id: 'p1', role: 'user', content: 'hello', interrupted: false, timestampMs: now - 58000 }],
  },
});
await sweep({ pipeline, rooms: { listRooms: async () => [] } });
await closeAllBackends();
const loaded = Object.keys(createRequire(import.meta.url).cache);
const drivers = ['pg', 'mysql2', 'mongodb', 'ioredis', '@aws-sdk/client-s3'].filter((name) => loaded.some((path) => path.includes('/node_modules/' + name + '/')));
process.stdout.write(JSON.stringify(drivers));
`;

async function driversLoadedWith(env: Record<string, string>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'calldata-lazy-'));
  dirs.push(dir);
  const probe = join(dir, 'probe.mjs');
  await writeFile(probe, PROBE);
  const { stdout } = await run(NODE, [probe], { cwd: dir, env: { PATH: process.env.PATH ?? '', POWERTOOLS_LOG_LEVEL: 'ERROR', SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', ...env } });
  return JSON.parse(stdout) as string[];
}

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('driver loading', () => {
  it('loads no database driver for local folders', async () => {
    expect(await driversLoadedWith({})).toEqual([]);
  });

  it('loads only pg for a PostgreSQL location', async () => {
    const url = await requireServer('postgres');
    expect(await driversLoadedWith({ METADATA_LOCATION: url, TRANSCRIPTION_LOCATION: url })).toEqual(['pg']);
  });

  it('loads only ioredis for a Redis location', async () => {
    const url = await requireServer('redis');
    expect(await driversLoadedWith({ METADATA_LOCATION: url, TRANSCRIPTION_LOCATION: url })).toEqual(['ioredis']);
  });

  it('loads only mysql2 for a MySQL location', async () => {
    const url = await requireServer('mysql');
    expect(await driversLoadedWith({ METADATA_LOCATION: url, TRANSCRIPTION_LOCATION: url })).toEqual(['mysql2']);
  });
});
