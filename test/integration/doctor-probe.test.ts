/**
 * `calldata doctor --probe` as a user runs it (the real CLI in a fresh directory with its own
 * ./.env), against the real servers: a PostgreSQL location, LocalStack's SQS and S3, and
 * livekit-server answer ok; a location on a closed port is one FAIL line with the driver's error.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucket, createQueuePair, localstackEndpoint } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from '../support/servers.ts';
import { closedPort, runCommand } from '../support/commands.ts';

const BIN = join(import.meta.dirname, '../../bin/calldata.js');
const NODE = join(import.meta.dirname, '../../node_modules/.bin/node');

interface DoctorJson {
  variables: { name: string; value: string; source: string }[];
  problems: string[];
  probes: { kind: string; variable: string; target: string; ok: boolean; error?: string }[];
}

let dir: string;
let env: Record<string, string>;
let postgresUrl: string;
let closedPortUrl: string;

async function doctor(args: string[], extra: Record<string, string> = {}, unset: readonly string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ...extra };
  for (const name of unset) delete childEnv[name];
  return runCommand(NODE, [BIN, 'doctor', ...args], { cwd: dir, env: childEnv, timeout: 60_000 });
}

beforeAll(async () => {
  // Prepare: every kind of target, each on its real server
  postgresUrl = await requireServer('postgres');
  const livekitUrl = await requireServer('livekit');
  const endpoint = await localstackEndpoint();
  const bucket = await createBucket(endpoint, 'calldata-doctor');
  const { queueUrl } = await createQueuePair(endpoint);
  closedPortUrl = `postgres://calldata:hunter2@127.0.0.1:${await closedPort()}/calldata`;
  dir = await mkdtemp(join(tmpdir(), 'calldata-doctor-'));
  // The user's ./.env holds the locations; the environment the rest.
  await writeFile(join(dir, '.env'), `SAVE_METADATA=true\nSAVE_TRANSCRIPTION=true\nMETADATA_LOCATION=${postgresUrl}\nTRANSCRIPTION_LOCATION=${closedPortUrl}\nLIVEKIT_API_SECRET=from-dotenv\n`);
  env = {
    CALLDATA_QUEUE_URL: queueUrl,
    AWS_S3_BUCKET: bucket,
    AWS_S3_ENDPOINT: endpoint,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_S3_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
    AWS_S3_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ENDPOINT_URL_SQS: endpoint.replace('127.0.0.1', 'localhost'),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
    LIVEKIT_URL: livekitUrl,
    LIVEKIT_API_KEY: 'devkey',
    // The environment wins over ./.env.
    LIVEKIT_API_SECRET: 'secret',
  };
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('calldata doctor --probe', () => {
  it('reports each target ok or its exact error, one line each, and exits 1 when one failed', async () => {
    // Act
    const { code, stdout, stderr } = await doctor(['--probe']);

    // Assess: the configuration first, secrets masked, then one line per probe
    expect(code).toBe(1);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^LIVEKIT_API_SECRET +\*\*\* {2}\[environment\]$/m);
    expect(stdout).toMatch(/^SAVE_METADATA +true {2}\[\.env\]$/m);
    expect(stdout).not.toMatch(/hunter2|from-dotenv|=secret|\bsecret\b {2}\[/);
    const probeLines = stdout.split('\n').filter((line) => /^(ok |FAIL)/.test(line));
    expect(probeLines).toHaveLength(4 + 1);
    expect(probeLines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^ok {4}location METADATA_LOCATION postgres:\/\/calldata@127\.0\.0\.1:\d+\/calldata \(\d+ ms\)$/),
        expect.stringMatching(/^FAIL {2}location TRANSCRIPTION_LOCATION postgres:\/\/calldata:\*\*\*@127\.0\.0\.1:\d+\/calldata: .*ECONNREFUSED 127\.0\.0\.1:\d+$/),
        expect.stringMatching(/^ok {4}queue CALLDATA_QUEUE_URL \S+ \(\d+ ms\)$/),
        expect.stringMatching(/^ok {4}bucket AWS_S3_BUCKET calldata-doctor-\S+ at http:\/\/\S+ \(\d+ ms\)$/),
        expect.stringMatching(/^ok {4}livekit LIVEKIT_URL ws:\/\/127\.0\.0\.1:\d+ \(\d+ ms\)$/),
      ]),
    );
  }, 60_000);

  it('exits 0 when every target answers, and says in JSON what failed otherwise', async () => {
    // Act: the same, once with the closed port and once without it
    const failing = await doctor(['--probe', '--json']);
    const healthy = await doctor(['--probe', '--json'], { TRANSCRIPTION_LOCATION: postgresUrl, CALLDATA_QUEUE_URL: `${env.CALLDATA_QUEUE_URL ?? ''}-missing` });
    const fixed = await doctor(['--probe', '--json'], { TRANSCRIPTION_LOCATION: postgresUrl });

    // Assess
    const failed = (JSON.parse(failing.stdout) as DoctorJson).probes.filter((p) => !p.ok);
    expect(failed).toEqual([expect.objectContaining({ kind: 'location', variable: 'TRANSCRIPTION_LOCATION', error: expect.stringMatching(/ECONNREFUSED/) })]);
    const missingQueue = (JSON.parse(healthy.stdout) as DoctorJson).probes.filter((p) => !p.ok);
    expect(healthy.code).toBe(1);
    expect(missingQueue).toEqual([expect.objectContaining({ kind: 'queue', variable: 'CALLDATA_QUEUE_URL', error: expect.stringMatching(/queue does not exist|NonExistentQueue/i) })]);
    const all = JSON.parse(fixed.stdout) as DoctorJson;
    expect(fixed.code).toBe(0);
    expect(all.probes.map((p) => `${p.kind}:${String(p.ok)}`).sort()).toEqual(['bucket:true', 'livekit:true', 'location:true', 'queue:true']);
    expect(all.variables.find((v) => v.name === 'TRANSCRIPTION_LOCATION')).toMatchObject({ source: 'environment' });
    expect(all.variables.find((v) => v.name === 'METADATA_LOCATION')).toMatchObject({ source: '.env' });
  }, 90_000);

  it("reports LiveKit refusing the credentials and a missing bucket as the services' own errors, without the token", async () => {
    // Act
    const { code, stdout } = await doctor(['--probe', '--json'], { TRANSCRIPTION_LOCATION: postgresUrl, LIVEKIT_API_SECRET: 'wrong-secret', AWS_S3_BUCKET: 'calldata-doctor-no-such-bucket' });

    // Assess
    expect(code).toBe(1);
    const failed = (JSON.parse(stdout) as DoctorJson).probes.filter((p) => !p.ok);
    expect(failed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'livekit', variable: 'LIVEKIT_URL', error: expect.stringMatching(/invalid token: <token>.*signature is invalid/) }),
        expect.objectContaining({ kind: 'bucket', variable: 'AWS_S3_BUCKET', error: 'HTTP 404 NotFound' }),
      ]),
    );
    expect(failed).toHaveLength(2);
    expect(stdout).not.toContain('wrong-secret');
    expect(stdout).not.toMatch(/eyJ[\w-]+\./);
  }, 60_000);

  it('names a bad variable and skips the probes (exit 2)', async () => {
    // Act
    const { code, stdout } = await doctor(['--probe'], { CALLDATA_WORKER_LOAD: 'gpu' });

    // Assess
    expect(code).toBe(2);
    expect(stdout).toContain('problem: CALLDATA_WORKER_LOAD: expected cpu or jobs, got "gpu"');
    expect(stdout).toContain('probes skipped');
    expect(stdout).not.toMatch(/^(ok |FAIL)/m);
  }, 60_000);

  it('names a CALLDATA_AGENT_SCRIPT it cannot read, as the worker would refuse it (exit 2)', async () => {
    // Act
    const { code, stdout } = await doctor([], { CALLDATA_AGENT_SCRIPT: '/nonexistent.json' });

    // Assess
    expect(code).toBe(2);
    expect(stdout).toMatch(/^problem: CALLDATA_AGENT_SCRIPT: cannot read "\/nonexistent\.json" \(ENOENT\): point it at a JSON file like /m);
  }, 60_000);

  it("takes the queue's region from its URL when AWS_REGION is unset, and says to set it when the URL names none", async () => {
    // Prepare: LocalStack's queue URL names its region (/queue/us-east-1/…); the same queue by account path does not
    const queueUrl = env.CALLDATA_QUEUE_URL ?? '';
    const withoutRegion = queueUrl.replace(/\/queue\/[a-z0-9-]+\//, '/');
    const base = { TRANSCRIPTION_LOCATION: postgresUrl };

    // Act
    const fromUrl = await doctor(['--probe', '--json'], base, ['AWS_REGION']);
    const nowhere = await doctor(['--probe', '--json'], { ...base, CALLDATA_QUEUE_URL: withoutRegion }, ['AWS_REGION']);
    const blank = await doctor(['--probe', '--json'], { ...base, CALLDATA_QUEUE_URL: withoutRegion, AWS_REGION: '' });

    // Assess
    expect(queueUrl).toMatch(/\/queue\/us-east-1\//);
    expect(fromUrl.code).toBe(0);
    expect((JSON.parse(fromUrl.stdout) as DoctorJson).probes.find((p) => p.kind === 'queue')).toMatchObject({ ok: true });
    for (const { code, stdout } of [nowhere, blank]) {
      expect(code).toBe(1);
      expect((JSON.parse(stdout) as DoctorJson).probes.filter((p) => !p.ok)).toEqual([
        expect.objectContaining({ kind: 'queue', error: "invalid configuration: AWS_REGION: is not set and the queue URL names no region: set AWS_REGION to the queue's region" }),
      ]);
    }
  }, 90_000);

  it('answers --help with its usage and refuses an unknown option', async () => {
    const help = await doctor(['--help']);
    const wrong = await doctor(['--prob']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: calldata doctor [--probe] [--json]');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^calldata: .*--prob/);
  }, 60_000);
});
