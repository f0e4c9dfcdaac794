/**
 * The effective configuration as `calldata doctor` shows it: every listed variable with its
 * value (secrets masked, passwords in location URLs masked) and where the value came from.
 */
import type { Env } from '../../config/env.ts';
import { sourceOf, type ValueSource } from '../../config/dotenv.ts';
import { maskValue, VARIABLES, type Reader } from '../../config/variables.ts';

export interface ConfigEntry {
  name: string;
  /** As shown: masked where secret; the default when unset. */
  value: string;
  source: ValueSource;
  readers: readonly Reader[];
}

export function configurationReport(env: Env = process.env, dotenvNames?: ReadonlySet<string>): ConfigEntry[] {
  return VARIABLES.map((variable) => {
    const source = sourceOf(variable.name, env, dotenvNames);
    const raw = source === 'default' ? variable.default : env[variable.name]?.trim();
    return { name: variable.name, value: maskValue(variable, raw), source, readers: variable.readers };
  });
}

/** Aligned text lines: name, value, [source]. */
export function formatReport(entries: readonly ConfigEntry[]): string[] {
  const width = Math.max(...entries.map((e) => e.name.length));
  return entries.map((e) => `${e.name.padEnd(width)}  ${e.value}  [${e.source}]`);
}
