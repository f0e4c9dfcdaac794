/**
 * `calldata` from outside the checkout on the machine's own Node (Node 20 here, the oldest that
 * package.json's engines allows), exactly as the issue ran it: `npx --prefix <checkout> calldata …`
 * from another directory, with the machine's npx and node first on PATH. The checkout's bin then
 * runs the compiled dist/ (built by packing the checkout). Also: options whose value starts with
 * `-`, and expected failures as one line (details only with --verbose).
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCheckout, machineNode, ROOT } from './package-build.ts';
import { closedPort, runCommand, type Ran } from '../support/commands.ts';


let dir: string;
let node: string;

/** `npx --prefix <checkout> calldata <args>` in a folder outside the checkout, on the machine's Node. */
async function calldata(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const machinePath = `${dirname(node)}:/usr/bin:/bin`;
  return runCommand(join(dirname(node), 'npx'), ['--prefix', ROOT, 'calldata', ...args], {
    cwd: dir,
    env: { PATH: machinePath, HOME: process.env.HOME ?? '/tmp', ...env },
    timeout: 60_000,
  });
}

beforeAll(async () => {
  const machine = await machineNode();
  node = machine.node;
  console.info(`calldata from outside the checkout on ${machine.node} ${machine.version}`);
  // dist/ is what runs on a Node that cannot run TypeScript.
  await buildCheckout();
  dir = await mkdtemp(join(tmpdir(), 'calldata-anywhere-'));
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe(`calldata from another directory on the machine's Node`, () => {
  it.each([
    [[]],
    [['--help']],
    [['simulate', '--help']],
    [['calls', '--help']],
    [['calls', 'list', '--help']],
    [['calls', 'show', '--help']],
    [['calls', 'recording', '--help']],
    [['browse', '--help']],
    [['doctor', '--help']],
  ])('prints the usage for calldata %j', async (args) => {
    // Act
    const { code, stdout, stderr } = await calldata(args);
    // Assess: no arguments is a usage mistake (2); --help is a success (0).
    expect(stderr).toBe('');
    expect(code).toBe(args.length === 0 ? 2 : 0);
    expect(stdout).toMatch(/^Usage: calldata /);
    expect(stdout).not.toMatch(/ERR_|\.ts\b/);
  });

  it('stores a simulated call with a room name that starts with a dash (--room -rf)', async () => {
    // Act
    const { code, stdout, stderr } = await calldata(['simulate', '--room', '-rf', '--turns', '2', '--json'], { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', TIMEZONE: 'UTC' });

    // Assess: the room is "-rf", and its documents landed in this directory (not the checkout).
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { room: string; callId: string; artifacts: { kind: string; location: string; stored: boolean }[] };
    expect(result.room).toBe('-rf');
    expect(result.artifacts.map((a) => [a.kind, a.stored])).toEqual([['metadata', true], ['transcription', true]]);
    for (const artifact of result.artifacts) expect(artifact.location.startsWith(dir)).toBe(true);
    const metadata = JSON.parse(await readFile(result.artifacts[0]?.location ?? '', 'utf8')) as { room_name: string; call_id: string };
    expect(metadata).toMatchObject({ room_name: '-rf', call_id: result.callId });
    const transcript = JSON.parse(await readFile(result.artifacts[1]?.location ?? '', 'utf8')) as { conversation: unknown[] };
    expect(transcript.conversation).toHaveLength(4);
  });

  it('says in one line how to build a checkout whose dist/ is missing, on a Node that cannot run its sources', async () => {
    // Prepare: the bin alone, as in a fresh clone before `npm run build` (no sources next to it either).
    const bare = await mkdtemp(join(tmpdir(), 'calldata-unbuilt-'));
    await mkdir(join(bare, 'bin'));
    await copyFile(join(ROOT, 'bin/calldata.js'), join(bare, 'bin/calldata.js'));
    await writeFile(join(bare, 'package.json'), '{"type": "module"}');
    // Act
    const result = await runCommand(node, [join(bare, 'bin/calldata.js'), '--help'], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, timeout: 60_000 });
    await rm(bare, { recursive: true, force: true });
    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^calldata: this checkout is not built .*run `npm run build` in /)]);
  });

  it('still refuses a value-taking option followed by one of its options (--room --json)', async () => {
    // Act
    const { code, stderr } = await calldata(['simulate', '--room', '--json']);
    // Assess
    expect(code).toBe(2);
    expect(stderr).toMatch(/^calldata: Option '--room' argument is ambiguous/);
  });

  it('names a bad variable in one line and exits 2', async () => {
    // Act
    const { code, stdout, stderr } = await calldata(['simulate', '--room', 'r'], { SAVE_METADATA: 'maybe' });
    // Assess
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^calldata: SAVE_METADATA: .*"maybe".*\.env/)]);
  });

  it('reports a database it cannot reach in one line, exit 1, no stack trace and no promise of a retry', async () => {
    // Prepare
    const location = `postgres://calldata:secret-password@127.0.0.1:${await closedPort()}/calldata`;
    // Act
    const { code, stdout, stderr } = await calldata(['simulate', '--room', 'r'], { SAVE_METADATA: 'true', METADATA_LOCATION: location });
    // Assess
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^calldata: simulate failed: nothing was stored: .*postgres.*ECONNREFUSED.* — check that the server is running and reachable/);
    expect(lines[0]).toMatch(/--verbose/);
    expect(stderr).not.toMatch(/tries again|will be retried|\n\s+at |secret-password/);
  });

  it('shows the cause chain and stacks of that failure with --verbose', async () => {
    // Prepare
    const location = `postgres://calldata:secret-password@127.0.0.1:${await closedPort()}/calldata`;
    // Act
    const { code, stderr } = await calldata(['--verbose', 'simulate', '--room', 'r'], { SAVE_METADATA: 'true', METADATA_LOCATION: location });
    // Assess: the same first line, then every cause with its stack.
    expect(code).toBe(1);
    const [first, ...details] = stderr.trim().split('\n');
    expect(first).toMatch(/^calldata: simulate failed: .*ECONNREFUSED/);
    expect(details.join('\n')).toMatch(/^SimulateError: /);
    expect(details.join('\n')).toMatch(/caused by: StorageError: postgres: write failed/);
    expect(details.join('\n')).toMatch(/caused by: Error: connect ECONNREFUSED/);
    expect(details.some((line) => /^\s+at /.test(line))).toBe(true);
    // The sink's own words hold for every caller: no promise of a retry, even in the details.
    expect(details.join('\n')).toMatch(/caused by: SendFailedError: the in-process pipeline failed\n/);
    expect(stderr).not.toMatch(/tries again|will be retried/);
    expect(stderr).not.toMatch(/secret-password/);
  });
});
