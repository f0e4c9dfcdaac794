/**
 * Environment configuration shared by the worker, the Lambdas and the CLI.
 * Parsed and validated once per process; every error names its variable.
 */
import { IANAZone, DateTime } from 'luxon';
import { ConfigError } from './errors.ts';
import { first, readBoolean, readInteger, readUrl, type Problem } from './env.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export interface S3Settings {
  bucket?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
}

export interface Config {
  callRecording: boolean;
  saveMetadata: boolean;
  saveTranscription: boolean;
  hangupCall: boolean;
  /** IANA zone used to format stored times; 'system' means the machine's local time. */
  timezone: string;
  metadataLocation: string;
  transcriptionLocation: string;
  s3: S3Settings;
  /** SQS queue for snapshots; unset means the embedded default (in-process delivery). */
  queueUrl?: string;
  /** Optional second queue that also receives started/unanswered/ended snapshots for the recording function. */
  recordingQueueUrl?: string;
  /** Where the persist function sends poison messages itself, so they skip the retry loop. */
  deadLetterQueueUrl?: string;
  /** Snapshot bodies above this size carry their conversation by reference to S3. */
  offloadThresholdBytes: number;
  /** Embedded mode keeps rejected snapshots here instead of a dead-letter queue. */
  deadLetterDir: string;
  /** How long the worker waits for a SIP participant to answer. */
  answerTimeoutMs: number;
  /** The sweeper closes a call whose room is gone and whose last fact is older than this. */
  sweepAfterMs: number;
  warnings: string[];
}

export function loadConfig(env: Env = process.env): Config {
  const problems: Problem[] = [];
  const warnings: string[] = [];

  const callRecording = readBoolean(env, 'CALL_RECORDING', false, problems);
  const saveMetadata = readBoolean(env, 'SAVE_METADATA', false, problems);
  const saveTranscription = readBoolean(env, 'SAVE_TRANSCRIPTION', false, problems);
  const hangupCall = readBoolean(env, 'HANGUP_CALL', true, problems);

  let timezone = 'system';
  const tz = env.TIMEZONE?.trim();
  if (tz) {
    if (IANAZone.isValidZone(tz)) timezone = tz;
    else warnings.push(`TIMEZONE ${JSON.stringify(tz)} is not a valid IANA zone; using local time (${DateTime.local().zoneName})`);
  }

  const metadataLocation = env.METADATA_LOCATION?.trim() || 'Call_Metadata';
  const transcriptionLocation = env.TRANSCRIPTION_LOCATION?.trim() || 'Transcriptions';

  const bucket = first(env, 'AWS_S3_BUCKET', 'MINIO_BUCKET');
  const accessKey = first(env, 'AWS_S3_ACCESS_KEY_ID', 'MINIO_ACCESS_KEY');
  const secretKey = first(env, 'AWS_S3_SECRET_ACCESS_KEY', 'MINIO_SECRET_KEY');
  if (accessKey && !secretKey) problems.push({ variable: 'AWS_S3_SECRET_ACCESS_KEY', message: `required when ${accessKey.variable} is set (or MINIO_SECRET_KEY)` });
  if (secretKey && !accessKey) problems.push({ variable: 'AWS_S3_ACCESS_KEY_ID', message: `required when ${secretKey.variable} is set (or MINIO_ACCESS_KEY)` });
  if (bucket && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket.value)) {
    problems.push({ variable: bucket.variable, message: `${JSON.stringify(bucket.value)} is not a valid S3 bucket name` });
  }
  const s3: S3Settings = {
    bucket: bucket?.value,
    accessKeyId: accessKey?.value,
    secretAccessKey: secretKey?.value,
    endpoint: readUrl(env, 'AWS_S3_ENDPOINT', problems),
    region: env.AWS_S3_REGION?.trim() || 'us-east-1',
    forcePathStyle: readBoolean(env, 'AWS_S3_FORCE_PATH_STYLE', false, problems),
  };

  for (const [variable, location] of [['METADATA_LOCATION', metadataLocation], ['TRANSCRIPTION_LOCATION', transcriptionLocation]] as const) {
    if (location === 's3' && !s3.bucket) problems.push({ variable, message: 'is "s3" but no bucket is set: set AWS_S3_BUCKET or MINIO_BUCKET' });
    if (location.includes('\0')) problems.push({ variable, message: 'contains a NUL character' });
  }
  if (callRecording && !s3.bucket) problems.push({ variable: 'AWS_S3_BUCKET', message: 'CALL_RECORDING=true needs a bucket: set AWS_S3_BUCKET or MINIO_BUCKET' });

  const config: Config = {
    callRecording,
    saveMetadata,
    saveTranscription,
    hangupCall,
    timezone,
    metadataLocation,
    transcriptionLocation,
    s3,
    queueUrl: readUrl(env, 'CALLDATA_QUEUE_URL', problems),
    recordingQueueUrl: readUrl(env, 'CALLDATA_RECORDING_QUEUE_URL', problems),
    deadLetterQueueUrl: readUrl(env, 'CALLDATA_DEAD_LETTER_QUEUE_URL', problems),
    offloadThresholdBytes: readInteger(env, 'CALLDATA_OFFLOAD_BYTES', 256 * 1024, 1024, 1024 * 1024 - 16 * 1024, problems),
    deadLetterDir: env.CALLDATA_DEAD_LETTER_DIR?.trim() || '.calldata/dead-letter',
    answerTimeoutMs: readInteger(env, 'CALLDATA_ANSWER_TIMEOUT_MS', 30_000, 1_000, 600_000, problems),
    sweepAfterMs: readInteger(env, 'CALLDATA_SWEEP_AFTER_MS', 10 * 60_000, 1_000, 7 * 24 * 60 * 60_000, problems),
    warnings,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

let cached: Config | undefined;

/** The process-wide configuration, validated on first use. */
export function getConfig(): Config {
  cached ??= loadConfig();
  return cached;
}

/** For tests and the CLI, which set the environment before the first read. */
export function resetConfigForTests(): void {
  cached = undefined;
}
