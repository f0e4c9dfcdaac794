/**
 * What every `calldata` subcommand shares: one-line failures, option parsing that names the
 * bad option, and the configuration from the environment and ./.env.
 */
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import type { Config } from '../config/config.ts';

/** Prints `calldata: <message>` and exits (2: a usage or configuration error; 1: the command failed). */
export function fail(message: string, code = 2): never {
  process.stderr.write(`calldata: ${message}\n`);
  process.exit(code);
}

/** parseArgs with strict options; a mistake prints one line plus the command's usage and exits 2. */
export function parseOptions<const T extends ParseArgsOptionsConfig>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    fail(`${(error as Error).message.replace(/\s*\n\s*/g, ' ')}\n\n${usage}`);
  }
}

/** True when the arguments ask for help; the usage then goes to stdout with exit code 0. */
export function wantsHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

export function printUsage(usage: string): number {
  process.stdout.write(`${usage}\n`);
  return 0;
}

/** The configuration from the environment and ./.env (the environment wins); exits 2 naming every bad variable. */
export async function cliConfig(): Promise<Config> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  // The pipeline's structured logs stay quiet unless asked for; the CLI prints its own lines.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const { loadConfig } = await import('../config/config.ts');
  const { ConfigError } = await import('../config/errors.ts');
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.problems.map((p) => `${p.variable}: ${p.message}`).join('\n'));
    throw error;
  }
  for (const warning of config.warnings) process.stderr.write(`calldata: warning: ${warning}\n`);
  return config;
}
