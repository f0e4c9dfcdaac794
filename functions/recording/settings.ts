/**
 * What the recording and webhook functions need from the configuration: LiveKit's URL and
 * credentials (the API secret may arrive through `LIVEKIT_API_SECRET_SECRET_ARN`, resolved by
 * the secretsFromEnv middleware before the configuration is read) and the egress timing.
 * Nothing here reads the environment: it all comes from the one `Config`.
 */
import type { Config, RecordingTiming } from '../config/config.ts';
import { RecordingConfigError } from './errors.ts';

/** Key prefix of the per-call marker objects in the recordings bucket (state.ts). */
export const RECORDING_STATE_PREFIX = '_calldata-recordings';

export interface RecordingSettings extends RecordingTiming {
  /** LiveKit server URL (ws(s):// or http(s)://); the egress API lives there. */
  livekitUrl?: string;
  apiKey?: string;
  apiSecret?: string;
}

export function recordingSettings(config: Pick<Config, 'livekit' | 'recordingTiming'>): RecordingSettings {
  return { ...config.recordingTiming, livekitUrl: config.livekit.url, apiKey: config.livekit.apiKey, apiSecret: config.livekit.apiSecret };
}

/** The three LiveKit credentials, or an error naming the first one missing. */
export function requireLivekit(settings: RecordingSettings): { url: string; apiKey: string; apiSecret: string } {
  if (!settings.livekitUrl) throw new RecordingConfigError('LIVEKIT_URL', 'is required to start and stop recordings');
  if (!settings.apiKey) throw new RecordingConfigError('LIVEKIT_API_KEY', 'is required to start and stop recordings');
  if (!settings.apiSecret) throw new RecordingConfigError('LIVEKIT_API_SECRET', 'is required to start and stop recordings (or LIVEKIT_API_SECRET_SECRET_ARN)');
  return { url: settings.livekitUrl, apiKey: settings.apiKey, apiSecret: settings.apiSecret };
}
