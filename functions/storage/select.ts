/**
 * Chooses the backend from a location string exactly as the spec lists them, and keeps one
 * instance per location for the life of the process (a Lambda container). Each backend module
 * (and its driver) is imported only when a location needs it; in the Lambda bundles every one is
 * its own chunk (infra/bundle.ts), so a function loads only the driver its locations select.
 */
import type { S3Settings } from '../config/config.ts';
import type { BackendOptions, StorageBackend } from './backend.ts';

export type BackendKind = 's3' | 'mongodb' | 'redis' | 'postgres' | 'mysql' | 'local';

export function backendKind(location: string): BackendKind {
  if (location === 's3') return 's3';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'mongodb':
    case 'mongodb+srv':
      return 'mongodb';
    case 'redis':
    case 'rediss':
      return 'redis';
    case 'postgres':
    case 'postgresql':
      return 'postgres';
    case 'mysql':
    case 'mysql+pymysql':
      return 'mysql';
    default:
      return 'local';
  }
}

export interface SelectOptions extends BackendOptions {
  s3: S3Settings;
}

/** The one place each backend module is imported (esbuild makes each `import()` a chunk). */
const MODULES = {
  s3: () => import('./s3.ts'),
  mongodb: () => import('./mongodb.ts'),
  redis: () => import('./redis.ts'),
  postgres: () => import('./postgres.ts'),
  mysql: () => import('./mysql.ts'),
  local: () => import('./local.ts'),
} satisfies Record<BackendKind, () => Promise<unknown>>;

const instances = new Map<string, Promise<StorageBackend>>();

async function create(location: string, options: SelectOptions): Promise<StorageBackend> {
  const base: BackendOptions = { documents: options.documents, model: options.model };
  switch (backendKind(location)) {
    case 's3':
      return new (await MODULES.s3()).S3Backend(options.s3, base);
    case 'mongodb':
      return new (await MODULES.mongodb()).MongoBackend(location, base);
    case 'redis':
      return new (await MODULES.redis()).RedisBackend(location, base);
    case 'postgres':
      return new (await MODULES.postgres()).PostgresBackend(location, base);
    case 'mysql':
      return new (await MODULES.mysql()).MysqlBackend(location, base);
    case 'local':
      return new (await MODULES.local()).LocalFolderBackend(location, base);
  }
}

/**
 * Loads (without connecting) the backend modules and drivers these locations select, so that a
 * Lambda container pays for them during init rather than in its first invocation.
 */
export async function loadBackendModules(locations: readonly string[]): Promise<BackendKind[]> {
  const kinds = [...new Set(locations.map(backendKind))];
  await Promise.all(kinds.map((kind) => MODULES[kind]()));
  return kinds;
}

/** The process-wide backend for a location and document set (created on first use). */
export function backendFor(location: string, options: SelectOptions): Promise<StorageBackend> {
  const key = `${location}\u0000${[...options.documents].sort().join(',')}\u0000${options.model.key}`;
  let instance = instances.get(key);
  if (!instance) {
    instance = create(location, options);
    instances.set(key, instance);
    // A failed construction must not poison the cache for the next invocation.
    instance.catch(() => instances.delete(key));
  }
  return instance;
}

/** Closes every backend this process opened (CLI exit, tests). */
export async function closeAllBackends(): Promise<void> {
  const all = [...instances.values()];
  instances.clear();
  await Promise.allSettled(all.map(async (p) => (await p).close()));
}
