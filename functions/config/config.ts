/**
 * The one runtime configuration shared by the worker, the Lambdas and the CLI, read with the
 * readers of env.ts from the variables listed in variables.ts. Parsed and validated once per
 * process; every error names its variable. Knobs nobody needs to turn are constants here
 * (README "Changelog" lists the variables they replaced).
 */
import { IANAZone, DateTime } from 'luxon';
import { AGENT_SCRIPT_HINT, agentScriptSchema, type AgentScript } from './agent-script.ts';
import { priceTableSchema, type PriceTable } from './price-table.ts';
import { ConfigError } from './errors.ts';
import { first, readBoolean, readChoice, readInteger, readJson, readText, readUrl, type Env, type Problem } from './env.ts';
import { VARIABLES } from './variables.ts';

export type { Env } from './env.ts';

export interface S3Settings {
  bucket?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
}

/** LiveKit as the worker, the recording, webhook and sweeper functions and doctor reach it. */
export interface LivekitSettings {
  /** ws(s):// or http(s):// */
  url?: string;
  apiKey?: string;
  apiSecret?: string;
  /** A LiveKit Cloud project's credentials for LiveKit Inference when `url` is another server. */
  inferenceApiKey?: string;
  inferenceApiSecret?: string;
}

/** The runnable worker's own settings (worker/main.ts, worker/agent.ts). */
export interface WorkerSettings {
  /** Explicit dispatch name; '' = automatic dispatch. */
  agentName: string;
  /** Load reported to LiveKit: the machine's CPU, or running jobs / maxJobs. */
  load: 'cpu' | 'jobs';
  maxJobs: number;
  /** Least time between two progress messages of a call. */
  progressIntervalMs: number;
  /** LiveKit Inference model strings of the default agent. */
  llm: string;
  stt: string;
  tts: string;
  instructions?: string;
  /** CALLDATA_AGENT_SCRIPT (a JSON file path or inline JSON), parsed and validated: the offline scripted agent. */
  agentScript?: AgentScript;
}

/** How the recording function talks to egress. Constants: tests pass their own in a Config. */
export interface RecordingTiming {
  /** Attempts per egress request before the failure is recorded (503 / timeouts are retried). */
  egressAttempts: number;
  /** Timeout of one egress request. LiveKit answers 503 after ~23 s when no egress service runs. */
  egressTimeoutMs: number;
  /** First back-off between attempts; doubles each time. */
  egressBackoffMs: number;
  /**
   * How long a discard (or a finish) waits for the stopped egress to finish uploading before it
   * moves the file (or reports the result); a later upload is handled when egress_ended arrives.
   */
  discardWaitMs: number;
  /** Poll interval while waiting for an egress to end. */
  discardPollMs: number;
}

export const RECORDING_TIMING: Readonly<RecordingTiming> = {
  egressAttempts: 3,
  egressTimeoutMs: 30_000,
  egressBackoffMs: 1_000,
  discardWaitMs: 15_000,
  discardPollMs: 500,
};

export const LOAD_MODES = ['cpu', 'jobs'] as const;

/** What CALLDATA_ANSWER_TIMEOUT_MS and CALLDATA_SWEEP_AFTER_MS accept (the stack's answerTimeoutMs and sweepAfterMs too). */
export const ANSWER_TIMEOUT_BOUNDS_MS = { min: 1_000, max: 600_000 } as const;
export const SWEEP_AFTER_BOUNDS_MS = { min: 1_000, max: 7 * 24 * 60 * 60_000 } as const;

export interface Config {
  callRecording: boolean;
  saveMetadata: boolean;
  saveTranscription: boolean;
  hangupCall: boolean;
  /** SAVE_TOOL_CALLS: the worker also sends the agent's tool calls (name, arguments, output). */
  saveToolCalls: boolean;
  /** CALLDATA_PRICE_TABLE: turns a call's usage into `estimated_cost`. */
  priceTable?: PriceTable;
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
  /** Embedded mode keeps rejected snapshots here instead of a dead-letter queue. */
  deadLetterDir: string;
  /** How long the worker waits for a SIP participant to answer. */
  answerTimeoutMs: number;
  /** The sweeper closes a call whose room is gone and whose last fact is older than this. */
  sweepAfterMs: number;
  livekit: LivekitSettings;
  worker: WorkerSettings;
  recordingTiming: RecordingTiming;
  warnings: string[];
}

/** Each variable's default as VARIABLES writes it, the one place defaults live (an Env, so the readers parse it). */
const DEFAULTS: Env = Object.fromEntries(VARIABLES.map((variable) => [variable.name, variable.default]));

export function loadConfig(env: Env = process.env): Config {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  // Readers whose fallback is the variable's default in VARIABLES, parsed by the same reader
  // (a malformed default is a problem naming the variable, which the config tests would catch).
  const bool = (variable: string): boolean => readBoolean(env, variable, readBoolean(DEFAULTS, variable, false, problems), problems);
  const int = (variable: string, min: number, max: number): number => readInteger(env, variable, readInteger(DEFAULTS, variable, min, min, max, problems), min, max, problems);
  const text = (variable: string): string | undefined => readText(env, variable) ?? readText(DEFAULTS, variable);
  const textWithDefault = (variable: string): string => text(variable) ?? '';

  const callRecording = bool('CALL_RECORDING');
  const saveMetadata = bool('SAVE_METADATA');
  const saveTranscription = bool('SAVE_TRANSCRIPTION');
  const hangupCall = bool('HANGUP_CALL');
  const saveToolCalls = bool('SAVE_TOOL_CALLS');
  const priceTable = readJson(env, 'CALLDATA_PRICE_TABLE', priceTableSchema, problems, { what: 'a valid price table' });

  let timezone = 'system';
  const tz = text('TIMEZONE');
  if (tz) {
    if (IANAZone.isValidZone(tz)) timezone = tz;
    else warnings.push(`TIMEZONE ${JSON.stringify(tz)} is not a valid IANA zone; using local time (${DateTime.local().zoneName})`);
  }

  const metadataLocation = textWithDefault('METADATA_LOCATION');
  const transcriptionLocation = textWithDefault('TRANSCRIPTION_LOCATION');

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
    region: textWithDefault('AWS_S3_REGION'),
    forcePathStyle: bool('AWS_S3_FORCE_PATH_STYLE'),
  };

  for (const [variable, location] of [['METADATA_LOCATION', metadataLocation], ['TRANSCRIPTION_LOCATION', transcriptionLocation]] as const) {
    if (location === 's3' && !s3.bucket) problems.push({ variable, message: 'is "s3" but no bucket is set: set AWS_S3_BUCKET or MINIO_BUCKET' });
    if (location.includes('\0')) problems.push({ variable, message: 'contains a NUL character' });
  }
  if (callRecording && !s3.bucket) problems.push({ variable: 'AWS_S3_BUCKET', message: 'CALL_RECORDING=true needs a bucket: set AWS_S3_BUCKET or MINIO_BUCKET' });
  const inferenceKey = readText(env, 'LIVEKIT_INFERENCE_API_KEY');
  const inferenceSecret = readText(env, 'LIVEKIT_INFERENCE_API_SECRET');
  if (inferenceKey && !inferenceSecret) problems.push({ variable: 'LIVEKIT_INFERENCE_API_SECRET', message: 'required when LIVEKIT_INFERENCE_API_KEY is set' });
  if (inferenceSecret && !inferenceKey) problems.push({ variable: 'LIVEKIT_INFERENCE_API_KEY', message: 'required when LIVEKIT_INFERENCE_API_SECRET is set' });

  const config: Config = {
    callRecording,
    saveMetadata,
    saveTranscription,
    hangupCall,
    saveToolCalls,
    ...(priceTable ? { priceTable } : {}),
    timezone,
    metadataLocation,
    transcriptionLocation,
    s3,
    queueUrl: readUrl(env, 'CALLDATA_QUEUE_URL', problems),
    recordingQueueUrl: readUrl(env, 'CALLDATA_RECORDING_QUEUE_URL', problems),
    deadLetterQueueUrl: readUrl(env, 'CALLDATA_DEAD_LETTER_QUEUE_URL', problems),
    deadLetterDir: textWithDefault('CALLDATA_DEAD_LETTER_DIR'),
    answerTimeoutMs: int('CALLDATA_ANSWER_TIMEOUT_MS', ANSWER_TIMEOUT_BOUNDS_MS.min, ANSWER_TIMEOUT_BOUNDS_MS.max),
    sweepAfterMs: int('CALLDATA_SWEEP_AFTER_MS', SWEEP_AFTER_BOUNDS_MS.min, SWEEP_AFTER_BOUNDS_MS.max),
    livekit: {
      url: readUrl(env, 'LIVEKIT_URL', problems, ['ws', 'wss', 'http', 'https']),
      apiKey: readText(env, 'LIVEKIT_API_KEY'),
      apiSecret: readText(env, 'LIVEKIT_API_SECRET'),
      inferenceApiKey: inferenceKey,
      inferenceApiSecret: inferenceSecret,
    },
    worker: {
      agentName: textWithDefault('LIVEKIT_AGENT_NAME'),
      load: readChoice(env, 'CALLDATA_WORKER_LOAD', LOAD_MODES, readChoice(DEFAULTS, 'CALLDATA_WORKER_LOAD', LOAD_MODES, LOAD_MODES[0], problems), problems),
      maxJobs: int('CALLDATA_WORKER_MAX_JOBS', 1, 1_000),
      progressIntervalMs: int('CALLDATA_PROGRESS_INTERVAL_MS', 100, 600_000),
      llm: textWithDefault('AGENT_LLM'),
      stt: textWithDefault('AGENT_STT'),
      tts: textWithDefault('AGENT_TTS'),
      instructions: text('AGENT_INSTRUCTIONS'),
      agentScript: readJson(env, 'CALLDATA_AGENT_SCRIPT', agentScriptSchema, problems, { what: 'an agent script', hint: AGENT_SCRIPT_HINT }),
    },
    recordingTiming: { ...RECORDING_TIMING },
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
