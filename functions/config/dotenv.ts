/**
 * The one `.env` loader of the worker and the CLI: reads `./.env` (when present) into the
 * process environment without overriding what the environment already sets — the environment
 * wins over `.env` — and remembers where each value came from, so `calldata doctor` can say it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { ConfigError } from './errors.ts';

export type ValueSource = 'default' | '.env' | 'environment';

type MutableEnv = Record<string, string | undefined>;

const fromDotenv = new Set<string>();

/**
 * Loads `path` into `env` (default `process.env`); a variable already set keeps its value.
 * Returns the names taken from the file. A file that cannot be read is a ConfigError.
 */
export function loadDotenv(path = '.env', env: MutableEnv = process.env): string[] {
  if (!existsSync(path)) return [];
  let parsed: Record<string, string>;
  try {
    parsed = parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
  } catch (error) {
    throw new ConfigError([{ variable: path, message: `cannot be read (${(error as Error).message})` }]);
  }
  const taken: string[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (env[name] !== undefined) continue;
    env[name] = value;
    taken.push(name);
    if (env === process.env) fromDotenv.add(name);
  }
  return taken;
}

/** Where a variable's effective value comes from; blank counts as unset, as the readers treat it. */
export function sourceOf(name: string, env: Readonly<MutableEnv> = process.env, dotenvNames: ReadonlySet<string> = fromDotenv): ValueSource {
  const value = env[name];
  if (value === undefined || value.trim() === '') return 'default';
  return dotenvNames.has(name) ? '.env' : 'environment';
}
