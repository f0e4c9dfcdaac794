/**
 * Child-process probe: runs one snapshot through the embedded pipeline with the environment
 * it is given, then prints which database drivers the process loaded.
 */
import { createRequire } from 'node:module';
import { loadConfig } from '../../functions/config/config.ts';
import { createSnapshotSink } from '../../functions/transport/sink.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { buildSnapshot } from './snapshots.ts';

const sink = await createSnapshotSink(loadConfig());
await sink.send(buildSnapshot({ kind: 'ended' }));
await closeAllBackends();
const loaded = Object.keys(createRequire(import.meta.url).cache);
const drivers = ['pg', 'mysql2', 'mongodb', 'ioredis', '@aws-sdk/client-s3'].filter((name) => loaded.some((path) => path.includes(`/node_modules/${name}/`)));
process.stdout.write(JSON.stringify(drivers));
