/**
 * LiveKit as the sweeper asks it: the server URL and API credentials of the configuration
 * (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET; on Lambda the secrets arrive through
 * `<VAR>_SECRET_ARN`, resolved before the handler runs), and a RoomServiceClient with a short
 * request timeout. The SDK is loaded only when a sweep asks.
 */
import type { LivekitSettings } from '../config/config.ts';
import type { RoomLister } from './sweep.ts';

export interface LivekitAccess {
  url: string;
  apiKey: string;
  apiSecret: string;
}

/** The credentials, or the first variable that is missing or malformed. */
export function livekitAccess(livekit: LivekitSettings): LivekitAccess | { missing: string } {
  const { url, apiKey, apiSecret } = livekit;
  if (!url) return { missing: 'LIVEKIT_URL' };
  if (!apiKey) return { missing: 'LIVEKIT_API_KEY' };
  if (!apiSecret) return { missing: 'LIVEKIT_API_SECRET' };
  return { url, apiKey, apiSecret };
}

/** Seconds one ListRooms request may take. */
const REQUEST_TIMEOUT_SECONDS = 10;

export async function roomLister(access: LivekitAccess): Promise<RoomLister> {
  const { RoomServiceClient } = await import('livekit-server-sdk');
  const client = new RoomServiceClient(access.url.replace(/^ws/, 'http'), access.apiKey, access.apiSecret, { requestTimeout: REQUEST_TIMEOUT_SECONDS });
  return { listRooms: (names) => client.listRooms(names) };
}
