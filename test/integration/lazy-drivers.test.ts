import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { requireServer } from '../support/servers.ts';

const run = promisify(execFile);
const NODE = join(import.meta.dirname, '../../node_modules/.bin/node');
const PROBE = join(import.meta.dirname, '../support/driver-probe.ts');
const dirs: string[] = [];

async function driversLoadedWith(env: Record<string, string>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'calldata-lazy-'));
  dirs.push(dir);
  const { stdout } = await run(NODE, [PROBE], { cwd: dir, env: { PATH: process.env.PATH ?? '', POWERTOOLS_LOG_LEVEL: 'ERROR', SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', ...env } });
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
});
