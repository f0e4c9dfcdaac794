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

const REGION = '[a-z]{2}(?:-[a-z]+)+-\\d+';
/** Where a queue URL carries its region: AWS's host, the legacy host, LocalStack's path (`/queue/<region>/<account>/<name>`). */
const REGION_IN_URL: readonly { part: 'hostname' | 'pathname'; pattern: RegExp }[] = [
  { part: 'hostname', pattern: new RegExp(`^sqs\\.(${REGION})\\.`) },
  { part: 'hostname', pattern: new RegExp(`^(${REGION})\\.queue\\.amazonaws\\.com$`) },
  { part: 'pathname', pattern: new RegExp(`^/queue/(${REGION})/`) },
];

/**
 * The region an SQS queue URL names: `https://sqs.<region>.amazonaws.com/<account>/<name>`
 * (also `.amazonaws.com.cn` and LocalStack's `sqs.<region>.localhost.localstack.cloud`), the
 * legacy `<region>.queue.amazonaws.com`, or LocalStack's `http://localhost:4566/queue/<region>/…`;
 * undefined when it names none (`http://localhost:4566/<account>/<name>`).
 */
export function queueRegion(queueUrl: string): string | undefined {
  if (!URL.canParse(queueUrl)) return undefined;
  const url = new URL(queueUrl);
  for (const { part, pattern } of REGION_IN_URL) {
    const region = pattern.exec(url[part])?.[1];
    if (region) return region;
  }
  return undefined;
}
