/**
 * LiveKit and egress settings of the recording and webhook functions, read from the
 * environment once per process. The API secret may arrive through
 * `LIVEKIT_API_SECRET_SECRET_ARN` (resolved by the secretsFromEnv middleware first).
 */
import type { Env } from '../config/config.ts';
import { readInteger, type Problem } from '../config/env.ts';
import { RecordingConfigError } from './errors.ts';

export interface RecordingSettings {
  /** LiveKit server URL (ws(s):// or http(s)://); the egress API lives there. */
  livekitUrl?: string;
  apiKey?: string;
  apiSecret?: string;
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
  /** Key prefix of the per-call marker objects in the recordings bucket (state.ts). */
  statePrefix: string;
}

function integer(env: Env, variable: string, fallback: number, min: number, max: number): number {
  const problems: Problem[] = [];
  const value = readInteger(env, variable, fallback, min, max, problems);
  const [problem] = problems;
  if (problem) throw new RecordingConfigError(problem.variable, problem.message);
  return value;
}

export function loadRecordingSettings(env: Env = process.env): RecordingSettings {
  const livekitUrl = env.LIVEKIT_URL?.trim() || undefined;
  if (livekitUrl && !URL.canParse(livekitUrl)) throw new RecordingConfigError('LIVEKIT_URL', 'expected a URL');
  const statePrefix = (env.CALLDATA_RECORDING_STATE_PREFIX?.trim() || '_calldata-recordings').replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9_.\-/]{1,200}$/.test(statePrefix) || statePrefix.split('/').some((p) => p === '..' || p === '.' || p === '')) {
    throw new RecordingConfigError('CALLDATA_RECORDING_STATE_PREFIX', 'expected a plain S3 key prefix');
  }
  return {
    livekitUrl,
    apiKey: env.LIVEKIT_API_KEY?.trim() || undefined,
    apiSecret: env.LIVEKIT_API_SECRET?.trim() || undefined,
    egressAttempts: integer(env, 'CALLDATA_EGRESS_ATTEMPTS', 3, 1, 10),
    egressTimeoutMs: integer(env, 'CALLDATA_EGRESS_TIMEOUT_MS', 30_000, 500, 120_000),
    egressBackoffMs: integer(env, 'CALLDATA_EGRESS_BACKOFF_MS', 1_000, 0, 60_000),
    discardWaitMs: integer(env, 'CALLDATA_DISCARD_WAIT_MS', 15_000, 0, 300_000),
    discardPollMs: integer(env, 'CALLDATA_DISCARD_POLL_MS', 500, 50, 10_000),
    statePrefix,
  };
}

let cached: RecordingSettings | undefined;

export function getRecordingSettings(): RecordingSettings {
  cached ??= loadRecordingSettings();
  return cached;
}

export function resetRecordingSettingsForTests(): void {
  cached = undefined;
}

/** The three LiveKit credentials, or an error naming the first one missing. */
export function requireLivekit(settings: RecordingSettings): { url: string; apiKey: string; apiSecret: string } {
  if (!settings.livekitUrl) throw new RecordingConfigError('LIVEKIT_URL', 'is required to start and stop recordings');
  if (!settings.apiKey) throw new RecordingConfigError('LIVEKIT_API_KEY', 'is required to start and stop recordings');
  if (!settings.apiSecret) throw new RecordingConfigError('LIVEKIT_API_SECRET', 'is required to start and stop recordings (or LIVEKIT_API_SECRET_SECRET_ARN)');
  return { url: settings.livekitUrl, apiKey: settings.apiKey, apiSecret: settings.apiSecret };
}
