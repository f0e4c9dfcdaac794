/**
 * Outbound calls: when the job metadata names a number (and trunk), the agent dials it with
 * LiveKit's SipClient and waits until it is answered; a SIP failure (busy, declined, no
 * answer, 5xx) is reported to the capture, which records the call as unanswered.
 */
import { SipClient, type SIPParticipantInfo } from 'livekit-server-sdk';
import { getConfig } from '../functions/config/config.ts';
import { redactPhone } from '../functions/shared/redact.ts';
import { logger } from '../functions/shared/logger.ts';
import type { CallDataCapture } from './capture.ts';
import type { JobHints } from './call-info.ts';

export interface DialApi {
  createSipParticipant(
    sipTrunkId: string,
    number: string,
    roomName: string,
    opts?: { participantIdentity?: string; waitUntilAnswered?: boolean; ringingTimeout?: number; fromNumber?: string },
  ): Promise<SIPParticipantInfo>;
}

export interface DialOptions {
  hints: JobHints;
  roomName: string;
  capture?: CallDataCapture;
  /** Defaults to a SipClient for the configuration's LiveKit (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET). */
  api?: DialApi;
  ringingTimeoutS?: number;
  identity?: string;
}

export type DialResult = { dialed: false } | { dialed: true; answered: true; participantIdentity: string } | { dialed: true; answered: false; sipStatusCode?: number };

function sipStatusOf(error: unknown): number | undefined {
  const direct = (error as { sipStatusCode?: unknown }).sipStatusCode;
  if (typeof direct === 'number') return direct;
  const meta = (error as { metadata?: Record<string, string> }).metadata?.sip_status_code;
  const parsed = meta === undefined ? Number.NaN : Number(meta);
  return Number.isFinite(parsed) ? parsed : undefined;
}

function defaultDialApi(): DialApi {
  const { url, apiKey, apiSecret } = getConfig().livekit;
  return new SipClient((url ?? '').replace(/^ws/, 'http'), apiKey, apiSecret) as unknown as DialApi;
}

export async function dialIfOutbound(options: DialOptions): Promise<DialResult> {
  const { hints } = options;
  if (!hints.phoneNumber || !hints.outboundTrunkId) return { dialed: false };
  const api = options.api ?? defaultDialApi();
  const identity = options.identity ?? `sip_${hints.phoneNumber.replace(/[^0-9+]/g, '')}`;
  logger.info('dialing outbound call', { callId: options.capture?.callId, userNumber: redactPhone(hints.phoneNumber) });
  try {
    await api.createSipParticipant(hints.outboundTrunkId, hints.phoneNumber, options.roomName, {
      participantIdentity: identity,
      waitUntilAnswered: true,
      ringingTimeout: options.ringingTimeoutS,
      fromNumber: hints.agentNumber,
    });
    return { dialed: true, answered: true, participantIdentity: identity };
  } catch (error) {
    const sipStatusCode = sipStatusOf(error);
    const detail = `outbound dial failed${sipStatusCode ? ` with SIP ${sipStatusCode}` : ''}: ${(error as Error).message ?? 'unknown error'}`.slice(0, 400);
    logger.warn('outbound call not answered', { callId: options.capture?.callId, sipStatusCode });
    options.capture?.dialFailed(sipStatusCode, detail);
    return { dialed: true, answered: false, sipStatusCode };
  }
}
