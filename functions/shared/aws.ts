/** Both AWS clients; import s3-client.ts or sqs-client.ts directly to load only one SDK. */
export { s3Client } from './s3-client.ts';
export { sqsClient } from './sqs-client.ts';
