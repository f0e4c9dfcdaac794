/**
 * The built and packed package for the tests that use it as a user would: `npm run build` or
 * `npm pack` of this checkout (its prepack script builds dist/), one at a time across test
 * files, since each rebuilds the same dist/ folder.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const run = promisify(execFile);
/** The repository's Node 24 and npm scripts first, as `npm pack` runs them in a checkout. */
const PATH = `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}`;
const LOCK = join(ROOT, 'dist.lock');
const STALE_LOCK_MS = 5 * 60_000;

async function withLock<T>(work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 4 * 60_000;
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch {
      const age = Date.now() - (await stat(LOCK).then((s) => s.mtimeMs, () => Date.now()));
      if (age > STALE_LOCK_MS) await rmdir(LOCK).catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`${LOCK} is still held after 4 minutes; remove it if no test is running`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await work();
  } finally {
    await rmdir(LOCK).catch(() => undefined);
  }
}

/** Builds dist/ in the checkout (`npm run build`, incremental). */
export async function buildCheckout(): Promise<void> {
  await withLock(async () => {
    await run('npm', ['run', 'build', '--silent'], { cwd: ROOT, env: { ...process.env, PATH }, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
  });
}

/** Packs the checkout into a new temporary folder and returns the tarball's path (dist/ is built on the way). */
export async function packCheckout(): Promise<string> {
  return withLock(async () => {
    const destination = await mkdtemp(join(tmpdir(), 'calldata-pack-'));
    await run('npm', ['pack', '--pack-destination', destination, '--silent'], { cwd: ROOT, env: { ...process.env, PATH }, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
    const tarball = (await readdir(destination)).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack wrote no tarball to ${destination}`);
    return join(destination, tarball);
  });
}

/** The machine's own Node (not this repository's Node 24): what `npx --prefix <clone> calldata` runs on. */
export const MACHINE_NODE = process.env.CALLDATA_MACHINE_NODE ?? '/usr/bin/node';

export async function machineNode(): Promise<{ node: string; version: string }> {
  try {
    const { stdout } = await run(MACHINE_NODE, ['--version']);
    return { node: MACHINE_NODE, version: stdout.trim() };
  } catch (error) {
    throw new Error(`the machine's Node (${MACHINE_NODE}) is needed to test the package outside the checkout: install Node.js 20 or newer there (apt-get install nodejs) or set CALLDATA_MACHINE_NODE: ${String(error)}`);
  }
}
