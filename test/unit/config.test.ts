import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { ConfigError } from '../../functions/config/errors.ts';

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
    expect(problemsOf({ CALLDATA_QUEUE_URL: 'not a url', CALLDATA_OFFLOAD_BYTES: '12', AWS_S3_BUCKET: 'Bad_Bucket' })).toEqual(['AWS_S3_BUCKET', 'CALLDATA_QUEUE_URL', 'CALLDATA_OFFLOAD_BYTES']);
  });

  it('never puts a secret value in its error message', () => {
    try {
      loadConfig({ AWS_S3_SECRET_ACCESS_KEY: 'super-secret-value' });
      expect.unreachable();
    } catch (error) {
      expect(String(error)).not.toContain('super-secret-value');
    }
  });
});
