/**
 * Chooses the backend from a location string exactly as the spec lists them, and keeps one
 * instance per location for the life of the process (a Lambda container). Drivers are
 * imported lazily, so a function only loads the driver it uses.
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
  /** Distinguishes record models (e.g. two timezones in one test process); part of the cache key. */
  modelKey: string;
}

const instances = new Map<string, Promise<StorageBackend>>();

async function create(location: string, options: SelectOptions): Promise<StorageBackend> {
  const base: BackendOptions = { documents: options.documents, model: options.model };
  switch (backendKind(location)) {
    case 's3':
      return new (await import('./s3.ts')).S3Backend(options.s3, base);
    case 'mongodb':
      return new (await import('./mongodb.ts')).MongoBackend(location, base);
    case 'redis':
      return new (await import('./redis.ts')).RedisBackend(location, base);
    case 'postgres':
      return new (await import('./postgres.ts')).PostgresBackend(location, base);
    case 'mysql':
      return new (await import('./mysql.ts')).MysqlBackend(location, base);
    case 'local':
      return new (await import('./local.ts')).LocalFolderBackend(location, base);
  }
}

/** The process-wide backend for a location and document set (created on first use). */
export function backendFor(location: string, options: SelectOptions): Promise<StorageBackend> {
  const key = `${location}\u0000${[...options.documents].sort().join(',')}\u0000${options.modelKey}`;
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
