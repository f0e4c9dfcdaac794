/**
 * `calldata doctor --probe`: one cheap request to everything the configuration points at —
 * each storage location (a read of a call id that cannot exist, through the same backend the
 * pipeline uses), the queues (GetQueueAttributes), the bucket (HeadBucket) and LiveKit
 * (RoomService ListRooms) — each reported as ok or the exact error. Nothing is written.
 */
import type { Config } from '../../config/config.ts';
import { first, type Env } from '../../config/env.ts';
import { ConfigError } from '../../config/errors.ts';
import { requireLivekit } from '../../config/livekit.ts';
import { CallDataError } from '../../errors.ts';
import { recordModel } from '../../domain/model.ts';
import { locationPlan } from '../../domain/persist.ts';
import { backendFor } from '../../storage/select.ts';
import { describeError } from '../errors.ts';
import { shownLocation } from '../../query/reader.ts';

export interface ProbeResult {
  /** What was probed: `location`, `queue`, `bucket`, `livekit`. */
  kind: 'location' | 'queue' | 'bucket' | 'livekit';
  /** The variable that names it. */
  variable: string;
  /** Where (no credentials). */
  target: string;
  ok: boolean;
  error?: string;
  ms: number;
}

/** A probe that has not answered by then is reported as timed out. */
export const PROBE_TIMEOUT_MS = 10_000;

/** A probe that did not answer in time; the server may only be slow, so trying again may help. */
export class ProbeTimeoutError extends CallDataError {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs / 1000} s`, { retryable: true });
  }
}

/** A call id no backend can hold (ids are room SIDs or `sim-…`), so the read finds nothing and writes nothing. */
const PROBE_CALL_ID = 'calldata-doctor-probe';

interface Probe {
  kind: ProbeResult['kind'];
  variable: string;
  target: string;
  run: () => Promise<unknown>;
}

/** The locations the configuration uses: those the persist step writes, else the one the CLI reads. */
function locations(config: Config): { variable: string; location: string }[] {
  const planned = locationPlan(config).map((p) => p.location);
  const all = planned.length > 0 ? planned : [config.metadataLocation];
  const variableOf = (location: string) =>
    location === config.metadataLocation ? 'METADATA_LOCATION' : location === config.transcriptionLocation ? 'TRANSCRIPTION_LOCATION' : 'CALL_RECORDING';
  return [...new Set(all)].map((location) => ({ location, variable: variableOf(location) }));
}

export function probesFor(config: Config, env: Env = process.env): Probe[] {
  const probes: Probe[] = [];
  const model = recordModel(config.timezone);
  for (const { variable, location } of locations(config)) {
    probes.push({
      kind: 'location',
      variable,
      target: location === 's3' ? `s3 (bucket ${config.s3.bucket ?? 'unset'})` : shownLocation(location),
      run: async () => (await backendFor(location, { s3: config.s3, documents: [], model })).read(PROBE_CALL_ID),
    });
  }
  for (const [variable, url] of [
    ['CALLDATA_QUEUE_URL', config.queueUrl],
    ['CALLDATA_RECORDING_QUEUE_URL', config.recordingQueueUrl],
    ['CALLDATA_DEAD_LETTER_QUEUE_URL', config.deadLetterQueueUrl],
  ] as const) {
    if (!url) continue;
    probes.push({
      kind: 'queue',
      variable,
      target: url,
      run: async () => {
        const [{ GetQueueAttributesCommand, SQSClient }, { queueRegion, sqsClient }] = await Promise.all([import('@aws-sdk/client-sqs'), import('../../shared/sqs-client.ts')]);
        // The SDK reads AWS_REGION; without it, the region the queue URL names is the queue's own.
        const region = env.AWS_REGION?.trim() ? undefined : queueRegion(url);
        const client = region ? new SQSClient({ region, maxAttempts: 3 }) : sqsClient();
        try {
          return await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
        } catch (error) {
          // The SDK's words for no region, and for AWS_REGION set but blank.
          if (/region is missing|region="" is not a valid/i.test(describeError(error))) {
            throw new ConfigError([{ variable: 'AWS_REGION', message: 'is not set and the queue URL names no region: set AWS_REGION to the queue\'s region' }]);
          }
          throw error;
        } finally {
          if (region) client.destroy();
        }
      },
    });
  }
  const { bucket } = config.s3;
  if (bucket) {
    probes.push({
      kind: 'bucket',
      variable: first(env, 'AWS_S3_BUCKET', 'MINIO_BUCKET')?.variable ?? 'AWS_S3_BUCKET',
      target: config.s3.endpoint ? `${bucket} at ${config.s3.endpoint}` : bucket,
      run: async () => {
        const [{ HeadBucketCommand }, { s3Client }] = await Promise.all([import('@aws-sdk/client-s3'), import('../../shared/s3-client.ts')]);
        return s3Client(config.s3).send(new HeadBucketCommand({ Bucket: bucket }));
      },
    });
  }
  const { livekit } = config;
  if (livekit.url) {
    probes.push({
      kind: 'livekit',
      variable: 'LIVEKIT_URL',
      target: livekit.url,
      run: async () => {
        const access = requireLivekit(config, 'ask LiveKit for its rooms');
        const { roomLister } = await import('../../shared/livekit.ts');
        return (await roomLister(access)).listRooms([PROBE_CALL_ID]);
      },
    });
  }
  return probes;
}

/**
 * The error as one line: its message and causes, with the HTTP status and error name when the
 * message says nothing (S3's HeadBucket answers without a body), and any access token cut out
 * (LiveKit quotes the token it refused).
 */
export function probeError(error: unknown): string {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const name = error instanceof Error ? error.name : undefined;
  let text = describeError(error);
  if (status !== undefined && (text === 'UnknownError' || text === name || text === '')) text = `HTTP ${status} ${name ?? ''}`.trim();
  return text.replace(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g, '<token>');
}

async function timed(probe: Probe, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeoutError(timeoutMs)), timeoutMs);
  });
  const base = { kind: probe.kind, variable: probe.variable, target: probe.target };
  try {
    await Promise.race([probe.run(), timeout]);
    return { ...base, ok: true, ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { ...base, ok: false, error: probeError(error), ms: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every probe at once; never throws. */
export async function runProbes(config: Config, env: Env = process.env, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeResult[]> {
  return Promise.all(probesFor(config, env).map((probe) => timed(probe, timeoutMs)));
}
