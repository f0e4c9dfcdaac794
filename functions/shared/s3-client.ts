/**
 * The S3 client, created once per process per settings and only when first needed. Retries
 * are the SDK's own (standard mode); the endpoint comes from AWS_S3_ENDPOINT (MinIO, LocalStack).
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../config/config.ts';

const s3Clients = new Map<string, S3Client>();

export function s3Client(settings: S3Settings): S3Client {
  const key = JSON.stringify([settings.endpoint, settings.region, settings.forcePathStyle, settings.accessKeyId]);
  let client = s3Clients.get(key);
  if (!client) {
    client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      // Keys are optional: on Lambda and ECS the execution role supplies credentials.
      ...(settings.accessKeyId && settings.secretAccessKey
        ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } }
        : {}),
      maxAttempts: 3,
    });
    s3Clients.set(key, client);
  }
  return client;
}
