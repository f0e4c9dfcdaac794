/**
 * The SQS client, created once per process when first needed. Region, credentials and
 * endpoint (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SQS for LocalStack) come from the SDK's
 * standard environment; retries are the SDK's own.
 */
import { SQSClient } from '@aws-sdk/client-sqs';

let sqs: SQSClient | undefined;

export function sqsClient(): SQSClient {
  sqs ??= new SQSClient({ maxAttempts: 3 });
  return sqs;
}
