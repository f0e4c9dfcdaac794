/**
 * The one set of environment readers used by the worker, the functions and the CLI. Each
 * records a problem naming the variable instead of throwing, so a configuration reports every
 * mistake at once; `loadConfig` (config.ts) is the only caller that turns problems into an error.
 */
import { readFileSync } from 'node:fs';
import type * as z from 'zod';

export type Env = Readonly<Record<string, string | undefined>>;

export type Problem = { variable: string; message: string };

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/** The trimmed value, or undefined when the variable is unset or blank. */
export function readText(env: Env, variable: string): string | undefined {
  const value = env[variable]?.trim();
  return value ? value : undefined;
}

export function readBoolean(env: Env, variable: string, fallback: boolean, problems: Problem[]): boolean {
  const raw = env[variable];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = raw.trim().toLowerCase();
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  problems.push({ variable, message: `expected true/false/1/0/yes/no/on/off, got ${JSON.stringify(raw)}` });
  return fallback;
}

export function readInteger(env: Env, variable: string, fallback: number, min: number, max: number, problems: Problem[]): number {
  const raw = env[variable];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push({ variable, message: `expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}` });
    return fallback;
  }
  return value;
}

/** One of a closed list of words (case-insensitive). */
export function readChoice<const T extends string>(env: Env, variable: string, choices: readonly T[], fallback: T, problems: Problem[]): T {
  const value = readText(env, variable)?.toLowerCase();
  if (value === undefined) return fallback;
  const choice = choices.find((c) => c === value);
  if (choice === undefined) problems.push({ variable, message: `expected ${choices.join(' or ')}, got ${JSON.stringify(env[variable])}` });
  return choice ?? fallback;
}

/** The first of several names for one setting that is set (e.g. AWS_S3_BUCKET, then MINIO_BUCKET). */
export function first(env: Env, ...names: string[]): { variable: string; value: string } | undefined {
  for (const variable of names) {
    const value = readText(env, variable);
    if (value) return { variable, value };
  }
  return undefined;
}

export function readUrl(env: Env, variable: string, problems: Problem[], schemes?: readonly string[]): string | undefined {
  const value = readText(env, variable);
  if (!value) return undefined;
  if (!URL.canParse(value)) {
    problems.push({ variable, message: 'expected a URL' });
    return undefined;
  }
  if (schemes && !schemes.includes(new URL(value).protocol.replace(/:$/, ''))) {
    problems.push({ variable, message: `expected a ${schemes.map((s) => `${s}://`).join(', ')} URL` });
    return undefined;
  }
  return value;
}

/**
 * A JSON value given inline (the value starts with `{` or `[`) or as the path of a JSON file,
 * checked against `schema`. Each problem names the variable: the file that cannot be read, the
 * JSON that does not parse, or every place where the value is not `what`. `hint` is added to
 * each problem (e.g. what a valid value looks like).
 */
export function readJson<T>(env: Env, variable: string, schema: z.ZodType<T>, problems: Problem[], options: { what: string; hint?: string }): T | undefined {
  const value = readText(env, variable);
  if (!value) return undefined;
  const problem = (message: string) => problems.push({ variable, message: options.hint ? `${message}: ${options.hint}` : message });
  let text = value;
  if (!value.startsWith('{') && !value.startsWith('[')) {
    try {
      text = readFileSync(value, 'utf8');
    } catch (error) {
      problem(`cannot read ${JSON.stringify(value)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      return undefined;
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    problem(`is not valid JSON (${(error as Error).message})`);
    return undefined;
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  problem(`is not ${options.what} (${parsed.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`).join(', ')})`);
  return undefined;
}
