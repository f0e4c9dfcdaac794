/**
 * `calldata simulate` as users run it: the real bin in a child process on Node 24, the real
 * pipeline, real backends. The simulated call is v2 facts from one writer (`sim:<uuid>`); the
 * CLI reads the merged record back and reports where each document landed.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetConfigForTests } from '../../functions/config/config.ts';
import { recordModel } from '../../functions/domain/model.ts';
import { handler } from '../../functions/persist/handler.ts';
import { PostgresBackend } from '../../functions/storage/postgres.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { createQueuePair, localstackEndpoint, replacePipelineEnv, sqsFor, useLocalstackEnv } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../support/servers.ts';
import { QueuePump } from './worker-harness.ts';
import { runCommand } from '../support/commands.ts';

const BIN = join(import.meta.dirname, '../../bin/calldata.js');
const NODE = join(import.meta.dirname, '../../node_modules/.bin/node');
/** `<start in TIMEZONE to the ms>_<call id>`: the folder timestamp render.ts chooses. */
const TIMESTAMP = String.raw`\d{8}T\d{6}\.\d{3}_sim-[0-9a-f-]{36}`;

interface Result {
  callId: string;
  writer: string;
  transport: string;
  messages: { kind: string; seq: number }[];
  artifacts: { kind: string; location: string | null; stored: boolean }[];
  notes: string[];
}

let dir: string;

async function simulate(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(NODE, [BIN, 'simulate', ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 90_000 });
}

async function filesUnder(root: string): Promise<string[]> {
  try {
    return (await readdir(root, { recursive: true })).map((f) => join(root, f));
  } catch {
    return [];
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
    expect(result.writer).toMatch(/^sim:[0-9a-f-]{36}$/);
    expect(result.messages.map((m) => [m.kind, m.seq])).toEqual([['started', 1], ['progress', 2], ['progress', 3], ['progress', 4], ['ended', 5]]);
    const [meta, transcript] = result.artifacts;
    expect(meta).toMatchObject({ kind: 'metadata', stored: true });
    expect(meta?.location).toMatch(new RegExp(`^${dir}/Call_Metadata/demo-room/${TIMESTAMP}/call_metadata_demo-room_${TIMESTAMP}\\.json$`));
    expect(meta?.location).toContain(result.callId);
    expect(transcript?.location).toMatch(new RegExp(`^${dir}/Transcriptions/demo-room/${TIMESTAMP}/call_transcription_demo-room_${TIMESTAMP}\\.json$`));
    const metadata = JSON.parse(await readFile(meta?.location ?? '', 'utf8'));
    expect(metadata).toMatchObject({ call_id: result.callId, room_name: 'demo-room', answered: true, status: 'completed', call_direction: 'inbound', timezone: 'Asia/Kolkata', end_reason: 'caller_hangup', end_reason_detail: 'caller hung up (simulated)' });
    expect(metadata.start_time).toMatch(/\+05:30$/);
    expect(metadata.end_time).toMatch(/\+05:30$/);
    const conversation = JSON.parse(await readFile(transcript?.location ?? '', 'utf8')).conversation;
    expect(conversation).toHaveLength(6);
    expect(conversation[0]).toMatchObject({ role: 'assistant', content: 'Hello! How can I help you today?', interrupted: false });
    expect(conversation[0].timestamp).toMatch(/\+05:30$/);
  });

  it('prints a short summary without --json', async () => {
    const { code, stdout } = await simulate(['--room', 'plain-room'], { SAVE_METADATA: 'true' });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Simulated answered inbound call sim-[0-9a-f-]{36} in room "plain-room"\n  5 messages sent through the embedded pipeline \(in-process\)\n  metadata +\//);
  });

  it('stores an unanswered call as metadata only, answered=false and without a recording filename', async () => {
    // Act
    const { code, stdout } = await simulate(['--room', 'nobody-home', '--unanswered', '--direction', 'outbound', '--json'], { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true' });
    // Assess
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as Result;
    expect(result.messages.map((m) => m.kind)).toEqual(['started', 'unanswered']);
    expect(result.artifacts.map((a) => a.kind)).toEqual(['metadata']);
    expect(result.notes).toContain('unanswered calls keep metadata only: no transcription');
    const metadata = JSON.parse(await readFile(result.artifacts[0]?.location ?? '', 'utf8'));
    expect(metadata).toMatchObject({ answered: false, status: 'no_answer', end_reason: 'no_answer', call_direction: 'outbound', outbound_trunk_id: 'ST_simulated' });
    expect(metadata).not.toHaveProperty('recording_filename');
    const transcriptions = (await filesUnder(join(dir, 'Transcriptions'))).filter((f) => f.includes('nobody-home') && f.includes('call_transcription_'));
    expect(transcriptions).toEqual([]);
  });

  it('writes to database locations chosen by URL', async () => {
    // Prepare
    const pg = await requireServer('postgres');
    const redis = await requireServer('redis');
    // Act
    const { code, stdout } = await simulate(['--room', 'db-room', '--json'], { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', METADATA_LOCATION: pg, TRANSCRIPTION_LOCATION: redis, TIMEZONE: 'UTC' });
    // Assess
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as Result;
    expect(result.artifacts.map((a) => [a.kind, a.stored])).toEqual([['metadata', true], ['transcription', true]]);
    expect(result.artifacts[0]?.location).toMatch(new RegExp(`^postgres://.*table call_records call_id=${result.callId}$`));
    expect(result.artifacts[1]?.location).toMatch(/^redis:\/\/127\.0\.0\.1:\d+/);
    expect(result.artifacts[1]?.location).toContain(result.callId);
    // The record in PostgreSQL is the merge of the simulated writer's facts.
    const backend = new PostgresBackend(pg, { documents: ['metadata'], model: recordModel('UTC') });
    try {
      const stored = await backend.read(result.callId);
      expect(stored?.state.writers).toEqual({ [result.writer]: 5 });
      expect(stored?.documents.metadata).toMatchObject({ call_id: result.callId, room_name: 'db-room', answered: true, status: 'completed', timezone: 'UTC' });
      expect(stored?.folder).toMatch(new RegExp(`^db-room/${TIMESTAMP}$`));
    } finally {
      await backend.close();
    }
  });

  it('sends through SQS when a queue is configured and reports the documents once the persist function stored them', async () => {
    // Prepare: a queue, and the persist handler polling it as Lambda would
    const endpoint = await localstackEndpoint();
    useLocalstackEnv(endpoint);
    const { queueUrl } = await createQueuePair(endpoint);
    const metadataLocation = join(dir, 'sqs-metadata');
    replacePipelineEnv({ SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'false', METADATA_LOCATION: metadataLocation, TIMEZONE: 'UTC' });
    resetConfigForTests();
    const sqs = sqsFor(endpoint);
    const pump = new QueuePump(sqs, queueUrl, (event, context) => handler(event, context) as Promise<never>);
    pump.start();
    // Act
    const { code, stdout } = await simulate(['--room', 'queued-room', '--json', '--wait-ms', '30000'], {
      SAVE_METADATA: 'true',
      METADATA_LOCATION: metadataLocation,
      TIMEZONE: 'UTC',
      CALLDATA_QUEUE_URL: queueUrl,
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
    });
    await pump.stop();
    sqs.destroy();
    // Assess
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as Result;
    expect(result.transport).toBe('sqs');
    expect(result.artifacts).toEqual([{ kind: 'metadata', location: expect.stringMatching(new RegExp(`^${metadataLocation}/queued-room/${TIMESTAMP}/call_metadata_queued-room_`)), stored: true }]);
    expect(JSON.parse(await readFile(result.artifacts[0]?.location ?? '', 'utf8'))).toMatchObject({ call_id: result.callId, status: 'completed' });
    expect(pump.messagesFor(result.callId).sort((a, b) => a.seq - b.seq).map((m) => [m.writer, m.seq, m.kind])).toEqual(result.messages.map((m) => [result.writer, m.seq, m.kind]));
  });

  it('refuses a bad configuration with exit code 2 and names the variable', async () => {
    const { code, stderr } = await simulate(['--room', 'x'], { SAVE_METADATA: 'perhaps', METADATA_LOCATION: 's3' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/SAVE_METADATA: expected true\/false/);
    expect(stderr).toMatch(/METADATA_LOCATION: is "s3" but no bucket is set/);
  });

  it('fails with one clear line and exit code 1 when the backend is down, saying plainly nothing was stored', async () => {
    const { code, stdout, stderr } = await simulate(['--room', 'x'], { SAVE_METADATA: 'true', METADATA_LOCATION: 'postgres://calldata@127.0.0.1:1/calldata' });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^calldata: simulate failed: nothing was stored: the started message of call sim-[0-9a-f-]{36} could not be stored: the in-process pipeline failed: postgres: .*ECONNREFUSED/);
    // No stack trace, and no promise of retries from a process that is exiting.
    expect(stderr).not.toMatch(/\n\s+at |retried|tries again/);
  });

  it('prints usage for a missing room', async () => {
    const { code, stderr } = await simulate([], {});
    expect(code).toBe(2);
    expect(stderr).toMatch(/--room is required/);
  });
});
