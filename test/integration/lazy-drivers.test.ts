/**
 * A process loads only the database driver its locations need: one fact message through the
 * embedded pipeline and one sweep, in a child process with the environment under test, then the
 * list of drivers the process loaded. And the same for the deployed persist bundle (built as the
 * stack builds it, infra/bundle.ts): its init and its first invocation, against the real server.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleFunction } from '../../infra/bundle.ts';
import { ENTRIES } from '../../infra/calldata-stack.ts';
import { encodeMessage } from '../../functions/contract/facts.ts';
import { requireServer } from '../support/servers.ts';
import { buildMessage } from '../support/snapshots.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const dirs: string[] = [];

const module = (path: string) => JSON.stringify(pathToFileURL(join(ROOT, path)).href);

/** Sends one final fact message through the embedded pipeline, sweeps once, prints the drivers loaded. */
const PROBE = `
import { createRequire } from 'node:module';
const { loadConfig } = await import(${module('functions/config/config.ts')});
const { MESSAGE_VERSION } = await import(${module('functions/contract/facts.ts')});
const { closeAllBackends } = await import(${module('functions/storage/select.ts')});
const { sweep } = await import(${module('functions/sweeper/sweep.ts')});
const { pipelineFor } = await import(${module('functions/wiring.ts')});

const pipeline = pipelineFor(loadConfig());
const now = Date.now();
await (await pipeline.factSink()).send({
  v: MESSAGE_VERSION, kind: 'ended', callId: 'probe-' + now, writer: 'job:AJ_probe', seq: 1, cumulative: true, sentAtMs: now,
  facts: {
    roomName: 'probe-room', startedAtMs: now - 60000, answeredAtMs: now - 59000,
    ended: { source: 'worker', atMs: now }, outcome: { source: 'worker', atMs: now, status: 'completed' },
    conversation: [{ id: 'p1', role: 'user', content: 'hello', interrupted: false, timestampMs: now - 58000 }],
  },
});
await sweep({ pipeline, rooms: { listRooms: async () => [] } });
await closeAllBackends();
const loaded = Object.keys(createRequire(import.meta.url).cache);
const drivers = ['pg', 'mysql2', 'mongodb', 'ioredis', '@aws-sdk/client-s3'].filter((name) => loaded.some((path) => path.includes('/node_modules/' + name + '/')));
process.stdout.write(JSON.stringify(drivers));
`;

async function driversLoadedWith(env: Record<string, string>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'calldata-lazy-'));
  dirs.push(dir);
  const probe = join(dir, 'probe.mjs');
  await writeFile(probe, PROBE);
  const { stdout } = await run(NODE, [probe], { cwd: dir, env: { PATH: process.env.PATH ?? '', POWERTOOLS_LOG_LEVEL: 'ERROR', SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', ...env } });
  return JSON.parse(stdout) as string[];
}

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('driver loading', () => {
  it('loads no database driver for local folders', async () => {
    expect(await driversLoadedWith({})).toEqual([]);
  });

  it('loads only pg for a PostgreSQL location', async () => {
    const url = await requireServer('postgres');
    expect(await driversLoadedWith({ METADATA_LOCATION: url, TRANSCRIPTION_LOCATION: url })).toEqual(['pg']);
  });

  it('loads only ioredis for a Redis location', async () => {
    const url = await requireServer('redis');
    expect(await driversLoadedWith({ METADATA_LOCATION: url, TRANSCRIPTION_LOCATION: url })).toEqual(['ioredis']);
  });

  it('loads only mysql2 for a MySQL location', async () => {
    const url = await requireServer('mysql');
    expect(await driversLoadedWith({ METADATA_LOCATION: url, TRANSCRIPTION_LOCATION: url })).toEqual(['mysql2']);
  });
});

/**
 * Imports a bundle (the init of a Lambda container), then invokes its handler with one SQS
 * record, and prints every file that was loaded and the handler's answer.
 */
const BUNDLE_PROBE = `
import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';
const loaded = [];
registerHooks({ load(url, context, nextLoad) { if (url.startsWith('file:')) loaded.push(url); return nextLoad(url, context); } });
const { handler } = await import(pathToFileURL(process.argv[2]).href);
const atInit = [...loaded];
const event = { Records: [{ messageId: 'm1', receiptHandle: 'r1', body: process.env.PROBE_BODY, attributes: {}, messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:facts', awsRegion: 'us-east-1' }] };
const context = { functionName: 'probe', functionVersion: '$LATEST', invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:probe', memoryLimitInMB: '512', awsRequestId: 'probe-request', logGroupName: '/aws/lambda/probe', logStreamName: 'probe', getRemainingTimeInMillis: () => 30000 };
const response = await handler(event, context);
process.stdout.write(JSON.stringify({ atInit, afterInvocation: loaded, response }));
process.exit(0);
`;

/** The npm packages whose code the loaded bundle files hold, read from their source maps. */
function packagesLoaded(urls: readonly string[]): string[] {
  const names = new Set<string>();
  for (const url of urls.filter((u) => u.endsWith('.mjs'))) {
    const map = JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, 'utf8')) as { sources: string[] };
    for (const source of map.sources) {
      const name = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(source)?.[1];
      if (name) names.add(name);
    }
  }
  return [...names];
}

const DRIVER_OF = { postgres: 'pg', mysql: 'mysql2', redis: 'ioredis', mongodb: 'mongodb' } as const;

let persistBundle: Promise<string> | undefined;

/** The persist bundle, built once for this file exactly as the stack builds it. */
function builtPersistBundle(): Promise<string> {
  persistBundle ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'calldata-lazy-bundle-'));
    dirs.push(dir);
    await writeFile(join(dir, 'probe.mjs'), BUNDLE_PROBE);
    return bundleFunction(ENTRIES.persist, join(dir, 'asset')).entry;
  })();
  return persistBundle;
}

describe('the deployed persist bundle', () => {
  for (const [server, driver] of Object.entries(DRIVER_OF) as [keyof typeof DRIVER_OF, string][]) {
    it(`loads ${driver} during init for a ${server} location and no other driver, not even in a first invocation that stores a call`, { timeout: 60_000 }, async () => {
      // Prepare
      const url = await requireServer(server);
      const entry = await builtPersistBundle();
      const dir = join(entry, '../..');
      const body = encodeMessage(buildMessage({ kind: 'ended', callId: `lazy-bundle-${server}-${Date.now()}` }));

      // Act
      const { stdout } = await run(NODE, ['--enable-source-maps', join(dir, 'probe.mjs'), entry], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1', POWERTOOLS_LOG_LEVEL: 'ERROR', SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', METADATA_LOCATION: url, TRANSCRIPTION_LOCATION: url, PROBE_BODY: body },
      });
      const result = JSON.parse(stdout) as { atInit: string[]; afterInvocation: string[]; response: { batchItemFailures: unknown[] } };

      // Assess
      expect(result.response.batchItemFailures).toEqual([]); // the call was stored
      const atInit = packagesLoaded(result.atInit);
      const afterInvocation = packagesLoaded(result.afterInvocation);
      expect(atInit).toContain(driver);
      for (const other of Object.values(DRIVER_OF).filter((d) => d !== driver)) {
        expect(atInit).not.toContain(other);
        expect(afterInvocation).not.toContain(other);
      }
    });
  }
});
