/**
 * Everything a user chooses at deploy time, read from CDK context only (`-c key=value` or
 * cdk.json). The environment is never consulted, so a shell with a local `.env` loaded cannot
 * change a deploy. Validated once; every error names the context key.
 */
import { IANAZone } from 'luxon';
import { ANSWER_TIMEOUT_BOUNDS_MS, SWEEP_AFTER_BOUNDS_MS } from '../functions/config/config.ts';
import { readBoolean, readInteger, readJson, type Env, type Problem } from '../functions/config/env.ts';
import { priceTableSchema } from '../functions/config/price-table.ts';
import { CallDataError } from '../functions/errors.ts';

/** Prefix of the claim-check payloads; equals PAYLOAD_PREFIX in functions/transport/payload.ts (a unit test checks). */
export const PAYLOAD_PREFIX = '_calldata-payloads';
/**
 * Where discarded recordings wait, and for how long, before they are deleted; equal to
 * DISCARD_PREFIX and DISCARD_HOLD_MS in functions/domain/recording-plan.ts (a unit test checks).
 */
export const DISCARD_PREFIX = '_calldata-discarded';
export const DISCARD_HOLD_DAYS = 15;
/**
 * Where the S3 backend keeps a marker per open call (functions/storage/s3.ts): written while a
 * call is open, deleted once it is final (by the persist step, or by a sweep that finds a stale one).
 */
export const OPEN_MARKER_PREFIX = '_calldata-open';
/** How often the scheduled sweeper runs. */
export const SWEEP_INTERVAL_MINUTES = 5;

export type Source = { context: (key: string) => unknown };

export interface CallDataSettings {
  /** Deploy for LocalStack instead of AWS (see docs/deploy.md). */
  localstack: boolean;
  callRecording: boolean;
  saveMetadata: boolean;
  saveTranscription: boolean;
  hangupCall: boolean;
  /** IANA zone for stored timestamps; undefined = the function's local time (UTC on Lambda). */
  timezone?: string;
  /** Plain location: `s3`, a database URL without a password, or a folder path. */
  metadataLocation: string;
  transcriptionLocation: string;
  /** Secrets Manager reference (ARN or name, optional `:json-key`) holding a location URL with credentials. */
  metadataLocationSecret?: string;
  transcriptionLocationSecret?: string;
  /** Name for the recordings bucket; undefined lets CloudFormation choose. */
  bucketName?: string;
  /**
   * S3 endpoint the functions and LiveKit egress use for the bucket (AWS_S3_ENDPOINT); only for
   * LocalStack or another S3-compatible store. Undefined = AWS S3 of the stack's region.
   */
  s3Endpoint?: string;
  /** Delete recordings (and the metadata beside them) after this many days; 0 keeps them. */
  recordingExpirationDays: number;
  /** Claim-check payloads of long conversations are deleted after this many days. */
  payloadExpirationDays: number;
  logRetentionDays: number;
  /** Receives before a message that keeps failing moves to the dead-letter queue. */
  maxReceiveCount: number;
  queueRetentionDays: number;
  persistTimeoutSeconds: number;
  recordingTimeoutSeconds: number;
  webhookTimeoutSeconds: number;
  /** Snapshot queue visibility timeout; at least the persist timeout (AWS recommends 6x). */
  visibilityTimeoutSeconds: number;
  /** Recording queue visibility timeout; at least the recording timeout. */
  recordingVisibilityTimeoutSeconds: number;
  batchSize: number;
  maxBatchingWindowSeconds: number;
  persistMaxConcurrency: number;
  recordingMaxConcurrency: number;
  /** Existing VPC for private databases (persist function and worker service). */
  vpcId?: string;
  subnetIds: string[];
  securityGroupIds: string[];
  deployWorker: boolean;
  workerDesiredCount: number;
  workerCpu: number;
  workerMemoryMiB: number;
  livekitUrl?: string;
  /** LIVEKIT_AGENT_NAME of the worker (explicit dispatch); undefined = automatic dispatch. */
  agentName?: string;
  /** Extra non-secret environment for the worker (e.g. AGENT_INSTRUCTIONS, AGENT_LLM). */
  workerEnvironment: Record<string, string>;
  /** Extra secret environment for the worker: variable → secret reference (`<ARN or name>[:json-key]`). */
  workerSecrets: Record<string, string>;
  /** Existing secret with JSON {"apiKey","apiSecret"}; undefined = the stack creates one to fill in. */
  livekitSecret?: string;
  /** Existing secret with JSON {"accessKeyId","secretAccessKey"} that LiveKit egress uploads recordings with. */
  egressS3Secret?: string;
  alarmEmail?: string;
  /** Retain (default) or destroy the bucket, queues and secrets when the stack is deleted. */
  destroyOnDelete: boolean;
  answerTimeoutMs?: number;
  /** CALLDATA_SWEEP_AFTER_MS of the sweeper: how long a call stays quiet before it may be closed. */
  sweepAfterMs?: number;
  sweeperTimeoutSeconds: number;
  /**
   * Run the sweeper on an EventBridge schedule. Default on AWS; off in the LocalStack profile,
   * whose test servers run without EventBridge (the function is deployed and can be invoked).
   */
  sweepSchedule: boolean;
  /**
   * The price table (CALLDATA_PRICE_TABLE of the persist and sweeper functions) as compact JSON,
   * validated at synth by the runtime's own reader; undefined = no `estimated_cost`.
   */
  priceTable?: string;
}

/**
 * Lambda allows 4 KB for all of a function's variables together; the price table may take half
 * (a few dozen models), leaving room for the rest of the configuration.
 */
export const PRICE_TABLE_MAX_BYTES = 2_048;

/** CloudWatch Logs accepts only these retention periods. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

export class SettingsError extends CallDataError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid deploy settings:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}


/** True when call records are kept in the recordings bucket (a location is `s3`, or only recording is on). */
export function recordsInBucket(settings: Pick<CallDataSettings, 'saveMetadata' | 'saveTranscription' | 'callRecording' | 'metadataLocation' | 'transcriptionLocation' | 'metadataLocationSecret' | 'transcriptionLocationSecret'>): boolean {
  if (!settings.saveMetadata && !settings.saveTranscription) return settings.callRecording;
  return (
    (settings.saveMetadata && !settings.metadataLocationSecret && settings.metadataLocation === 's3') ||
    (settings.saveTranscription && !settings.transcriptionLocationSecret && settings.transcriptionLocation === 's3')
  );
}

/** True when a location is a database URL (the spec's schemes). */
export function isDatabaseUrl(location: string): boolean {
  return /^(mongodb|mongodb\+srv|redis|rediss|postgres|postgresql|mysql|mysql\+pymysql):\/\//i.test(location);
}

/** True when a location URL carries a password, which must then live in Secrets Manager. */
export function hasPassword(location: string): boolean {
  if (!isDatabaseUrl(location) || !URL.canParse(location)) return false;
  const url = new URL(location);
  return url.password !== '' || /[?&](password|pass|pwd)=/i.test(url.search);
}

export function readSettings(source: Source): CallDataSettings {
  const problems: string[] = [];
  const label = (key: string) => `${key} (context)`;
  const raw = (key: string): string | undefined => {
    const fromContext = source.context(key);
    if (fromContext === undefined || fromContext === null) return undefined;
    if (Array.isArray(fromContext)) return fromContext.map(String).join(',');
    // A JSON object in cdk.json (e.g. priceTable) reaches the readers as its JSON text.
    if (typeof fromContext === 'object') return JSON.stringify(fromContext);
    return String(fromContext).trim();
  };
  const text = (key: string): string | undefined => raw(key) || undefined;
  // Context values as text, so the runtime's readers (functions/config/env.ts) parse them the same way.
  const context: Env = new Proxy({}, { get: (_target, key) => (typeof key === 'string' ? raw(key) : undefined) });
  const readerProblems: Problem[] = [];
  const bool = (key: string, fallback: boolean): boolean => readBoolean(context, key, fallback, readerProblems);
  const int = (key: string, fallback: number, min: number, max: number): number => readInteger(context, key, fallback, min, max, readerProblems);
  const map = (key: string, what: string): Record<string, string> => {
    const fromContext = source.context(key);
    let value: unknown = fromContext;
    if (fromContext === undefined || fromContext === null) return {};
    if (typeof fromContext === 'string') {
      const text = fromContext.trim();
      if (!text) return {};
      try {
        value = JSON.parse(text);
      } catch {
        problems.push(`${label(key)}: expected a JSON object of ${what}`);
        return {};
      }
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
      problems.push(`${label(key)}: expected a JSON object of ${what}`);
      return {};
    }
    const entries = Object.entries(value as Record<string, string>);
    for (const [name] of entries) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) problems.push(`${label(key)}: ${JSON.stringify(name)} is not a variable name`);
    return Object.fromEntries(entries);
  };
  const list = (key: string): string[] =>
    (raw(key) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);

  const localstack = bool('localstack', false);
  const persistTimeoutSeconds = int('persistTimeoutSeconds', 30, 3, 900);
  // Starting an egress may take 3 attempts of up to 30 s each (functions/recording/settings.ts).
  const recordingTimeoutSeconds = int('recordingTimeoutSeconds', 120, 3, 900);
  const settings: CallDataSettings = {
    localstack,
    callRecording: bool('callRecording', false),
    saveMetadata: bool('saveMetadata', true),
    saveTranscription: bool('saveTranscription', true),
    hangupCall: bool('hangupCall', true),
    timezone: text('timezone'),
    metadataLocation: text('metadataLocation') ?? 's3',
    transcriptionLocation: text('transcriptionLocation') ?? 's3',
    metadataLocationSecret: text('metadataLocationSecret'),
    transcriptionLocationSecret: text('transcriptionLocationSecret'),
    bucketName: text('bucketName'),
    s3Endpoint: text('s3Endpoint'),
    recordingExpirationDays: int('recordingExpirationDays', 0, 0, 36_500),
    payloadExpirationDays: int('payloadExpirationDays', 14, 1, 3_650),
    logRetentionDays: int('logRetentionDays', 30, 1, 3_653),
    maxReceiveCount: int('maxReceiveCount', 5, 1, 1_000),
    queueRetentionDays: int('queueRetentionDays', 4, 2, 14),
    persistTimeoutSeconds,
    recordingTimeoutSeconds,
    webhookTimeoutSeconds: int('webhookTimeoutSeconds', 30, 3, 900),
    visibilityTimeoutSeconds: int('visibilityTimeoutSeconds', 6 * persistTimeoutSeconds, 3, 43_200),
    recordingVisibilityTimeoutSeconds: int('recordingVisibilityTimeoutSeconds', 6 * recordingTimeoutSeconds, 3, 43_200),
    batchSize: int('batchSize', 10, 1, 10_000),
    maxBatchingWindowSeconds: int('maxBatchingWindowSeconds', 1, 0, 300),
    persistMaxConcurrency: int('persistMaxConcurrency', 10, 2, 1_000),
    recordingMaxConcurrency: int('recordingMaxConcurrency', 5, 2, 1_000),
    vpcId: text('vpcId'),
    subnetIds: list('subnetIds'),
    securityGroupIds: list('securityGroupIds'),
    // Without a LiveKit URL there is nothing for a worker to connect to: it is left out (with a
    // synth warning) unless asked for explicitly, so a bare `cdk synth` works.
    deployWorker: bool('deployWorker', !localstack && Boolean(text('livekitUrl'))),
    workerDesiredCount: int('workerDesiredCount', 1, 0, 100),
    workerCpu: int('workerCpu', 1024, 256, 16_384),
    workerMemoryMiB: int('workerMemoryMiB', 2048, 512, 122_880),
    livekitUrl: text('livekitUrl'),
    agentName: text('agentName'),
    workerEnvironment: map('workerEnvironment', 'variable names to values'),
    workerSecrets: map('workerSecrets', 'variable names to secret references'),
    livekitSecret: text('livekitSecret'),
    egressS3Secret: text('egressS3Secret'),
    alarmEmail: text('alarmEmail'),
    destroyOnDelete: bool('destroyOnDelete', localstack),
    // The runtime's own bounds (functions/config/config.ts); unset leaves the runtime's default.
    answerTimeoutMs: raw('answerTimeoutMs') ? int('answerTimeoutMs', ANSWER_TIMEOUT_BOUNDS_MS.min, ANSWER_TIMEOUT_BOUNDS_MS.min, ANSWER_TIMEOUT_BOUNDS_MS.max) : undefined,
    sweepAfterMs: raw('sweepAfterMs') ? int('sweepAfterMs', SWEEP_AFTER_BOUNDS_MS.min, SWEEP_AFTER_BOUNDS_MS.min, SWEEP_AFTER_BOUNDS_MS.max) : undefined,
    sweeperTimeoutSeconds: int('sweeperTimeoutSeconds', 120, 10, 900),
    sweepSchedule: bool('sweepSchedule', !localstack),
    priceTable: priceTableJson(readJson(context, 'priceTable', priceTableSchema, readerProblems, { what: 'a valid price table' })),
  };

  if (settings.timezone && !IANAZone.isValidZone(settings.timezone)) {
    problems.push(`${label('timezone')}: ${JSON.stringify(settings.timezone)} is not an IANA time zone (e.g. Asia/Kolkata, UTC)`);
  }
  for (const [key, secretKey] of [
    ['metadataLocation', 'metadataLocationSecret'],
    ['transcriptionLocation', 'transcriptionLocationSecret'],
  ] as const) {
    const location = settings[key];
    if (hasPassword(location)) {
      problems.push(`${label(key)}: the URL holds a password; store it in Secrets Manager and pass ${secretKey} instead (see docs/deploy.md)`);
    }
    if (location.includes('\0')) problems.push(`${label(key)}: contains a NUL character`);
  }
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(settings.logRetentionDays)) {
    problems.push(`${label('logRetentionDays')}: CloudWatch accepts ${LOG_RETENTION_DAYS.join(', ')}`);
  }
  if (settings.visibilityTimeoutSeconds < settings.persistTimeoutSeconds) {
    problems.push(`${label('visibilityTimeoutSeconds')}: must be at least persistTimeoutSeconds (${settings.persistTimeoutSeconds} s)`);
  }
  if (settings.recordingVisibilityTimeoutSeconds < settings.recordingTimeoutSeconds) {
    problems.push(`${label('recordingVisibilityTimeoutSeconds')}: must be at least recordingTimeoutSeconds (${settings.recordingTimeoutSeconds} s)`);
  }
  if (settings.bucketName && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(settings.bucketName)) {
    problems.push(`${label('bucketName')}: ${JSON.stringify(settings.bucketName)} is not a valid S3 bucket name`);
  }
  if (settings.s3Endpoint && !/^https?:\/\/./.test(settings.s3Endpoint)) problems.push(`${label('s3Endpoint')}: expected an http:// or https:// URL`);
  if (settings.vpcId && settings.subnetIds.length === 0) problems.push(`${label('subnetIds')}: required with vpcId (comma-separated private subnet ids)`);
  if (!settings.vpcId && (settings.subnetIds.length > 0 || settings.securityGroupIds.length > 0)) {
    problems.push(`${label('vpcId')}: required when subnetIds or securityGroupIds are set`);
  }
  if ((settings.callRecording || settings.deployWorker) && !settings.livekitUrl) {
    problems.push(`${label('livekitUrl')}: required when ${settings.deployWorker ? 'deployWorker' : 'callRecording'} is true (e.g. wss://my-project.livekit.cloud)`);
  } else if (settings.livekitUrl && !/^(wss?|https?):\/\/./.test(settings.livekitUrl)) {
    problems.push(`${label('livekitUrl')}: expected a ws://, wss://, http:// or https:// URL`);
  }
  for (const name of Object.keys(settings.workerEnvironment)) {
    if (/KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL/i.test(name)) {
      problems.push(`${label('workerEnvironment')}: ${name} looks like a secret; pass it in workerSecrets (a Secrets Manager reference) instead`);
    }
  }
  if (settings.priceTable && Buffer.byteLength(settings.priceTable) > PRICE_TABLE_MAX_BYTES) {
    problems.push(`${label('priceTable')}: ${Buffer.byteLength(settings.priceTable)} bytes as JSON, more than the ${PRICE_TABLE_MAX_BYTES} a function's environment can spare: keep only the models the agents use`);
  }
  if (settings.alarmEmail && !/^[^@\s]+@[^@\s]+$/.test(settings.alarmEmail)) problems.push(`${label('alarmEmail')}: not an e-mail address`);
  if (settings.workerCpu && ![256, 512, 1024, 2048, 4096, 8192, 16384].includes(settings.workerCpu)) {
    problems.push(`${label('workerCpu')}: Fargate accepts 256, 512, 1024, 2048, 4096, 8192 or 16384`);
  }
  problems.unshift(...readerProblems.map((p) => `${label(p.variable)}: ${p.message}`));
  if (problems.length > 0) throw new SettingsError(problems);
  return settings;
}

/** The table as the functions get it: compact JSON, whether context gave it inline, as an object or as a file. */
function priceTableJson(table: unknown): string | undefined {
  return table === undefined ? undefined : JSON.stringify(table);
}
