/**
 * The egress edge: livekit-server-sdk's EgressClient behind a small interface, with bounded
 * retries on 503 / timeouts. (The recordings' objects: objects.ts.)
 */
import { EgressClient, EncodedFileOutput, EncodedFileType, S3Upload, type EgressInfo, type RoomCompositeOptions, type ListEgressOptions } from 'livekit-server-sdk';
import type { S3Settings } from '../config/config.ts';
import { logger } from '../shared/logger.ts';
import { classifyEgressError, RecordingError } from './errors.ts';
import { requireLivekit } from '../config/livekit.ts';
import type { RecordingSettings } from './settings.ts';

/** The part of EgressClient this function uses (faked in unit tests). */
export interface EgressApi {
  startRoomCompositeEgress(roomName: string, output: EncodedFileOutput, opts?: RoomCompositeOptions): Promise<EgressInfo>;
  stopEgress(egressId: string): Promise<EgressInfo>;
  listEgress(options?: ListEgressOptions): Promise<EgressInfo[]>;
}

export function createEgressApi(settings: RecordingSettings): EgressApi {
  const { url, apiKey, apiSecret } = requireLivekit(settings, 'start and stop recordings');
  const client = new EgressClient(url.replace(/^ws/, 'http'), apiKey, apiSecret, {
    requestTimeout: Math.ceil(settings.egressTimeoutMs / 1000),
    failover: false,
  });
  return client as unknown as EgressApi;
}

/** The spec's recording: room composite, audio only, OGG, layout `speaker`, to S3 at `key`. */
export function recordingOutput(s3: S3Settings, bucket: string, key: string): EncodedFileOutput {
  return new EncodedFileOutput({
    fileType: EncodedFileType.OGG,
    filepath: key,
    disableManifest: true,
    output: {
      case: 's3',
      value: new S3Upload({
        bucket,
        region: s3.region,
        endpoint: s3.endpoint ?? '',
        forcePathStyle: s3.forcePathStyle,
        accessKey: s3.accessKeyId ?? '',
        secret: s3.secretAccessKey ?? '',
      }),
    },
  });
}

export const RECORDING_LAYOUT = 'speaker';

export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs an egress request up to `attempts` times while it fails with a retryable error
 * (503, 5xx, timeouts, refused connections). Throws the classified last error.
 */
export async function withEgressRetries<T>(action: string, policy: RetryPolicy, run: () => Promise<T>): Promise<T> {
  const sleep = policy.sleep ?? defaultSleep;
  let last: RecordingError | undefined;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    try {
      return await run();
    } catch (cause) {
      last = classifyEgressError(action, cause);
      if (!last.retryable || attempt === policy.attempts) break;
      logger.warn('egress request failed; retrying', { action, attempt, attempts: policy.attempts, error: last.message });
      await sleep(policy.backoffMs * 2 ** (attempt - 1));
    }
  }
  throw last ?? new RecordingError(`${action}: no attempt was made`, { retryable: false });
}
