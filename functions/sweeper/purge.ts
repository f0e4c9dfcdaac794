/**
 * The purge of discarded recordings: a never-answered call's recording is moved to
 * `_calldata-discarded/` in the recordings bucket (functions/domain/recording-plan.ts) and kept
 * there DISCARD_HOLD_MS, longer than any queue keeps a message, so a late answer fact can still
 * restore it. The stack also expires the prefix with a lifecycle rule; this purge does the same on
 * stores without lifecycle rules (MinIO without ILM, the embedded default).
 */
import { DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3Settings } from '../config/config.ts';
import { DISCARD_LIST_PREFIX, expiredDiscards } from '../domain/sweep.ts';
import { CallDataError } from '../errors.ts';
import { s3Client } from '../shared/s3-client.ts';

/** Listing pages per purge (1 000 keys each); what is left waits for the next sweep. */
const MAX_PAGES = 20;

/** Deletes the expired discarded recordings of the bucket; returns how many were deleted. */
export async function purgeDiscarded(settings: S3Settings, nowMs: number): Promise<number> {
  const bucket = settings.bucket;
  if (!bucket) return 0;
  const client = s3Client(settings);
  let token: string | undefined;
  let deleted = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: DISCARD_LIST_PREFIX, ContinuationToken: token }));
    const keys = expiredDiscards(
      (listed.Contents ?? []).map((o) => ({ key: o.Key ?? '', lastModifiedMs: o.LastModified?.getTime() })),
      nowMs,
    );
    if (keys.length > 0) {
      const result = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
      const errors = result.Errors ?? [];
      if (errors.length > 0) throw new CallDataError(`${errors.length} discarded recordings could not be deleted (${errors[0]?.Code ?? 'error'}: ${errors[0]?.Message ?? ''})`, { retryable: true });
      deleted += keys.length;
    }
    if (!listed.IsTruncated || !listed.NextContinuationToken) break;
    token = listed.NextContinuationToken;
  }
  return deleted;
}
