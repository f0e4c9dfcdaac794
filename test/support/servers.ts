/**
 * Addresses of the real servers started by `npm run servers -- up` (scripts/servers.sh).
 * A test that needs one calls requireServer first: a missing server fails the test with a
 * message saying how to start it. Nothing is ever skipped.
 */
import { Socket } from 'node:net';

const env = process.env;
export const SERVERS = {
  postgres: { port: Number(env.PG_PORT ?? 55432), url: env.TEST_POSTGRES_URL ?? `postgres://calldata@127.0.0.1:${env.PG_PORT ?? 55432}/calldata` },
  mysql: { port: Number(env.MYSQL_PORT ?? 53306), url: env.TEST_MYSQL_URL ?? `mysql://calldata:calldata@127.0.0.1:${env.MYSQL_PORT ?? 53306}/calldata` },
  redis: { port: Number(env.REDIS_PORT ?? 56379), url: env.TEST_REDIS_URL ?? `redis://127.0.0.1:${env.REDIS_PORT ?? 56379}/0` },
  mongodb: { port: Number(env.FERRET_PORT ?? 57017), url: env.TEST_MONGODB_URL ?? `mongodb://127.0.0.1:${env.FERRET_PORT ?? 57017}/calldata` },
  localstack: { port: Number(env.LOCALSTACK_PORT ?? 4566), url: env.TEST_LOCALSTACK_URL ?? `http://127.0.0.1:${env.LOCALSTACK_PORT ?? 4566}` },
  livekit: { port: Number(env.LIVEKIT_PORT ?? 7880), url: env.TEST_LIVEKIT_URL ?? `ws://127.0.0.1:${env.LIVEKIT_PORT ?? 7880}` },
} as const;

export type ServerName = keyof typeof SERVERS;

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => done(true));
  });
}

/** Throws (failing the test) when the server is not listening. */
export async function requireServer(name: ServerName): Promise<string> {
  const server = SERVERS[name];
  if (!(await canConnect(server.port))) {
    throw new Error(
      `${name} is not reachable on 127.0.0.1:${server.port}. Start the test servers with ` +
        '`npm run servers -- up` (installs them on first run), or run the whole suite with `npm run test:ci`.',
    );
  }
  return server.url;
}

/** LocalStack's fixed test credentials. */
export const LOCALSTACK_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;
