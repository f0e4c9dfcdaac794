import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { metadataRecord, transcriptionRecord } from '../../functions/storage/documents.ts';
import { S3Backend } from '../../functions/storage/s3.ts';
import { describeBackendConformance } from '../support/backend-conformance.ts';
import { createBucket, localstackEndpoint, s3SettingsFor } from '../support/localstack.ts';
import { LOCALSTACK_CREDENTIALS, SERVERS } from '../support/servers.ts';
import { buildSnapshot } from '../support/snapshots.ts';

// The backend reads its bucket from S3 settings; the location string is just "s3".
// Tests encode endpoint and bucket into the location they hand to `create`.
function fromLocation(location: string): S3Backend {
  const url = new URL(location);
  const bucket = url.searchParams.get('bucket') ?? '';
  return new S3Backend(s3SettingsFor(`${url.protocol}//${url.host}`, bucket));
}

describeBackendConformance({
  name: 's3',
  create: fromLocation,
  location: async () => {
    const endpoint = await localstackEndpoint();
    return `${endpoint}/?bucket=${await createBucket(endpoint)}`;
  },
  serverPort: SERVERS.localstack.port,
  viaPort: (location, port) => {
    const url = new URL(location);
    url.port = String(port);
    return url.toString();
  },
});

describe('s3 layout', () => {
  it('writes metadata beside the recording in s3://<bucket>/<room>/<timestamp>/ with the sequence in object metadata', async () => {
    // Prepare
    const endpoint = await localstackEndpoint();
    const bucket = await createBucket(endpoint);
    const backend = new S3Backend(s3SettingsFor(endpoint, bucket));
    const recordingKey = 'support-line/20261124T004838.120_abcd1234/call_support-line_20261124T004838.120_abcd1234.ogg';
    const snapshot = buildSnapshot({ roomName: 'support-line', kind: 'ended', recordingKey });
    // Act
    const [meta, transcript] = await backend.write([metadataRecord(snapshot, 'UTC'), transcriptionRecord(snapshot, 'UTC')]);
    // Assess
    expect(meta?.location).toBe(`s3://${bucket}/support-line/20261124T004838.120_abcd1234/call_metadata_support-line_20261124T004838.120_abcd1234.json`);
    expect(transcript?.location).toBe(`s3://${bucket}/support-line/20261124T004838.120_abcd1234/call_transcription_support-line_20261124T004838.120_abcd1234.json`);
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCALSTACK_CREDENTIALS });
    const key = (meta?.location ?? '').replace(`s3://${bucket}/`, '');
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata?.['calldata-seq']).toBe(String(snapshot.seq));
    const body = JSON.parse((await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToString()) ?? '{}');
    expect(body).toMatchObject({ recording_filename: 'call_support-line_20261124T004838.120_abcd1234.ogg', room_name: 'support-line' });
  });

  it('lets only the newest of many concurrent writers win (conditional writes)', async () => {
    // Prepare: several backends, as several Lambda containers would be
    const endpoint = await localstackEndpoint();
    const bucket = await createBucket(endpoint);
    const writers = [0, 1, 2, 3].map(() => new S3Backend(s3SettingsFor(endpoint, bucket)));
    const callId = 'cas-call-1';
    const versions = Array.from({ length: 12 }, (_, i) => buildSnapshot({ callId, seq: 500 + i }));
    // Act
    await Promise.all(versions.map((s, i) => writers[i % writers.length]?.write([metadataRecord(s, 'UTC')])));
    // Assess
    expect((await writers[0]?.read('metadata', callId))?.seq).toBe(511);
  });
});
