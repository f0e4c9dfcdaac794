/**
 * LiveKit webhook Lambda behind a function URL or API Gateway (REST v1 or HTTP v2 events).
 * Every request must carry LiveKit's signed Authorization header (a JWT from the API key
 * whose sha256 claim matches the body); anything else is rejected with 401 before parsing.
 *
 * A verified event becomes facts (functions/domain/webhook-facts.ts: room_finished,
 * participant_left of the SIP participant, egress_started / _updated / _ended) sent through
 * the pipeline's fact sink, like every other party's; this function writes no storage.
 *
 * 503 asks LiveKit to deliver again (the fact sink did not accept the message); 4xx never retries.
 */
import { createHash } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { WebhookReceiver, type WebhookEvent } from 'livekit-server-sdk';
import { getConfig } from '../config/config.ts';
import { requireLivekitCredentials } from '../config/livekit.ts';
import { webhookFacts } from '../domain/webhook-facts.ts';
import { lambdaHandler } from '../shared/lambda.ts';
import { logger } from '../shared/logger.ts';
import type { FactSink } from '../transport/sink.ts';
import { pipelineFor } from '../wiring.ts';

export type WebhookHttpEvent = Pick<APIGatewayProxyEventV2, 'headers' | 'body' | 'isBase64Encoded'> | Pick<APIGatewayProxyEvent, 'headers' | 'body' | 'isBase64Encoded'>;
export type WebhookResponse = APIGatewayProxyStructuredResultV2 & { statusCode: number; body: string };

export interface WebhookDeps {
  receiver: Pick<WebhookReceiver, 'receive'>;
  /** Where the facts go (the pipeline's fact sink). */
  facts: () => Promise<Pick<FactSink, 'send'>>;
  now?: () => number;
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

/** The verified event and its body, or a response saying why the request was refused. */
async function verify(event: WebhookHttpEvent, receiver: WebhookDeps['receiver']): Promise<{ webhook: WebhookEvent; body: string } | WebhookResponse> {
  const raw = event.body ?? '';
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  const authorization = header(event.headers, 'authorization')?.replace(/^Bearer\s+/i, '');
  if (!authorization) return reply(401, { error: 'missing signature' });
  try {
    return { webhook: await receiver.receive(body, authorization), body };
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
  const { webhook, body } = verified;
  const bodyHash = createHash('sha256').update(body, 'utf8').digest('hex');
  const mapped = webhookFacts(webhook, { nowMs: (deps.now ?? Date.now)(), bodyHash });
  if (mapped.kind === 'ignored') {
    logger.info('webhook event ignored', { event: webhook.event, webhookId: webhook.id, reason: mapped.reason });
    return reply(200, { event: webhook.event, result: 'ignored' });
  }
  const { message } = mapped;
  try {
    await (await deps.facts()).send(message);
  } catch (error) {
    const retryable = (error as { retryable?: unknown })?.retryable === true;
    logger.error('webhook facts not accepted', { event: webhook.event, webhookId: webhook.id, callId: message.callId, retryable, error: error as Error });
    return reply(retryable ? 503 : 500, { error: retryable ? 'temporarily unavailable; deliver again' : 'not handled' });
  }
  logger.info('webhook facts sent', { event: webhook.event, webhookId: webhook.id, callId: message.callId, writer: message.writer });
  return reply(200, { event: webhook.event, result: 'recorded', callId: message.callId });
}

let deps: WebhookDeps | undefined;

function productionDeps(): WebhookDeps {
  if (deps) return deps;
  const { apiKey, apiSecret } = requireLivekitCredentials(getConfig(), 'verify webhooks');
  deps = {
    receiver: new WebhookReceiver(apiKey, apiSecret),
    facts: () => pipelineFor(getConfig()).factSink(),
  };
  return deps;
}

export function resetWebhookForTests(): void {
  deps = undefined;
}

export const handler = lambdaHandler((event: WebhookHttpEvent, _context: Context) => handleWebhook(event, productionDeps()));
