/**
 * calldata as a package in a user's own agent project: the checkout is packed (`npm pack`), the
 * tarball installed into a copy of test/example-agent/ outside the repository, and that agent —
 * which imports only `calldata` by name and uses its own @livekit/agents — runs on the
 * machine's Node against the real livekit-server with a scripted text-only model. A simulated
 * SIP caller talks to it over `lk.chat`; the call's metadata and transcript land in local folders.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServer } from '../support/servers.ts';
import { machineNode, packCheckout, ROOT } from './package-build.ts';
import { eventually, LIVEKIT_KEY, LIVEKIT_SECRET, LiveKitRooms, SimulatedCaller } from './worker-harness.ts';

const run = promisify(execFile);
const SCRIPT = {
  instructions: 'front desk',
  responses: [
    { input: 'hello', content: 'Hi, this is the example agent. How can I help?' },
    { input: 'when are you open?', content: 'From nine to five.' },
  ],
};

let livekitUrl: string;
let project: string;
let node: string;
let rooms: LiveKitRooms;
let worker: ChildProcess | undefined;
const logFile = () => join(project, 'agent.log');

async function logs(): Promise<string> {
  return readFile(logFile(), 'utf8').catch(() => '');
}

/** Every JSON file under `root` whose name starts with `prefix`, parsed. */
async function documents(root: string, prefix: string): Promise<Record<string, unknown>[]> {
  const names = await readdir(root, { recursive: true }).catch(() => [] as string[]);
  const found = names.filter((name) => name.split('/').pop()?.startsWith(prefix) && name.endsWith('.json'));
  return Promise.all(found.map(async (name) => JSON.parse(await readFile(join(root, name), 'utf8')) as Record<string, unknown>));
}

beforeAll(async () => {
  livekitUrl = await requireServer('livekit');
  ({ node } = await machineNode());
  rooms = new LiveKitRooms(livekitUrl);
  // Prepare: the packed package, installed into a copy of the example agent outside the repository.
  const tarball = await packCheckout();
  project = await mkdtemp(join(tmpdir(), 'calldata-example-agent-'));
  expect(project.startsWith(ROOT)).toBe(false);
  await cp(join(ROOT, 'test/example-agent'), project, { recursive: true });
  // The npm cache holds every dependency after `npm ci` in the checkout.
  await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: project,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  });
}, 300_000);

afterAll(async () => {
  if (worker?.pid && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker?.once('exit', resolve));
    process.kill(-worker.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    if (worker.exitCode === null) process.kill(-worker.pid, 'SIGKILL');
  }
  await rooms?.cleanup();
  if (project) await rm(project, { recursive: true, force: true });
});

describe('the packed package in a user agent project', () => {
  it('installs with its entry points, types and the calldata command, and no TypeScript sources', async () => {
    // Act
    const installed = join(project, 'node_modules/calldata');
    const files = await readdir(installed, { recursive: true });
    const { stdout } = await run(node, ['--input-type=module', '-e', "const m = await import('calldata'); const s = await import('calldata/storage'); const c = await import('calldata/contract'); console.log(JSON.stringify({ main: Object.keys(m), storage: typeof s.CallReader, contract: c.MESSAGE_VERSION }))"], { cwd: project });
    const help = await run(node, [join(project, 'node_modules/.bin/calldata'), '--help'], { cwd: project });

    // Assess
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files).toContain('dist/worker/index.d.ts');
    expect(JSON.parse(stdout)).toMatchObject({ storage: 'function', contract: 2 });
    expect(JSON.parse(stdout).main).toEqual(expect.arrayContaining(['attachCallData', 'endCallTool', 'END_CALL_TOOL', 'loadConfig']));
    expect(help.stdout).toMatch(/^Usage: calldata <command>/);
    // The agent's own @livekit/agents is the one calldata uses: a single copy in the project.
    expect(files.some((f) => f.startsWith('node_modules/@livekit/agents'))).toBe(false);
  });

  it('gives a TypeScript project real types for every entry point', async () => {
    // Prepare: a TypeScript file in the user's project using each entry, and one deliberate misuse.
    await writeFile(
      join(project, 'typed.ts'),
      [
        "import { attachCallData, endCallTool, END_CALL_TOOL, loadConfig, type CallDataOptions } from 'calldata';",
        "import { CallReader, parseFilters } from 'calldata/storage';",
        "import { PostgresBackend } from 'calldata/storage/postgres';",
        "import { decodeMessage, type FactMessage } from 'calldata/contract';",
        "import type { JobContext, voice } from '@livekit/agents';",
        'export async function entry(ctx: JobContext, session: voice.AgentSession) {',
        '  const options: CallDataOptions = { progressIntervalMs: 1_000 };',
        '  const capture = attachCallData(ctx, session, options);',
        '  const tools = { [END_CALL_TOOL]: endCallTool({ ctx, capture }) };',
        '  const page = await new CallReader(loadConfig()).list(parseFilters({}, "UTC"));',
        "  const message: FactMessage = decodeMessage('{}');",
        "  // @ts-expect-error the options are typed: a string is not a number of milliseconds",
        "  attachCallData(ctx, session, { progressIntervalMs: 'fast' });",
        '  return [tools, page.calls.length, message.callId, capture.callId, PostgresBackend.name];',
        '}',
      ].join('\n'),
    );
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['typed.ts'] }),
    );

    // Act: the repository's TypeScript, checking the installed declarations too (skipLibCheck off).
    const result = await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', project], { cwd: project }).then(
      () => ({ ok: true, stdout: '' }),
      (error: { stdout: string; stderr: string }) => ({ ok: false, stdout: `${error.stdout}${error.stderr}` }),
    );

    // Assess: no error in the user's file or in calldata's declarations (LiveKit's own are not ours to judge).
    if (!result.ok) expect(result.stdout).toMatch(/error TS\d+/);
    const ours = result.stdout.split('\n').filter((line) => /^(typed\.ts|node_modules\/calldata\/)/.test(line));
    expect(ours).toEqual([]);
  });

  it('records a call of the example agent: metadata and transcript land with the lines said', async () => {
    // Prepare: the user's agent as its own worker process, capture saving to local folders.
    const agentName = `calldata-example-${randomUUID().slice(0, 8)}`;
    const metadataFolder = join(project, 'Call_Metadata');
    const transcriptFolder = join(project, 'Transcriptions');
    const out = openSync(logFile(), 'a');
    worker = spawn(node, ['agent.js', 'dev', '--log-level', 'info'], {
      cwd: project,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        LIVEKIT_URL: livekitUrl,
        LIVEKIT_API_KEY: LIVEKIT_KEY,
        LIVEKIT_API_SECRET: LIVEKIT_SECRET,
        LIVEKIT_AGENT_NAME: agentName,
        EXAMPLE_AGENT_SCRIPT: JSON.stringify(SCRIPT),
        SAVE_METADATA: 'true',
        SAVE_TRANSCRIPTION: 'true',
        METADATA_LOCATION: metadataFolder,
        TRANSCRIPTION_LOCATION: transcriptFolder,
        TIMEZONE: 'UTC',
      },
      detached: true,
      stdio: ['ignore', out, out],
    });
    const child = worker;
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`the example agent exited with ${child.exitCode}:\n${(await logs()).slice(-3_000)}`);
        return (await logs()).includes('registered worker');
      },
      90_000,
      'the example agent to register with livekit-server',
    );
    const room = `example-${Date.now().toString(36)}`;
    const { sid } = await rooms.callRoom(room, agentName);
    const caller = new SimulatedCaller({ livekitUrl, room, callStatus: 'active' });

    // Act: a two-turn conversation, then the caller hangs up.
    try {
      await caller.join();
      await caller.waitForAgent(45_000);
      await caller.say('hello', SCRIPT.responses[0]?.content);
      await caller.say('when are you open?', SCRIPT.responses[1]?.content);
    } catch (error) {
      throw new Error(`${String(error)}\nagent log:\n${(await logs()).slice(-4_000)}`);
    } finally {
      await caller.leave();
    }

    // Assess: the call's metadata and transcript, from the folders the agent wrote.
    const metadata = await eventually(
      async () => (await documents(metadataFolder, 'call_metadata_')).find((doc) => doc.call_id === sid && doc.end_time),
      45_000,
      `the final metadata of call ${sid} under ${metadataFolder}`,
    );
    expect(metadata).toMatchObject({ call_id: sid, room_name: room, answered: true, call_direction: 'inbound' });
    const transcript = await eventually(
      async () => (await documents(transcriptFolder, 'call_transcription_')).find((doc) => doc.call_id === sid && (doc.conversation as unknown[]).length >= 4),
      45_000,
      `the transcript of call ${sid} under ${transcriptFolder}`,
    );
    const lines = (transcript.conversation as { role: string; content: string }[]).map((item) => [item.role, item.content]);
    expect(lines).toEqual([
      ['user', 'hello'],
      ['assistant', SCRIPT.responses[0]?.content],
      ['user', 'when are you open?'],
      ['assistant', SCRIPT.responses[1]?.content],
    ]);
  });
});
