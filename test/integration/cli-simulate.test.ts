/**
 * `calldata simulate` as users run it: the real bin in a child process on Node 24, the real
 * pipeline, real backends.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler } from '../../functions/persist/handler.ts';
import { resetConfigForTests } from '../../functions/config/config.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { createQueuePair, localstackEndpoint, sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { pollOnce } from '../support/queue-poller.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../support/servers.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/calldata.js');
const NODE = join(import.meta.dirname, '../../node_modules/.bin/node');

interface Result {
  callId: string;
  transport: string;
  artifacts: { kind: string; location: string | null; stored: boolean }[];
  notes: string[];
}

let dir: string;

async function simulate(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(NODE, [BIN, 'simulate', ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      timeout: 90_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'calldata-cli-'));
});
afterAll(async () => {
  await closeAllBackends();
  await rm(dir, { recursive: true, force: true });
});

describe('calldata simulate', () => {
  it('stores an answered call in local folders on the embedded default and prints where', async () => {
    // Act
    const { code, stdout } = await simulate(['--room', 'demo-room', '--turns', '3', '--json'], { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', TIMEZONE: 'Asia/Kolkata' });
    // Assess
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as Result;
    expect(result.transport).toBe('embedded');
    const [meta, transcript] = result.artifacts;
    expect(meta?.location).toMatch(new RegExp(`^${dir}/Call_Metadata/demo-room/\\d{8}T\\d{6}\\.\\d{3}_[A-Za-z0-9]{8}/call_metadata_demo-room_`));
    expect(transcript?.location).toMatch(new RegExp(`^${dir}/Transcriptions/demo-room/`));
    const metadata = JSON.parse(await readFile(meta?.location ?? '', 'utf8'));
    expect(metadata).toMatchObject({ room_name: 'demo-room', answered: true, status: 'completed', call_direction: 'inbound', timezone: 'Asia/Kolkata' });
    expect(metadata.start_time).toMatch(/\+05:30$/);
    const conversation = JSON.parse(await readFile(transcript?.location ?? '', 'utf8')).conversation;
    expect(conversation).toHaveLength(6);
  });

  it('stores an unanswered call as metadata only, answered=false and without a recording filename', async () => {
    // Act
    const { code, stdout } = await simulate(['--room', 'nobody-home', '--unanswered', '--direction', 'outbound', '--json'], { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true' });
    // Assess
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as Result;
    expect(result.artifacts.map((a) => a.kind)).toEqual(['metadata']);
    const metadata = JSON.parse(await readFile(result.artifacts[0]?.location ?? '', 'utf8'));
    expect(metadata).toMatchObject({ answered: false, status: 'no_answer', call_direction: 'outbound' });
    expect(metadata).not.toHaveProperty('recording_filename');
    expect(existsSync(join(dir, 'Transcriptions', 'nobody-home'))).toBe(false);
  });

  it('writes to database locations chosen by URL', async () => {
    // Prepare
    const pg = await requireServer('postgres');
    const redis = await requireServer('redis');
    // Act
    const { code, stdout } = await simulate(['--room', 'db-room', '--json'], { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', METADATA_LOCATION: pg, TRANSCRIPTION_LOCATION: redis });
    // Assess
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as Result;
    expect(result.artifacts[0]?.location).toMatch(/^postgres:\/\/.*table call_metadata call_id=sim-/);
    expect(result.artifacts[1]?.location).toMatch(/^redis:\/\/.*key calldata:call_transcription:call:sim-/);
  });

  it('sends through SQS when a queue is configured and reports the artifacts once the persist function stored them', async () => {
    // Prepare: a queue, and the persist handler polling it as Lambda would
    const endpoint = await localstackEndpoint();
    useLocalstackEnv(endpoint);
    const { queueUrl } = await createQueuePair(endpoint);
    const metadataLocation = join(dir, 'sqs-metadata');
    Object.assign(process.env, { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'false', METADATA_LOCATION: metadataLocation });
    resetConfigForTests();
    const sqs = sqsFor(endpoint);
    let polling = true;
    const poller = (async () => {
      while (polling) await pollOnce(sqs, queueUrl, handler, { waitSeconds: 1 });
    })();
    // Act
    const { code, stdout } = await simulate(['--room', 'queued-room', '--json', '--wait-ms', '30000'], {
      SAVE_METADATA: 'true',
      METADATA_LOCATION: metadataLocation,
      CALLDATA_QUEUE_URL: queueUrl,
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
    });
    polling = false;
    await poller;
    // Assess
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as Result;
    expect(result.transport).toBe('sqs');
    expect(result.artifacts).toEqual([{ kind: 'metadata', location: expect.stringContaining(`${metadataLocation}/queued-room/`), stored: true }]);
  });

  it('refuses a bad configuration with exit code 2 and names the variable', async () => {
    const { code, stderr } = await simulate(['--room', 'x'], { SAVE_METADATA: 'perhaps', METADATA_LOCATION: 's3' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/SAVE_METADATA: expected true\/false/);
    expect(stderr).toMatch(/METADATA_LOCATION: is "s3" but no bucket is set/);
  });

  it('fails with a clear message and exit code 1 when the backend is down', async () => {
    const { code, stderr } = await simulate(['--room', 'x'], { SAVE_METADATA: 'true', METADATA_LOCATION: 'postgres://calldata@127.0.0.1:1/calldata' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/simulate failed/);
  });

  it('prints usage for a missing room', async () => {
    const { code, stderr } = await simulate([], {});
    expect(code).toBe(2);
    expect(stderr).toMatch(/--room is required/);
  });
});
