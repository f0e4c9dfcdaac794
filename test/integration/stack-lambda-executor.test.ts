/**
 * The calldata-local LocalStack Lambda executor (scripts/localstack-lambda) on its own: plain
 * functions created through LocalStack's Lambda API run as local Node 24 processes with a Lambda
 * context, the function's timeout is enforced, a crashed or timed-out process is replaced, and
 * init failures are reported as Lambda reports them.
 */
import { randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServer } from '../support/servers.ts';

let endpoint: string;
const created: string[] = [];

/** A minimal stored (uncompressed) zip archive. */
function zip(files: Record<string, string>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content, 'utf8');
    const fileName = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(fileName.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(fileName.length, 28);
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, fileName, data);
    centrals.push(central, fileName);
    offset += local.length + fileName.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

const HANDLER = `
export const handler = async (event, context) => {
  console.log('invoked', JSON.stringify(event));
  if (event.sleepMs) await new Promise((r) => setTimeout(r, event.sleepMs));
  if (event.exit !== undefined) process.exit(event.exit);
  if (event.fail) throw new TypeError(event.fail);
  return {
    pid: process.pid,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    remainingMs: context.getRemainingTimeInMillis(),
    memory: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    custom: process.env.CUSTOM_SETTING,
    node: process.version,
  };
};
`;

async function lambdaApi(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(`${endpoint}/2015-03-31/functions${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

async function createFunction(handler: string, files: Record<string, string>, timeout: number): Promise<string> {
  const name = `executor-test-${randomUUID().slice(0, 8)}`;
  const response = await lambdaApi('POST', '', {
    FunctionName: name,
    Runtime: 'nodejs24.x',
    Architectures: ['arm64'],
    Role: 'arn:aws:iam::000000000000:role/executor-test',
    Handler: handler,
    Timeout: timeout,
    MemorySize: 128,
    Environment: { Variables: { CUSTOM_SETTING: 'from-config' } },
    Code: { ZipFile: zip(files).toString('base64') },
  });
  if (response.status >= 300) throw new Error(`CreateFunction failed: ${response.status} ${response.text}`);
  created.push(name);
  for (let i = 0; i < 100; i++) {
    const state = (JSON.parse((await lambdaApi('GET', `/${name}`)).text) as { Configuration?: { State?: string } }).Configuration?.State;
    if (state === 'Active') return name;
    if (state === 'Failed') throw new Error(`function ${name} went to state Failed: is LocalStack running with LAMBDA_RUNTIME_EXECUTOR=calldata-local? (npm run servers -- up)`);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`function ${name} did not become Active`);
}

async function invoke(name: string, event: unknown): Promise<{ functionError?: string; payload: Record<string, unknown>; ms: number }> {
  const started = Date.now();
  const response = await lambdaApi('POST', `/${name}/invocations`, event);
  return { functionError: response.headers.get('x-amz-function-error') ?? undefined, payload: JSON.parse(response.text) as Record<string, unknown>, ms: Date.now() - started };
}

beforeAll(async () => {
  endpoint = await requireServer('localstack');
  const health = (await (await fetch(`${endpoint}/_localstack/health`)).json()) as { services: Record<string, string> };
  if (!['available', 'running'].includes(health.services.lambda ?? '')) {
    throw new Error('LocalStack runs without its Lambda service. Restart it with the project\'s settings: `pkill -f localstack.runtime.main; npm run servers -- up`');
  }
});

afterAll(async () => {
  for (const name of created) await lambdaApi('DELETE', `/${name}`).catch(() => undefined);
});

describe('the calldata-local LocalStack Lambda executor', () => {
  it('runs a Node.js function as a local Node 24 process with its environment (values as strings) and a Lambda context', async () => {
    // Prepare
    const name = await createFunction('index.handler', { 'index.mjs': HANDLER }, 3);

    // Act
    const first = await invoke(name, { hello: 'world' });
    const second = await invoke(name, {});

    // Assess
    expect(first.functionError).toBeUndefined();
    expect(first.payload).toMatchObject({ functionName: name, memory: '128', custom: 'from-config', node: expect.stringMatching(/^v24\./) });
    expect(first.payload.remainingMs).toBeGreaterThan(2_000);
    expect(first.payload.remainingMs).toBeLessThanOrEqual(3_000);
    expect(second.payload.pid).toBe(first.payload.pid); // a warm environment is reused
    expect(second.payload.requestId).not.toBe(first.payload.requestId);
  });

  it('reports a thrown error as a function error with its type and message', async () => {
    // Prepare
    const name = await createFunction('index.handler', { 'index.mjs': HANDLER }, 3);

    // Act
    const result = await invoke(name, { fail: 'bad input' });

    // Assess
    expect(result.functionError).toBe('Unhandled');
    expect(result.payload).toMatchObject({ errorType: 'TypeError', errorMessage: 'bad input' });
  });

  it('stops an invocation at the function timeout and serves the next one from a fresh process', async () => {
    // Prepare
    const name = await createFunction('index.handler', { 'index.mjs': HANDLER }, 1);
    const before = await invoke(name, {});

    // Act
    const late = await invoke(name, { sleepMs: 5_000 });
    const after = await invoke(name, {});

    // Assess
    expect(late.functionError).toBe('Unhandled');
    expect(late.payload).toMatchObject({ errorType: 'Sandbox.Timedout', errorMessage: expect.stringMatching(/Task timed out after 1\.00 seconds/) });
    expect(late.ms).toBeLessThan(4_000);
    expect(after.functionError).toBeUndefined();
    expect(after.payload.pid).not.toBe(before.payload.pid);
  });

  it('reports a process that exits mid-invocation as Runtime.ExitError and recovers', async () => {
    // Prepare
    const name = await createFunction('index.handler', { 'index.mjs': HANDLER }, 3);

    // Act
    const crashed = await invoke(name, { exit: 3 });
    const after = await invoke(name, {});

    // Assess
    expect(crashed.functionError).toBe('Unhandled');
    expect(crashed.payload).toMatchObject({ errorType: 'Runtime.ExitError', errorMessage: expect.stringContaining('exit status 3') });
    expect(after.functionError).toBeUndefined();
  });

  it('reports a handler that is not exported as an init error', async () => {
    // Prepare
    const name = await createFunction('index.missing', { 'index.mjs': HANDLER }, 3);

    // Act
    const result = await invoke(name, {});

    // Assess
    expect(result.functionError).toBe('Unhandled');
    expect(result.payload).toMatchObject({ errorType: 'Runtime.HandlerNotFound' });
  });
});
