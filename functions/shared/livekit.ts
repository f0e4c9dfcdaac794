/**
 * LiveKit's room service as the sweeper and `calldata doctor --probe` ask it: a RoomServiceClient
 * with a short request timeout, over the credentials functions/config/livekit.ts checked. The
 * SDK is loaded only when a lister is made.
 */
import type { Room } from 'livekit-server-sdk';
import type { LivekitAccess } from '../config/livekit.ts';

/** What is asked of LiveKit's RoomServiceClient: the rooms that exist, by name. */
export interface RoomLister {
  listRooms(names?: string[]): Promise<Room[]>;
}

/** Seconds one ListRooms request may take. */
const REQUEST_TIMEOUT_SECONDS = 10;

export async function roomLister(access: LivekitAccess): Promise<RoomLister> {
  const { RoomServiceClient } = await import('livekit-server-sdk');
  const client = new RoomServiceClient(access.url.replace(/^ws/, 'http'), access.apiKey, access.apiSecret, { requestTimeout: REQUEST_TIMEOUT_SECONDS });
  return { listRooms: (names) => client.listRooms(names) };
}
