/**
 * The one check of LiveKit's URL and API credentials, for everything that talks to LiveKit: the
 * recording function (egress), the webhook function (signatures), the sweeper (rooms), the
 * worker's start checks and doctor. On Lambda the key and secret may arrive through
 * `<VAR>_SECRET_ARN` (resolved before the configuration is read), hence the hint.
 */
import type { Config, LivekitSettings } from './config.ts';
import { ConfigError } from './errors.ts';

export type LivekitVariable = 'LIVEKIT_URL' | 'LIVEKIT_API_KEY' | 'LIVEKIT_API_SECRET';

export interface LivekitAccess {
  url: string;
  apiKey: string;
  apiSecret: string;
}
export type LivekitCredentials = Omit<LivekitAccess, 'url'>;

/** The LiveKit variables that are unset, in the order a user sets them (the URL only when `needsUrl`). */
export function missingLivekit(livekit: LivekitSettings, needsUrl = true): LivekitVariable[] {
  const missing: LivekitVariable[] = [];
  if (needsUrl && !livekit.url) missing.push('LIVEKIT_URL');
  if (!livekit.apiKey) missing.push('LIVEKIT_API_KEY');
  if (!livekit.apiSecret) missing.push('LIVEKIT_API_SECRET');
  return missing;
}

function fail(missing: readonly LivekitVariable[], purpose: string): never {
  throw new ConfigError(
    missing.map((variable) => ({
      variable,
      message: `is required to ${purpose}${variable === 'LIVEKIT_URL' ? '' : ` (or ${variable}_SECRET_ARN on Lambda)`}`,
    })),
  );
}

/** LiveKit's URL, API key and secret, or a ConfigError naming each one missing and what needs it. */
export function requireLivekit(config: Pick<Config, 'livekit'>, purpose: string): LivekitAccess {
  const { url, apiKey, apiSecret } = config.livekit;
  if (url && apiKey && apiSecret) return { url, apiKey, apiSecret };
  fail(missingLivekit(config.livekit), purpose);
}

/** The API key and secret alone (verifying LiveKit's webhook signatures needs no URL). */
export function requireLivekitCredentials(config: Pick<Config, 'livekit'>, purpose: string): LivekitCredentials {
  const { apiKey, apiSecret } = config.livekit;
  if (apiKey && apiSecret) return { apiKey, apiSecret };
  fail(missingLivekit(config.livekit, false), purpose);
}
