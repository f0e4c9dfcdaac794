import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { DISCARD_HOLD_MS, DISCARD_PREFIX as FUNCTIONS_DISCARD_PREFIX } from '../../functions/domain/recording-plan.ts';
import { PAYLOAD_PREFIX as FUNCTIONS_PAYLOAD_PREFIX } from '../../functions/transport/payload.ts';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synth } from './stack-fixture.ts';
import { DISCARD_HOLD_DAYS, DISCARD_PREFIX, hasPassword, OPEN_MARKER_PREFIX, PAYLOAD_PREFIX, PRICE_TABLE_MAX_BYTES, readSettings, recordsInBucket, SettingsError } from '../../infra/settings.ts';

function read(context: Record<string, unknown>) {
  return readSettings({ context: (key) => context[key] });
}

function problemsOf(context: Record<string, unknown>): readonly string[] {
  try {
    read(context);
  } catch (error) {
    if (error instanceof SettingsError) return error.problems;
    throw error;
  }
  return [];
}

describe('deploy settings', () => {
  it('default to S3 storage, metadata and transcripts on, recording off, worker deployed, resources retained', () => {
    // Prepare / Act
    const settings = read({ livekitUrl: 'wss://x.livekit.cloud' });

    // Assess
    expect(settings).toMatchObject({
      localstack: false,
      metadataLocation: 's3',
      transcriptionLocation: 's3',
      saveMetadata: true,
      saveTranscription: true,
      callRecording: false,
      hangupCall: true,
      deployWorker: true,
      destroyOnDelete: false,
      maxReceiveCount: 5,
      queueRetentionDays: 4,
      logRetentionDays: 30,
      persistTimeoutSeconds: 30,
      visibilityTimeoutSeconds: 180,
      recordingTimeoutSeconds: 120,
      recordingVisibilityTimeoutSeconds: 720,
    });
  });

  it('come from context only: the variables of a loaded .env (the old environment twins) change nothing', () => {
    // Prepare: a shell with the local .env loaded, and the very keys once read as twins
    const stubbed = { METADATA_LOCATION: 'redis://cache:6379/0', TIMEZONE: 'Asia/Kolkata', CALL_RECORDING: 'true', SAVE_METADATA: 'false', CALLDATA_DEPLOY_WORKER: 'true', CALLDATA_LOCALSTACK: 'true', CALLDATA_STACK_NAME: 'Other' };
    for (const [name, value] of Object.entries(stubbed)) vi.stubEnv(name, value);

    try {
      // Act
      const settings = read({ metadataLocation: 'postgres://db.internal/calldata' });
      const { stack } = synth({ localstack: true });

      // Assess: context where given, the defaults everywhere else
      expect(settings.metadataLocation).toBe('postgres://db.internal/calldata');
      expect(settings).toMatchObject({ timezone: undefined, callRecording: false, saveMetadata: true, deployWorker: false, localstack: false });
      expect(stack.stackName).toBe('CallData');
    } finally {
      vi.unstubAllEnvs();
    }
  }, 60_000);

  it('keep no environment twin in the settings source', () => {
    // Prepare
    const source = readFileSync(new URL('../../infra/settings.ts', import.meta.url), 'utf8') + readFileSync(new URL('../../infra/app.ts', import.meta.url), 'utf8');

    // Act / Assess
    expect(source).not.toMatch(/process\.env|\benv\.[A-Z]/);
  });

  it('turn the LocalStack profile into no worker and destroy-on-delete unless told otherwise', () => {
    // Prepare / Act
    const settings = read({ localstack: 'true' });

    // Assess
    expect(settings.deployWorker).toBe(false);
    expect(settings.destroyOnDelete).toBe(true);
  });

  it('parse comma-separated subnets and security groups for an existing VPC', () => {
    // Prepare / Act
    const settings = read({ localstack: true, vpcId: 'vpc-123', subnetIds: 'subnet-a, subnet-b', securityGroupIds: ['sg-1'] });

    // Assess
    expect(settings.subnetIds).toEqual(['subnet-a', 'subnet-b']);
    expect(settings.securityGroupIds).toEqual(['sg-1']);
  });

  it('refuse a database URL with a password and name the secret setting to use instead', () => {
    // Prepare / Act
    const problems = problemsOf({ localstack: true, transcriptionLocation: 'postgres://calldata:hunter2@db/calldata' });

    // Assess
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('transcriptionLocation (context)');
    expect(problems[0]).toContain('transcriptionLocationSecret');
    expect(problems[0]).not.toContain('hunter2');
  });

  it('report every invalid value at once, each naming its context key', () => {
    // Prepare / Act
    const problems = problemsOf({
      timezone: 'Mars/Olympus',
      saveMetadata: 'maybe',
      logRetentionDays: '45',
      persistTimeoutSeconds: '60',
      visibilityTimeoutSeconds: '30',
      vpcId: 'vpc-1',
      bucketName: 'Bad_Bucket',
      workerCpu: '300',
      deployWorker: 'true',
    });

    // Assess
    const joined = problems.join('\n');
    for (const key of ['timezone', 'saveMetadata', 'logRetentionDays', 'visibilityTimeoutSeconds', 'subnetIds', 'bucketName', 'livekitUrl', 'workerCpu']) {
      expect(joined).toContain(`${key} (context)`);
    }
  });

  it('read the price table from context inline, as a cdk.json object or from a file, as JSON the runtime configuration reads back', () => {
    // Prepare
    const table = { currency: 'USD', models: { 'openai/gpt-4.1-mini': { promptPer1M: 0.4, completionPer1M: 1.6 } } };
    const file = join(mkdtempSync(join(tmpdir(), 'calldata-prices-')), 'prices.json');
    writeFileSync(file, JSON.stringify(table));

    // Act
    const given = [JSON.stringify(table), table, file].map((priceTable) => read({ priceTable }).priceTable);

    // Assess
    for (const json of given) expect(loadConfig({ CALLDATA_PRICE_TABLE: json ?? '' }).priceTable).toEqual(table);
    expect(read({}).priceTable).toBeUndefined();
  });

  it('refuse a price table the runtime would refuse, or one too large for a function environment, naming priceTable', () => {
    // Prepare
    const models = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`provider/model-number-${i}`, { promptPer1M: 0.1, completionPer1M: 0.2 }]));

    // Act
    const cases = {
      json: problemsOf({ priceTable: '{"models":' }),
      negative: problemsOf({ priceTable: '{"models":{"a/b":{"promptPer1M":-1}}}' }),
      misspelled: problemsOf({ priceTable: { models: { 'a/b': { promptPer1m: 1 } } } }),
      missingFile: problemsOf({ priceTable: '/nonexistent/prices.json' }),
      tooLarge: problemsOf({ priceTable: { models } }),
    };

    // Assess
    expect(cases.json).toEqual([expect.stringMatching(/^priceTable \(context\): is not valid JSON/)]);
    expect(cases.negative).toEqual([expect.stringMatching(/^priceTable \(context\): is not a valid price table \(models\.a\/b\.promptPer1M: /)]);
    expect(cases.misspelled).toEqual([expect.stringMatching(/^priceTable \(context\): is not a valid price table \(.*promptPer1m/)]);
    expect(cases.missingFile).toEqual([expect.stringMatching(/^priceTable \(context\): cannot read "\/nonexistent\/prices\.json" \(ENOENT\)/)]);
    expect(cases.tooLarge).toEqual([expect.stringMatching(new RegExp(`^priceTable \\(context\\): \\d+ bytes as JSON, more than the ${PRICE_TABLE_MAX_BYTES}`))]);
  });

  it('require the LiveKit URL when the worker or recording is asked for', () => {
    // Prepare / Act
    const worker = problemsOf({ deployWorker: true });
    const recording = problemsOf({ callRecording: true });
    const neither = problemsOf({});

    // Assess
    expect(worker.join()).toContain('livekitUrl');
    expect(recording.join()).toContain('livekitUrl');
    expect(neither).toEqual([]);
  });

  it('leave the worker out by default when no LiveKit URL is given, so a bare synth works', () => {
    // Prepare / Act
    const settings = read({});

    // Assess
    expect(settings.deployWorker).toBe(false);
  });

  it('recognise passwords in database URLs but not in plain locations', () => {
    // Prepare / Act / Assess
    expect(hasPassword('mysql://user:pw@db:3306/calldata')).toBe(true);
    expect(hasPassword('mongodb+srv://u:p@cluster.example.net/calldata')).toBe(true);
    expect(hasPassword('postgres://db/calldata?password=x')).toBe(true);
    expect(hasPassword('redis://cache:6379/0')).toBe(false);
    expect(hasPassword('s3')).toBe(false);
    expect(hasPassword('/mnt/efs/Call_Metadata')).toBe(false);
  });

  it('use the same claim-check prefix as the functions, so the lifecycle rule expires real payloads', () => {
    // Prepare / Act / Assess
    expect(PAYLOAD_PREFIX).toBe(FUNCTIONS_PAYLOAD_PREFIX);
  });

  it('use the same discard prefix and hold as the functions, so the lifecycle rule expires exactly what the purge would', () => {
    // Prepare / Act / Assess
    expect(DISCARD_PREFIX).toBe(FUNCTIONS_DISCARD_PREFIX);
    expect(DISCARD_HOLD_DAYS * 24 * 60 * 60 * 1000).toBe(DISCARD_HOLD_MS);
  });

  it('grant deletes of the same open-call marker prefix the S3 backend writes', () => {
    // Prepare
    const source = readFileSync(new URL('../../functions/storage/s3.ts', import.meta.url), 'utf8');

    // Act / Assess
    expect(source).toContain(`'${OPEN_MARKER_PREFIX}/'`);
  });

  it('know when call records live in the recordings bucket', () => {
    // Prepare
    const base = { saveMetadata: true, saveTranscription: true, callRecording: false, metadataLocation: 's3', transcriptionLocation: 's3' };

    // Act / Assess
    expect(recordsInBucket(base)).toBe(true);
    expect(recordsInBucket({ ...base, metadataLocation: 'postgres://db/x', transcriptionLocation: 'Transcriptions' })).toBe(false);
    expect(recordsInBucket({ ...base, metadataLocationSecret: 'calldata/db', saveTranscription: false })).toBe(false);
    expect(recordsInBucket({ ...base, saveMetadata: false, saveTranscription: false, callRecording: true })).toBe(true);
    expect(recordsInBucket({ ...base, saveMetadata: false, saveTranscription: false })).toBe(false);
  });

  it('pass the sweeper\'s quiet time through only when set, within the bounds the functions accept', () => {
    // Prepare / Act
    const unset = read({});
    const set = read({ sweepAfterMs: '900000', sweeperTimeoutSeconds: '60' });
    const tooSmall = problemsOf({ sweepAfterMs: '10' });

    // Assess
    expect(unset.sweepAfterMs).toBeUndefined();
    expect(unset.sweeperTimeoutSeconds).toBe(120);
    expect(set).toMatchObject({ sweepAfterMs: 900_000, sweeperTimeoutSeconds: 60 });
    expect(loadConfig({ CALLDATA_SWEEP_AFTER_MS: String(set.sweepAfterMs) }).sweepAfterMs).toBe(900_000);
    expect(tooSmall.join()).toContain('sweepAfterMs (context)');
  });

  it('take extra worker variables and secrets as JSON, refusing secret-looking names in the plain environment', () => {
    // Prepare / Act
    const settings = read({ localstack: true, workerEnvironment: '{"AGENT_LLM":"openai/gpt-4.1"}', workerSecrets: { DEEPGRAM_API_KEY: 'calldata/deepgram' } });
    const problems = problemsOf({ localstack: true, workerEnvironment: '{"OPENAI_API_KEY":"sk-live"}' });
    const malformed = problemsOf({ localstack: true, workerSecrets: '[1,2]' });

    // Assess
    expect(settings.workerEnvironment).toEqual({ AGENT_LLM: 'openai/gpt-4.1' });
    expect(settings.workerSecrets).toEqual({ DEEPGRAM_API_KEY: 'calldata/deepgram' });
    expect(problems.join()).toContain('OPENAI_API_KEY looks like a secret; pass it in workerSecrets');
    expect(problems.join()).not.toContain('sk-live');
    expect(malformed.join()).toContain('workerSecrets (context)');
  });
});
