/**
 * Claim-check for long calls: a conversation too large for one SQS message is put in S3
 * and the message carries its bucket, key, size and checksum instead.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, NoSuchKey } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import * as z from 'zod';
import type { S3Settings } from '../config/config.ts';
import { conversationItemSchema, withItemIds, type ConversationItem } from '../contract/facts.ts';
import type { ConversationRef } from '../contract/snapshot.ts';
import { s3Client } from '../shared/s3-client.ts';
import { PayloadError, SendFailedError } from './errors.ts';

/** Offloaded payloads live under this prefix; the stack expires it with a lifecycle rule. */
export const PAYLOAD_PREFIX = '_calldata-payloads';

export async function offloadConversation(
  settings: S3Settings,
  callId: string,
  /** Names this version of the payload (writer and sequence). */
  version: string,
  conversation: readonly ConversationItem[],
): Promise<ConversationRef> {
  const bucket = settings.bucket;
  if (!bucket) throw new SendFailedError('conversation too large for one message and no bucket is set (AWS_S3_BUCKET or MINIO_BUCKET)');
  const body = Buffer.from(JSON.stringify(conversation), 'utf8');
  const key = `${PAYLOAD_PREFIX}/${callId}/${version.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`;
  try {
    // lib-storage streams the body and switches to multipart for large payloads.
    await new Upload({
      client: s3Client(settings),
      params: { Bucket: bucket, Key: key, Body: Readable.from([body]), ContentType: 'application/json' },
    }).done();
  } catch (cause) {
    throw new SendFailedError('could not store the conversation payload', cause);
  }
  return { bucket, key, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex'), items: conversation.length };
}

/** Version-1 payloads still in S3 carry items without ids: those get derived ones. */
const conversationSchema = z.array(conversationItemSchema.extend({ id: conversationItemSchema.shape.id.optional() }));

export async function loadConversation(settings: S3Settings, ref: ConversationRef): Promise<ConversationItem[]> {
  let body: Uint8Array;
  try {
    const response = await s3Client(settings).send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    if (!response.Body) throw new PayloadError('conversation payload has no body', false);
    body = await response.Body.transformToByteArray();
  } catch (cause) {
    if (cause instanceof PayloadError) throw cause;
    const missing = cause instanceof NoSuchKey || (cause as { name?: string }).name === 'NoSuchKey';
    throw new PayloadError(missing ? 'conversation payload is missing' : 'could not read the conversation payload', !missing, cause);
  }
  const digest = createHash('sha256').update(body).digest('hex');
  if (digest !== ref.sha256 || body.length !== ref.bytes) throw new PayloadError('conversation payload does not match its checksum', false);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (cause) {
    throw new PayloadError('conversation payload is not JSON', false, cause);
  }
  const parsed = conversationSchema.safeParse(value);
  if (!parsed.success) throw new PayloadError('conversation payload does not match the schema', false);
  return withItemIds(parsed.data);
}
