/**
 * LiveKit webhook Lambda behind a function URL or API Gateway (REST v1 or HTTP v2 events).
 * Every request must carry LiveKit's signed Authorization header (a JWT from the API key
 * whose sha256 claim matches the body); anything else is rejected with 401 before parsing.
 *
 *   room_finished  finalize calls still open      egress_ended  record the recording outcome
 *   anything else  acknowledged and ignored
 *
 * 503 asks LiveKit to deliver again (storage temporarily unavailable); 4xx never retries.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { WebhookReceiver, type WebhookEvent } from 'livekit-server-sdk';
import { getConfig } from '../config/config.ts';
import { createRecorder } from '../recording/handler.ts';
import { isRetryable } from '../recording/recorder.ts';
import { getRecordingSettings } from '../recording/settings.ts';
import { lambdaHandler } from '../shared/lambda.ts';
import { logger } from '../shared/logger.ts';
import { CallFinalizer } from './finalize.ts';

export type WebhookHttpEvent = Pick<APIGatewayProxyEventV2, 'headers' | 'body' | 'isBase64Encoded'> | Pick<APIGatewayProxyEvent, 'headers' | 'body' | 'isBase64Encoded'>;
export type WebhookResponse = APIGatewayProxyStructuredResultV2 & { statusCode: number; body: string };

export interface WebhookDeps {
  receiver: Pick<WebhookReceiver, 'receive'>;
  finalizer: Pick<CallFinalizer, 'roomFinished' | 'egressEnded'>;
}

function reply(statusCode: number, body: Record<string, unknown>): WebhookResponse {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

function header(headers: Record<string, string | undefined> | null | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/** The verified event, or a response saying why the request was refused. */
async function verify(event: WebhookHttpEvent, receiver: WebhookDeps['receiver']): Promise<WebhookEvent | WebhookResponse> {
  const raw = event.body ?? '';
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  const authorization = header(event.headers, 'authorization')?.replace(/^Bearer\s+/i, '');
  if (!authorization) return reply(401, { error: 'missing signature' });
  try {
    return await receiver.receive(body, authorization);
  } catch (error) {
    // The receiver verifies the token and the body checksum before parsing, so a parse error
    // (SyntaxError, protobuf "cannot decode") means a correctly signed but malformed body.
    if (error instanceof SyntaxError || /cannot decode/i.test((error as Error).message ?? '')) return reply(400, { error: 'invalid body' });
    return reply(401, { error: 'invalid signature' });
  }
}

export async function handleWebhook(event: WebhookHttpEvent, deps: WebhookDeps): Promise<WebhookResponse> {
  const verified = await verify(event, deps.receiver);
  if ('statusCode' in verified) {
    logger.warn('webhook rejected', { status: verified.statusCode, reason: verified.body });
    return verified;
  }
  const webhook = verified;
  try {
    switch (webhook.event) {
      case 'room_finished': {
        const room = webhook.room;
        if (!room?.sid) return reply(400, { error: 'room_finished without room' });
        const createdAtMs = Number(webhook.createdAt ?? 0n) * 1000;
        const result = await deps.finalizer.roomFinished({ sid: room.sid, name: room.name, finishedAtMs: createdAtMs > 0 ? createdAtMs : Date.now() });
        logger.info('room_finished handled', { callId: room.sid, result, webhookId: webhook.id });
        return reply(200, { event: webhook.event, result });
      }
      case 'egress_ended': {
        if (!webhook.egressInfo) return reply(400, { error: 'egress_ended without egressInfo' });
        const result = await deps.finalizer.egressEnded(webhook.egressInfo);
        logger.info('egress_ended handled', { callId: webhook.egressInfo.roomId, egressId: webhook.egressInfo.egressId, result, webhookId: webhook.id });
        return reply(200, { event: webhook.event, result });
      }
      default:
        return reply(200, { event: webhook.event, result: 'ignored' });
    }
  } catch (error) {
    const retryable = isRetryable(error) || (error as { retryable?: boolean }).retryable === true;
    logger.error('webhook event not handled', { event: webhook.event, webhookId: webhook.id, retryable, error: error as Error });
    return reply(retryable ? 503 : 500, { error: retryable ? 'temporarily unavailable; deliver again' : 'not handled' });
  }
}

let deps: WebhookDeps | undefined;

function productionDeps(): WebhookDeps {
  if (deps) return deps;
  const settings = getRecordingSettings();
  if (!settings.apiKey || !settings.apiSecret) {
    throw new Error('LIVEKIT_API_KEY and LIVEKIT_API_SECRET (or LIVEKIT_API_SECRET_SECRET_ARN) are required to verify webhooks');
  }
  const config = getConfig();
  deps = {
    receiver: new WebhookReceiver(settings.apiKey, settings.apiSecret),
    finalizer: new CallFinalizer(createRecorder(config, settings), config),
  };
  return deps;
}

export function resetWebhookForTests(): void {
  deps = undefined;
}

export const handler = lambdaHandler((event: WebhookHttpEvent, _context: Context) => handleWebhook(event, productionDeps()));
