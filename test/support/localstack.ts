/** Helpers for tests that use LocalStack's S3 and SQS. */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { S3Settings } from '../../functions/config/config.ts';
import { LOCALSTACK_CREDENTIALS, requireServer } from './servers.ts';

export async function localstackEndpoint(): Promise<string> {
  return requireServer('localstack');
}

/** Points the AWS SDK at LocalStack for code that builds its own clients from the environment. */
export function useLocalstackEnv(endpoint: string): void {
  process.env.AWS_ENDPOINT_URL = endpoint;
  // LocalStack names its queues by LOCALSTACK_HOST (localhost); match it to keep the SDK from warning.
  process.env.AWS_ENDPOINT_URL_SQS = endpoint.replace('127.0.0.1', 'localhost');
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = LOCALSTACK_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = LOCALSTACK_CREDENTIALS.secretAccessKey;
}

export function s3SettingsFor(endpoint: string, bucket: string): S3Settings {
  return { bucket, endpoint, region: 'us-east-1', forcePathStyle: true, ...LOCALSTACK_CREDENTIALS };
}

export async function createBucket(endpoint: string, prefix = 'calldata-test'): Promise<string> {
  const bucket = `${prefix}-${randomUUID().slice(0, 8)}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return bucket;
}

export function sqsFor(endpoint: string): SQSClient {
  return new SQSClient({ endpoint: endpoint.replace('127.0.0.1', 'localhost'), region: 'us-east-1', credentials: LOCALSTACK_CREDENTIALS });
}

/** A queue with a dead-letter queue after `maxReceiveCount` receives. */
export async function createQueuePair(endpoint: string, maxReceiveCount = 3): Promise<{ queueUrl: string; dlqUrl: string }> {
  const sqs = sqsFor(endpoint);
  const id = randomUUID().slice(0, 8);
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `calldata-dlq-${id}` }));
  const dlqUrl = dlq.QueueUrl ?? '';
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `calldata-snapshots-${id}`,
      Attributes: {
        VisibilityTimeout: '2',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: attrs.Attributes?.QueueArn, maxReceiveCount }),
      },
    }),
  );
  sqs.destroy();
  return { queueUrl: queue.QueueUrl ?? '', dlqUrl };
}

/**
 * The environment the stack gives the Lambdas, pointed at LocalStack and local folders:
 * metadata and transcripts on, stored under `folder`, S3 settings for `bucket`.
 */
export function pipelineEnv(options: { folder: string; bucket: string; endpoint: string; timezone: string; queueUrl: string }, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SAVE_METADATA: 'true',
    SAVE_TRANSCRIPTION: 'true',
    TIMEZONE: options.timezone,
    METADATA_LOCATION: join(options.folder, 'Call_Metadata'),
    TRANSCRIPTION_LOCATION: join(options.folder, 'Transcriptions'),
    AWS_S3_BUCKET: options.bucket,
    AWS_S3_ENDPOINT: options.endpoint,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_S3_ACCESS_KEY_ID: LOCALSTACK_CREDENTIALS.accessKeyId,
    AWS_S3_SECRET_ACCESS_KEY: LOCALSTACK_CREDENTIALS.secretAccessKey,
    CALLDATA_QUEUE_URL: options.queueUrl,
    ...extra,
  };
}

/** Replaces the process's pipeline variables with `env` (tests share one process per file). */
export function replacePipelineEnv(env: Record<string, string>): void {
  for (const key of Object.keys(process.env)) {
    if (/^(SAVE_|METADATA_|TRANSCRIPTION_|CALLDATA_|AWS_S3_|CALL_RECORDING|HANGUP_CALL|TIMEZONE)/.test(key)) delete process.env[key];
  }
  Object.assign(process.env, env);
}
