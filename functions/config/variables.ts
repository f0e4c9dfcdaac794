/**
 * Every environment variable the product reads, in one list: `.env.example` and the README's
 * table are checked against it (test/unit/env-example.test.ts) and `calldata doctor` prints it.
 * `loadConfig` (config.ts) is the only reader; a variable missing here is a test failure.
 *
 * Deploy-time settings are not here: the stack reads CDK context only (infra/settings.ts).
 */
import { maskUrlPassword } from '../shared/redact.ts';

/** Who reads a variable: the worker, the Lambda functions, the `calldata` CLI. */
export type Reader = 'worker' | 'functions' | 'cli';

/**
 * How doctor shows a value: `plain`, `secret` (never shown), or `url` (shown with any password
 * in it masked, since a database location may carry one).
 */
export type Exposure = 'plain' | 'secret' | 'url';

export interface Variable {
  name: string;
  /** The default as written in `.env.example` ('' = unset). */
  default: string;
  exposure: Exposure;
  readers: readonly Reader[];
  description: string;
}

const ALL: readonly Reader[] = ['worker', 'functions', 'cli'];
const WORKER: readonly Reader[] = ['worker'];

export const VARIABLES: readonly Variable[] = [
  { name: 'CALL_RECORDING', default: 'false', exposure: 'plain', readers: ALL, description: 'Record the call (room composite egress, audio-only `.ogg`, layout `speaker`) to S3/MinIO' },
  { name: 'SAVE_METADATA', default: 'false', exposure: 'plain', readers: ALL, description: 'Save a per-call metadata document to `METADATA_LOCATION`' },
  { name: 'SAVE_TRANSCRIPTION', default: 'false', exposure: 'plain', readers: ALL, description: 'Save `{"conversation": [...]}` to `TRANSCRIPTION_LOCATION`' },
  { name: 'SAVE_TOOL_CALLS', default: 'false', exposure: 'plain', readers: WORKER, description: "Also keep the agent's tool calls, as separate entries beside the conversation" },
  { name: 'HANGUP_CALL', default: 'true', exposure: 'plain', readers: WORKER, description: '`false` makes the end-call tool a no-op; data is still saved on exit' },
  { name: 'TIMEZONE', default: '', exposure: 'plain', readers: ALL, description: 'IANA zone for stored times and folder names; unset or invalid → local time (invalid with a warning)' },
  { name: 'METADATA_LOCATION', default: 'Call_Metadata', exposure: 'url', readers: ALL, description: 'Where metadata goes (see backends)' },
  { name: 'TRANSCRIPTION_LOCATION', default: 'Transcriptions', exposure: 'url', readers: ALL, description: 'Where transcriptions go (see backends)' },
  { name: 'AWS_S3_BUCKET', default: '', exposure: 'plain', readers: ALL, description: 'Bucket for recordings and for the `s3` location (alias `MINIO_BUCKET`)' },
  { name: 'MINIO_BUCKET', default: '', exposure: 'plain', readers: ALL, description: 'Used when `AWS_S3_BUCKET` is unset' },
  { name: 'AWS_S3_ACCESS_KEY_ID', default: '', exposure: 'plain', readers: ALL, description: "Optional on AWS (the role's credentials are used); alias `MINIO_ACCESS_KEY`" },
  { name: 'MINIO_ACCESS_KEY', default: '', exposure: 'plain', readers: ALL, description: 'Used when `AWS_S3_ACCESS_KEY_ID` is unset' },
  { name: 'AWS_S3_SECRET_ACCESS_KEY', default: '', exposure: 'secret', readers: ALL, description: 'Must accompany the access key; alias `MINIO_SECRET_KEY`' },
  { name: 'MINIO_SECRET_KEY', default: '', exposure: 'secret', readers: ALL, description: 'Used when `AWS_S3_SECRET_ACCESS_KEY` is unset' },
  { name: 'AWS_S3_ENDPOINT', default: '', exposure: 'plain', readers: ALL, description: 'e.g. `http://localhost:9000` for MinIO' },
  { name: 'AWS_S3_REGION', default: 'us-east-1', exposure: 'plain', readers: ALL, description: 'Region of the bucket' },
  { name: 'AWS_S3_FORCE_PATH_STYLE', default: 'false', exposure: 'plain', readers: ALL, description: '`true` for MinIO' },
  { name: 'CALLDATA_QUEUE_URL', default: '', exposure: 'plain', readers: ALL, description: 'SQS queue for fact messages; unset = embedded default (in-process)' },
  { name: 'CALLDATA_RECORDING_QUEUE_URL', default: '', exposure: 'plain', readers: ['functions'], description: 'Where the persist function sends recording commands (set by the stack)' },
  { name: 'CALLDATA_DEAD_LETTER_QUEUE_URL', default: '', exposure: 'plain', readers: ['functions'], description: 'Where the persist function parks poison messages at once (set by the stack)' },
  { name: 'CALLDATA_DEAD_LETTER_DIR', default: '.calldata/dead-letter', exposure: 'plain', readers: ['worker', 'cli'], description: "Embedded default's place for poison messages" },
  { name: 'CALLDATA_ANSWER_TIMEOUT_MS', default: '30000', exposure: 'plain', readers: WORKER, description: 'Unanswered when nobody answers within this time' },
  { name: 'CALLDATA_SWEEP_AFTER_MS', default: '600000', exposure: 'plain', readers: ['worker', 'functions'], description: 'The sweeper closes a call whose room is gone and whose last fact is older than this' },
  { name: 'CALLDATA_PRICE_TABLE', default: '', exposure: 'plain', readers: ALL, description: 'Prices per model (a JSON file path or inline JSON) that turn usage into an estimated cost' },
  { name: 'LIVEKIT_URL', default: '', exposure: 'plain', readers: ALL, description: 'LiveKit server (worker, recording, webhook and sweeper functions, doctor)' },
  { name: 'LIVEKIT_API_KEY', default: '', exposure: 'plain', readers: ALL, description: 'LiveKit API key' },
  { name: 'LIVEKIT_API_SECRET', default: '', exposure: 'secret', readers: ALL, description: 'LiveKit API secret' },
  { name: 'LIVEKIT_INFERENCE_API_KEY', default: '', exposure: 'plain', readers: WORKER, description: "A LiveKit Cloud project's key for LiveKit Inference when `LIVEKIT_URL` is a self-hosted server" },
  { name: 'LIVEKIT_INFERENCE_API_SECRET', default: '', exposure: 'secret', readers: WORKER, description: 'Its secret' },
  { name: 'LIVEKIT_AGENT_NAME', default: '', exposure: 'plain', readers: WORKER, description: 'Register for explicit dispatch under this name; empty = automatic dispatch' },
  { name: 'CALLDATA_PROGRESS_INTERVAL_MS', default: '2000', exposure: 'plain', readers: WORKER, description: 'Least time between two progress messages of a call' },
  { name: 'CALLDATA_WORKER_LOAD', default: 'cpu', exposure: 'plain', readers: WORKER, description: 'Load reported to LiveKit: `cpu` (the SDK default) or `jobs` (running jobs / `CALLDATA_WORKER_MAX_JOBS`)' },
  { name: 'CALLDATA_WORKER_MAX_JOBS', default: '4', exposure: 'plain', readers: WORKER, description: 'Jobs at full load with `CALLDATA_WORKER_LOAD=jobs`' },
  { name: 'AGENT_LLM', default: 'openai/gpt-4.1-mini', exposure: 'plain', readers: WORKER, description: "Default agent's LLM (LiveKit Inference model string)" },
  { name: 'AGENT_STT', default: 'deepgram/nova-3', exposure: 'plain', readers: WORKER, description: "Default agent's speech-to-text" },
  { name: 'AGENT_TTS', default: 'cartesia/sonic-2', exposure: 'plain', readers: WORKER, description: "Default agent's text-to-speech" },
  { name: 'AGENT_INSTRUCTIONS', default: '', exposure: 'plain', readers: WORKER, description: "Default agent's instructions (a short phone-assistant prompt when unset)" },
  { name: 'CALLDATA_AGENT_SCRIPT', default: '', exposure: 'plain', readers: WORKER, description: 'The offline scripted, text-only agent (a JSON file path or inline JSON); no model account needed' },
];

export const VARIABLE_NAMES: ReadonlySet<string> = new Set(VARIABLES.map((v) => v.name));

/**
 * The AWS SDK's own standard variables that `.env.example` and the README's table list (after
 * VARIABLES), because a user sets them: the SDK reads them itself, calldata neither reads nor
 * validates them. Their `default` is what calldata assumes: none.
 */
export const SDK_VARIABLES: readonly Variable[] = [
  { name: 'AWS_REGION', default: '', exposure: 'plain', readers: ALL, description: "The AWS SDK's region, for SQS (read by the SDK; set by AWS on Lambda and ECS); `doctor --probe` takes a queue's region from its URL when unset" },
  { name: 'AWS_ENDPOINT_URL', default: '', exposure: 'plain', readers: ALL, description: "The AWS SDK's endpoint for every AWS service (read by the SDK), e.g. `http://127.0.0.1:4566` for LocalStack" },
];

/**
 * Variables of the libraries underneath (AWS SDK, Powertools), which read them themselves;
 * calldata passes them through and does not validate them.
 */
export const LIBRARY_VARIABLES: ReadonlySet<string> = new Set([...SDK_VARIABLES.map((v) => v.name), 'POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_SERVICE_NAME']);

/** Shows a value as doctor prints it: secrets as `***` (or `(unset)`), URL passwords masked. */
export function maskValue(variable: Pick<Variable, 'exposure'>, value: string | undefined): string {
  if (value === undefined || value === '') return '(unset)';
  if (variable.exposure === 'secret') return '***';
  if (variable.exposure === 'url') return maskUrlPassword(value);
  return value;
}

