/**
 * What the recording function needs from the configuration: LiveKit's URL and credentials
 * (checked by requireLivekit, functions/config/livekit.ts, when egress is first asked) and the
 * egress timing. Nothing here reads the environment: it all comes from the one `Config`.
 */
import type { Config, LivekitSettings, RecordingTiming } from '../config/config.ts';

/** Key prefix of the per-call marker objects in the recordings bucket (state.ts). */
export const RECORDING_STATE_PREFIX = '_calldata-recordings';

export interface RecordingSettings extends RecordingTiming {
  /** LiveKit's server (the egress API lives there) and API credentials. */
  livekit: LivekitSettings;
}

export function recordingSettings(config: Pick<Config, 'livekit' | 'recordingTiming'>): RecordingSettings {
  return { ...config.recordingTiming, livekit: config.livekit };
}
