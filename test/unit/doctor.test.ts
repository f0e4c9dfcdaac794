/**
 * `calldata doctor`'s view of the configuration: secrets never shown, passwords in location URLs
 * masked, and each value's source told apart (default, ./.env, environment; the environment wins).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadDotenv, sourceOf } from '../../functions/config/dotenv.ts';
import { ConfigError } from '../../functions/config/errors.ts';
import { maskValue, VARIABLES } from '../../functions/config/variables.ts';
import { maskUrlPassword } from '../../functions/shared/redact.ts';
import { configurationReport, formatReport } from '../../functions/cli/doctor/report.ts';
import { probesFor, runProbes } from '../../functions/cli/doctor/probes.ts';
import { loadConfig } from '../../functions/config/config.ts';
import { queueRegion } from '../../functions/shared/sqs-client.ts';

function dotenvFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'calldata-doctor-')), '.env');
  writeFileSync(path, text);
  return path;
}

describe('masking', () => {
  it('never shows a secret variable, whatever its value', () => {
    // Prepare
    const secrets = VARIABLES.filter((v) => v.exposure === 'secret');
    expect(secrets.map((v) => v.name)).toEqual(expect.arrayContaining(['AWS_S3_SECRET_ACCESS_KEY', 'MINIO_SECRET_KEY', 'LIVEKIT_API_SECRET', 'LIVEKIT_INFERENCE_API_SECRET']));

    // Act / Assess
    fc.assert(
      fc.property(fc.constantFrom(...secrets), fc.string({ minLength: 1 }), (variable, value) => {
        expect(maskValue(variable, value)).toBe('***');
      }),
    );
  });

  it.each([
    ['postgres://calldata:hunter2@db:5432/calls', 'postgres://calldata:***@db:5432/calls'],
    ['mysql+pymysql://u:p%40ss:w@db/x', 'mysql+pymysql://u:***@db/x'],
    ['mongodb+srv://user:s3cret@cluster.example.net/calls?retryWrites=true', 'mongodb+srv://user:***@cluster.example.net/calls?retryWrites=true'],
    ['redis://:onlypass@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['postgres://db/calls?password=hunter2&sslmode=require', 'postgres://db/calls?password=***&sslmode=require'],
    ['redis://cache:6379/0', 'redis://cache:6379/0'],
    ['Call_Metadata', 'Call_Metadata'],
    ['s3', 's3'],
  ])('masks the password of location %j', (location, shown) => {
    expect(maskUrlPassword(location)).toBe(shown);
    expect(maskValue({ exposure: 'url' }, location)).toBe(shown);
  });

  it('keeps no generated password visible in a location URL', () => {
    fc.assert(
      fc.property(fc.constantFrom('postgres', 'mysql', 'mongodb', 'redis'), fc.stringMatching(/^[A-Za-z0-9_.~!$&'()*+,;=%-]{6,30}$/), (scheme, password) => {
        const shown = maskUrlPassword(`${scheme}://user:${password}@host:1234/db`);
        expect(shown).toBe(`${scheme}://user:***@host:1234/db`);
      }),
    );
  });
});

describe('value sources', () => {
  it('takes ./.env values the environment does not set, and the environment wins over .env', () => {
    // Prepare
    const path = dotenvFile('SAVE_METADATA=true\nTIMEZONE=Asia/Kolkata\nLIVEKIT_API_SECRET=from-file\n');
    const env: Record<string, string | undefined> = { TIMEZONE: 'UTC' };

    // Act
    const taken = loadDotenv(path, env);

    // Assess
    expect(taken.sort()).toEqual(['LIVEKIT_API_SECRET', 'SAVE_METADATA']);
    expect(env).toMatchObject({ SAVE_METADATA: 'true', TIMEZONE: 'UTC', LIVEKIT_API_SECRET: 'from-file' });
    const names = new Set(taken);
    expect(sourceOf('SAVE_METADATA', env, names)).toBe('.env');
    expect(sourceOf('TIMEZONE', env, names)).toBe('environment');
    expect(sourceOf('CALL_RECORDING', env, names)).toBe('default');
  });

  it('counts a blank value as unset, as the readers do', () => {
    expect(sourceOf('TIMEZONE', { TIMEZONE: '  ' }, new Set())).toBe('default');
  });

  it('reports an unreadable .env as a configuration error naming the file', () => {
    // Prepare: a directory where the file should be
    const dir = mkdtempSync(join(tmpdir(), 'calldata-doctor-'));

    // Act / Assess
    expect(() => loadDotenv(dir, {})).toThrow(ConfigError);
  });

  it('reports every listed variable once, with its value or default, masked, and its source', () => {
    // Prepare
    const env = { SAVE_METADATA: 'yes', LIVEKIT_API_SECRET: 'top-secret', METADATA_LOCATION: 'postgres://u:pw@db/x', AWS_S3_REGION: 'eu-west-1' };
    const fromDotenv = new Set(['SAVE_METADATA', 'METADATA_LOCATION']);

    // Act
    const report = configurationReport(env, fromDotenv);
    const byName = new Map(report.map((e) => [e.name, e]));
    const text = formatReport(report).join('\n');

    // Assess
    expect(report.map((e) => e.name)).toEqual(VARIABLES.map((v) => v.name));
    expect(byName.get('SAVE_METADATA')).toMatchObject({ value: 'yes', source: '.env' });
    expect(byName.get('LIVEKIT_API_SECRET')).toMatchObject({ value: '***', source: 'environment' });
    expect(byName.get('METADATA_LOCATION')).toMatchObject({ value: 'postgres://u:***@db/x', source: '.env' });
    expect(byName.get('AWS_S3_REGION')).toMatchObject({ value: 'eu-west-1', source: 'environment' });
    expect(byName.get('CALLDATA_WORKER_MAX_JOBS')).toMatchObject({ value: '4', source: 'default' });
    expect(byName.get('CALLDATA_QUEUE_URL')).toMatchObject({ value: '(unset)', source: 'default' });
    expect(text).not.toContain('top-secret');
    expect(text).not.toContain(':pw@');
    expect(text).toMatch(/^LIVEKIT_API_SECRET +\*\*\* {2}\[environment\]$/m);
  });
});

describe('probes', () => {
  it.each([
    ['https://sqs.eu-west-1.amazonaws.com/123456789012/calls', 'eu-west-1'],
    ['https://sqs.cn-north-1.amazonaws.com.cn/123456789012/calls', 'cn-north-1'],
    ['https://sqs.us-gov-west-1.amazonaws.com/123456789012/calls', 'us-gov-west-1'],
    ['https://ap-southeast-2.queue.amazonaws.com/123456789012/calls', 'ap-southeast-2'],
    ['http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/calls', 'us-east-1'],
    ['http://localhost:4566/queue/us-east-1/000000000000/calls', 'us-east-1'],
    ['http://localhost:4566/000000000000/calls', undefined],
    ['https://queue.example.com/sqs.eu-west-1./calls', undefined],
    ['not a url', undefined],
  ])('find the region an SQS queue URL names: %s → %s', (url, region) => {
    expect(queueRegion(url)).toBe(region);
  });

  it("report LiveKit's missing credentials as a probe failure naming the variable (the one LiveKit check)", async () => {
    // Prepare: a LiveKit URL without a key or secret, nothing else to probe but the default folder
    const config = loadConfig({ LIVEKIT_URL: 'ws://127.0.0.1:7880', METADATA_LOCATION: mkdtempSync(join(tmpdir(), 'calldata-probe-')) });

    // Act
    const results = await runProbes(config, {});

    // Assess
    expect(probesFor(config, {}).map((p) => p.kind)).toEqual(['location', 'livekit']);
    expect(results.find((r) => r.kind === 'livekit')).toMatchObject({
      ok: false,
      error: 'invalid configuration: LIVEKIT_API_KEY: is required to ask LiveKit for its rooms (or LIVEKIT_API_KEY_SECRET_ARN on Lambda); LIVEKIT_API_SECRET: is required to ask LiveKit for its rooms (or LIVEKIT_API_SECRET_SECRET_ARN on Lambda)',
    });
  });
});
