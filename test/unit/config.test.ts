import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { loadConfig, RECORDING_TIMING } from '../../functions/config/config.ts';
import { readJson, type Problem } from '../../functions/config/env.ts';
import { ConfigError } from '../../functions/config/errors.ts';
import { VARIABLES } from '../../functions/config/variables.ts';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => p.variable);
  }
}

describe('configuration', () => {
  it('uses the spec defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      callRecording: false,
      saveMetadata: false,
      saveTranscription: false,
      hangupCall: true,
      timezone: 'system',
      metadataLocation: 'Call_Metadata',
      transcriptionLocation: 'Transcriptions',
      s3: { region: 'us-east-1', forcePathStyle: false },
      answerTimeoutMs: 30_000,
      sweepAfterMs: 10 * 60_000,
    });
    expect(config.queueUrl).toBeUndefined();
  });

  it('reads the sweeper\'s quiet time in milliseconds, between 1 second and 7 days', () => {
    expect(loadConfig({ CALLDATA_SWEEP_AFTER_MS: '1000' }).sweepAfterMs).toBe(1_000);
    expect(loadConfig({ CALLDATA_SWEEP_AFTER_MS: String(7 * 24 * 3_600_000) }).sweepAfterMs).toBe(7 * 24 * 3_600_000);
    expect(problemsOf({ CALLDATA_SWEEP_AFTER_MS: '999' })).toEqual(['CALLDATA_SWEEP_AFTER_MS']);
    expect(problemsOf({ CALLDATA_SWEEP_AFTER_MS: '10m' })).toEqual(['CALLDATA_SWEEP_AFTER_MS']);
  });

  it.each([
    ['true', true], ['TRUE', true], ['1', true], ['yes', true], ['On', true],
    ['false', false], ['0', false], ['no', false], ['OFF', false], [' False ', false],
  ])('reads boolean %j as %s', (raw, expected) => {
    expect(loadConfig({ SAVE_METADATA: raw }).saveMetadata).toBe(expected);
  });

  it('rejects a boolean it cannot read, naming the variable', () => {
    expect(problemsOf({ HANGUP_CALL: 'maybe', CALL_RECORDING: 'y' })).toEqual(['CALL_RECORDING', 'HANGUP_CALL']);
  });

  it('accepts an IANA timezone and falls back to local time with a warning for an invalid one', () => {
    expect(loadConfig({ TIMEZONE: 'Asia/Kolkata' }).timezone).toBe('Asia/Kolkata');
    const fallback = loadConfig({ TIMEZONE: 'Mars/Olympus' });
    expect(fallback.timezone).toBe('system');
    expect(fallback.warnings.join()).toMatch(/TIMEZONE "Mars\/Olympus"/);
  });

  it('takes MinIO names when the AWS ones are absent', () => {
    const config = loadConfig({ MINIO_BUCKET: 'siphon', MINIO_ACCESS_KEY: 'minioadmin', MINIO_SECRET_KEY: 'minioadmin', AWS_S3_ENDPOINT: 'http://localhost:9000', AWS_S3_FORCE_PATH_STYLE: 'true' });
    expect(config.s3).toEqual({ bucket: 'siphon', accessKeyId: 'minioadmin', secretAccessKey: 'minioadmin', endpoint: 'http://localhost:9000', region: 'us-east-1', forcePathStyle: true });
  });

  it('requires a bucket for the s3 location and for recording, naming the variables', () => {
    expect(problemsOf({ METADATA_LOCATION: 's3' })).toEqual(['METADATA_LOCATION']);
    expect(problemsOf({ CALL_RECORDING: 'true' })).toEqual(['AWS_S3_BUCKET']);
  });

  it('requires access key and secret key together', () => {
    expect(problemsOf({ AWS_S3_ACCESS_KEY_ID: 'AKIA' })).toEqual(['AWS_S3_SECRET_ACCESS_KEY']);
  });

  it('rejects malformed URLs and out-of-range numbers, naming each', () => {
    expect(problemsOf({ CALLDATA_QUEUE_URL: 'not a url', CALLDATA_ANSWER_TIMEOUT_MS: '12', AWS_S3_BUCKET: 'Bad_Bucket' })).toEqual(['AWS_S3_BUCKET', 'CALLDATA_QUEUE_URL', 'CALLDATA_ANSWER_TIMEOUT_MS']);
  });

  it("reads LiveKit's and the worker's settings into the same configuration, with the documented defaults", () => {
    // Prepare / Act
    const defaults = loadConfig({});
    const set = loadConfig({
      LIVEKIT_URL: 'wss://demo.livekit.cloud',
      LIVEKIT_API_KEY: 'APIkey',
      LIVEKIT_API_SECRET: 'shh',
      LIVEKIT_AGENT_NAME: 'phone-agent',
      CALLDATA_WORKER_LOAD: 'JOBS',
      CALLDATA_WORKER_MAX_JOBS: '8',
      CALLDATA_PROGRESS_INTERVAL_MS: '300',
      AGENT_LLM: 'openai/gpt-4.1',
      AGENT_INSTRUCTIONS: 'Be brief.',
      CALLDATA_AGENT_SCRIPT: '{"responses": [{"input": "hello", "content": "Hi"}]}',
    });

    // Assess
    expect(defaults.livekit).toEqual({ url: undefined, apiKey: undefined, apiSecret: undefined, inferenceApiKey: undefined, inferenceApiSecret: undefined });
    expect(defaults.worker).toEqual({ agentName: '', load: 'cpu', maxJobs: 4, progressIntervalMs: 2_000, llm: 'openai/gpt-4.1-mini', stt: 'deepgram/nova-3', tts: 'cartesia/sonic-2', instructions: undefined, agentScript: undefined });
    expect(defaults.recordingTiming).toEqual(RECORDING_TIMING);
    expect(set.livekit).toMatchObject({ url: 'wss://demo.livekit.cloud', apiKey: 'APIkey', apiSecret: 'shh' });
    expect(set.worker).toMatchObject({ agentName: 'phone-agent', load: 'jobs', maxJobs: 8, progressIntervalMs: 300, llm: 'openai/gpt-4.1', instructions: 'Be brief.', agentScript: { responses: [{ input: 'hello', content: 'Hi' }] } });
  });

  it('refuses bad worker and LiveKit values instead of falling back, naming each variable', () => {
    expect(problemsOf({ LIVEKIT_URL: 'ftp://x', CALLDATA_WORKER_LOAD: 'gpu', CALLDATA_WORKER_MAX_JOBS: '0', CALLDATA_PROGRESS_INTERVAL_MS: 'soon', LIVEKIT_INFERENCE_API_KEY: 'k' })).toEqual([
      'LIVEKIT_INFERENCE_API_SECRET',
      'LIVEKIT_URL',
      'CALLDATA_WORKER_LOAD',
      'CALLDATA_WORKER_MAX_JOBS',
      'CALLDATA_PROGRESS_INTERVAL_MS',
    ]);
  });

  it('never puts a secret value in its error message', () => {
    try {
      loadConfig({ AWS_S3_SECRET_ACCESS_KEY: 'super-secret-value' });
      expect.unreachable();
    } catch (error) {
      expect(String(error)).not.toContain('super-secret-value');
    }
  });

  it('takes every default from VARIABLES: a variable set to its documented default reads as if unset', () => {
    // Prepare: the variables .env.example and the README give a default
    const withDefault = VARIABLES.filter((variable) => variable.default !== '');
    const unset = loadConfig({});

    // Act / Assess: one at a time, and all at once
    expect(withDefault.length).toBeGreaterThan(15);
    for (const variable of withDefault) expect(loadConfig({ [variable.name]: variable.default }), variable.name).toEqual(unset);
    expect(loadConfig(Object.fromEntries(withDefault.map((variable) => [variable.name, variable.default])))).toEqual(unset);
  });

  it('parses CALLDATA_AGENT_SCRIPT once, inline or from a file, into the worker settings', () => {
    // Prepare
    const script = { instructions: 'Be brief.', responses: [{ input: 'hello', content: 'Hi!', usage: { promptTokens: 3, completionTokens: 2 } }] };
    const file = join(mkdtempSync(join(tmpdir(), 'calldata-config-')), 'script.json');
    writeFileSync(file, JSON.stringify(script));

    // Act / Assess
    expect(loadConfig({ CALLDATA_AGENT_SCRIPT: JSON.stringify(script) }).worker.agentScript).toEqual(script);
    expect(loadConfig({ CALLDATA_AGENT_SCRIPT: file }).worker.agentScript).toEqual(script);
  });

  it.each([
    ['a file that does not exist', '/nonexistent/calldata-script.json', /^cannot read "\/nonexistent\/calldata-script\.json" \(ENOENT\): point it at a JSON file like /],
    ['broken JSON', '{broken', /^is not valid JSON \(.*\): point it at a JSON file like /],
    ['JSON that is not a script', '{"responses": "hello"}', /^is not an agent script \(responses: .*\): point it at a JSON file like /],
  ])('refuses %s as CALLDATA_AGENT_SCRIPT, naming the variable and what a script looks like', (_case, value, message) => {
    // Act
    let problems: readonly Problem[] = [];
    try {
      loadConfig({ CALLDATA_AGENT_SCRIPT: value });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }

    // Assess
    expect(problems).toEqual([{ variable: 'CALLDATA_AGENT_SCRIPT', message: expect.stringMatching(message) }]);
  });
});

describe('readJson', () => {
  const schema = z.object({ n: z.number() });

  it('reads inline JSON (an object or an array) and JSON files, and nothing when unset or blank', () => {
    // Prepare
    const file = join(mkdtempSync(join(tmpdir(), 'calldata-json-')), 'value.json');
    writeFileSync(file, '{"n": 2}');
    const problems: Problem[] = [];

    // Act / Assess
    expect(readJson({ V: ' {"n": 1} ' }, 'V', schema, problems, { what: 'a number holder' })).toEqual({ n: 1 });
    expect(readJson({ V: file }, 'V', schema, problems, { what: 'a number holder' })).toEqual({ n: 2 });
    expect(readJson({ V: '[1, 2]' }, 'V', z.array(z.number()), problems, { what: 'a list' })).toEqual([1, 2]);
    expect(readJson({ V: '  ' }, 'V', schema, problems, { what: 'a number holder' })).toBeUndefined();
    expect(readJson({}, 'V', schema, problems, { what: 'a number holder' })).toBeUndefined();
    expect(problems).toEqual([]);
  });

  it('records one problem naming the variable and every place the value is wrong', () => {
    // Prepare
    const problems: Problem[] = [];

    // Act
    const value = readJson({ V: '{"n": "one", "m": 1}' }, 'V', z.strictObject({ n: z.number() }), problems, { what: 'a number holder' });

    // Assess
    expect(value).toBeUndefined();
    expect(problems).toEqual([{ variable: 'V', message: expect.stringMatching(/^is not a number holder \(n: .*, \(root\): .*"m"/) }]);
  });
});
