/**
 * The default worker's start tells the truth: `npm run worker -- dev` reads ./.env, and when it
 * cannot work (no LiveKit, no model access, a bad script or variable) it says so in one line
 * per problem — what is missing and how to fix it — exits 2 and prints no stack trace. With
 * ./.env holding the credentials and the offline scripted agent it registers with livekit-server.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServer } from '../support/servers.ts';
import { LIVEKIT_KEY, LIVEKIT_SECRET } from './worker-harness.ts';

const ROOT = join(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'worker/main.ts');

let dir: string;

interface Run {
  code: number | null;
  output: string;
}

/**
 * `node worker/main.ts dev` in `dir` with only `env`; resolves when it exits, or once `until`
 * appears in its output (then it is stopped, and `code` is null).
 */
function startWorker(env: Record<string, string>, until?: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'dev', '--log-level', 'info'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', POWERTOOLS_LOG_LEVEL: 'INFO', ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const stopGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      stopGroup();
      reject(new Error(`worker did not ${until ? `print ${JSON.stringify(until)}` : 'exit'} within ${timeoutMs} ms:\n${output.slice(-3_000)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (until && output.includes(until)) {
        clearTimeout(timer);
        stopGroup();
        resolve({ code: null, output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const NO_STACK = /^\s+at |Error: /m;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'calldata-worker-start-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('worker start', () => {
  it('without LiveKit says which variable is missing and how to set it, one line each, and exits 2', async () => {
    // Act
    const { code, output } = await startWorker({});

    // Assess
    expect(code).toBe(2);
    expect(output.trim().split('\n')).toEqual([
      expect.stringMatching(/^worker: LIVEKIT_URL is not set: set it to your LiveKit server \(ws:\/\/127\.0\.0\.1:7880 .*\)$/),
      expect.stringMatching(/^worker: LIVEKIT_API_KEY is not set: set it to /),
      expect.stringMatching(/^worker: LIVEKIT_API_SECRET is not set: set it to /),
    ]);
    expect(output).not.toMatch(NO_STACK);
  }, 60_000);

  it('with a self-hosted server and no scripted agent says there is no model access and how to get it', async () => {
    // Act
    const { code, output } = await startWorker({ LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: LIVEKIT_KEY, LIVEKIT_API_SECRET: LIVEKIT_SECRET });

    // Assess
    expect(code).toBe(2);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^worker: no model access: .*LiveKit Inference, which needs a LiveKit Cloud project.*LIVEKIT_INFERENCE_API_KEY.*CALLDATA_AGENT_SCRIPT/);
    expect(output).not.toMatch(NO_STACK);
  }, 60_000);

  it('names a bad variable or a broken script instead of falling back, and exits 2', async () => {
    // Act
    const badLoad = await startWorker({ LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: LIVEKIT_KEY, LIVEKIT_API_SECRET: LIVEKIT_SECRET, CALLDATA_WORKER_LOAD: 'gpu', CALLDATA_PROGRESS_INTERVAL_MS: 'fast' });
    const badScript = await startWorker({ LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: LIVEKIT_KEY, LIVEKIT_API_SECRET: LIVEKIT_SECRET, CALLDATA_AGENT_SCRIPT: join(dir, 'missing.json') });

    // Assess
    expect(badLoad.code).toBe(2);
    expect(badLoad.output.trim().split('\n')).toEqual(['worker: CALLDATA_WORKER_LOAD: expected cpu or jobs, got "gpu"', 'worker: CALLDATA_PROGRESS_INTERVAL_MS: expected an integer from 100 to 600000, got "fast"']);
    expect(badScript.code).toBe(2);
    expect(badScript.output.trim().split('\n')).toEqual([expect.stringMatching(/^worker: CALLDATA_AGENT_SCRIPT: cannot read ".*missing\.json" \(ENOENT\): point it at a JSON file like/)]);
    expect(badLoad.output + badScript.output).not.toMatch(NO_STACK);
  }, 60_000);

  it('reads ./.env (the environment winning) and registers the offline scripted agent with livekit-server', async () => {
    // Prepare: credentials and the script only in ./.env; a wrong agent name there that the environment overrides
    const livekitUrl = await requireServer('livekit');
    const script = join(dir, 'agent-script.json');
    await writeFile(script, JSON.stringify({ responses: [{ input: 'hello', content: 'Hi! How can I help?' }] }));
    await writeFile(
      join(dir, '.env'),
      `LIVEKIT_URL=${livekitUrl}\nLIVEKIT_API_KEY=${LIVEKIT_KEY}\nLIVEKIT_API_SECRET=${LIVEKIT_SECRET}\nCALLDATA_AGENT_SCRIPT=${script}\nLIVEKIT_AGENT_NAME=from-dotenv\nCALLDATA_WORKER_LOAD=jobs\n`,
    );
    const agentName = `calldata-start-${process.pid}`;

    try {
      // Act
      const { code, output } = await startWorker({ LIVEKIT_AGENT_NAME: agentName }, 'registered worker');

      // Assess
      expect(code).toBeNull();
      expect(output).toMatch(/"agent":"scripted"/);
      expect(output).toContain(agentName);
      expect(output).not.toContain('from-dotenv');
    } finally {
      await rm(join(dir, '.env'), { force: true });
    }
  }, 90_000);
});
