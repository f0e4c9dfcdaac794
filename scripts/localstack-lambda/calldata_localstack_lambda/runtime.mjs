// A minimal AWS Lambda Node.js runtime loop (Runtime API 2018-06-01), used by the calldata-local
// LocalStack executor to run a deployed function as a plain local Node process.
//
// It loads `_HANDLER` ("file.export", file relative to LAMBDA_TASK_ROOT, trying .mjs, .js, .cjs)
// once, reports load failures to /runtime/init/error, then forever: GET /invocation/next, call the
// handler with the event and a Lambda context, POST /response or /error. Async (promise-returning)
// handlers only, as on the nodejs24.x runtime.
import http from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const api = process.env.AWS_LAMBDA_RUNTIME_API;
if (!api) {
  console.error('AWS_LAMBDA_RUNTIME_API is not set');
  process.exit(1);
}
const [apiHost, apiPort] = api.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const BASE = '/2018-06-01/runtime';

function request(method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body, 'utf8');
    const req = http.request(
      {
        host: apiHost,
        port: Number(apiPort),
        method,
        path: `${BASE}${path}`,
        agent,
        headers: { ...headers, ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

function errorPayload(error) {
  const err = error instanceof Error ? error : new Error(typeof error === 'string' ? error : JSON.stringify(error));
  return JSON.stringify({
    errorType: err.name || 'Error',
    errorMessage: err.message,
    trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
  });
}

async function loadHandler() {
  const spec = process.env._HANDLER ?? '';
  const root = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
  const dot = spec.lastIndexOf('.');
  if (dot <= 0) throw Object.assign(new Error(`Bad handler ${spec}: expected <file>.<export>`), { name: 'Runtime.MalformedHandlerName' });
  const file = spec.slice(0, dot);
  const exportPath = spec.slice(dot + 1);
  const candidate = ['.mjs', '.js', '.cjs'].map((ext) => join(root, file + ext)).find((p) => existsSync(p));
  if (!candidate) throw Object.assign(new Error(`Cannot find module '${file}' in ${root}`), { name: 'Runtime.ImportModuleError' });
  const mod = await import(pathToFileURL(candidate).href);
  let fn = mod;
  for (const part of exportPath.split('.')) fn = fn?.[part] ?? (fn === mod ? mod.default?.[part] : undefined);
  if (typeof fn !== 'function') throw Object.assign(new Error(`${spec} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  return fn;
}

let handler;
try {
  handler = await loadHandler();
} catch (error) {
  console.error(error);
  await request('POST', '/init/error', errorPayload(error), { 'Lambda-Runtime-Function-Error-Type': error?.name ?? 'Runtime.Unknown' });
  process.exit(1);
}

const env = process.env;
for (;;) {
  const next = await request('GET', '/invocation/next');
  if (next.status !== 200) {
    // 410: the environment is shutting down.
    process.exit(0);
  }
  const requestId = String(next.headers['lambda-runtime-aws-request-id'] ?? '');
  const deadlineMs = Number(next.headers['lambda-runtime-deadline-ms'] ?? Date.now() + 3_000);
  const traceId = next.headers['lambda-runtime-trace-id'];
  if (traceId) env._X_AMZN_TRACE_ID = String(traceId);
  else delete env._X_AMZN_TRACE_ID;
  const context = {
    awsRequestId: requestId,
    invokedFunctionArn: String(next.headers['lambda-runtime-invoked-function-arn'] ?? ''),
    functionName: env.AWS_LAMBDA_FUNCTION_NAME ?? '',
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128',
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME ?? '',
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME ?? '',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
  };
  let outcome;
  try {
    const event = next.body.length > 0 ? JSON.parse(next.body) : {};
    const result = await handler(event, context);
    outcome = await request('POST', `/invocation/${encodeURIComponent(requestId)}/response`, JSON.stringify(result ?? null));
  } catch (error) {
    console.error(`${new Date().toISOString()}\t${requestId}\tERROR\tInvoke Error\t`, error);
    outcome = await request('POST', `/invocation/${encodeURIComponent(requestId)}/error`, errorPayload(error), {
      'Lambda-Runtime-Function-Error-Type': error?.name ?? 'Error',
    });
  }
  if (outcome.status >= 500) process.exit(1);
}
