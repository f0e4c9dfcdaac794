/**
 * Readers for environment variables. Each records a problem naming the variable instead of
 * throwing, so a configuration reports every mistake at once.
 */
import type { Env } from './config.ts';

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export type Problem = { variable: string; message: string };

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

export function first(env: Env, ...names: string[]): { variable: string; value: string } | undefined {
  for (const variable of names) {
    const value = env[variable]?.trim();
    if (value) return { variable, value };
  }
  return undefined;
}

export function readUrl(env: Env, variable: string, problems: Problem[]): string | undefined {
  const value = env[variable]?.trim();
  if (!value) return undefined;
  if (!URL.canParse(value)) {
    problems.push({ variable, message: 'expected a URL' });
    return undefined;
  }
  return value;
}
