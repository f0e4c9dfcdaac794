/**
 * What every `calldata` subcommand shares: one-line failures, option parsing that names the
 * bad option, and the configuration from the environment and ./.env.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import type { Config } from '../config/config.ts';
import { isVerbose } from './errors.ts';

/** Prints `calldata: <message>` and exits (2: a usage or configuration error; 1: the command failed). */
export function fail(message: string, code = 2): never {
  process.stderr.write(`calldata: ${message}\n`);
  process.exit(code);
}

/**
 * `--name value` as `--name=value` for an option that takes a value, when the value starts with
 * `-` but is not one of the command's options (`--room -rf`): node:util's parseArgs refuses that
 * as ambiguous. A known option after it (`--room --json`) is left alone, so the mistake is still
 * reported.
 */
export function joinDashValues(args: readonly string[], options: ParseArgsOptionsConfig): string[] {
  const known = new Set(['--help', '-h']);
  const byShort = new Map<string, string>();
  for (const [name, option] of Object.entries(options)) {
    known.add(`--${name}`);
    if (option.short) {
      known.add(`-${option.short}`);
      byShort.set(`-${option.short}`, name);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const name = arg.startsWith('--') ? arg.slice(2) : byShort.get(arg);
    const next = args[i + 1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && next.startsWith('-') && next !== '--' && !known.has(next.split('=')[0] ?? next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** parseArgs with strict options; a mistake prints one line plus the command's usage and exits 2. */
export function parseOptions<const T extends ParseArgsOptionsConfig>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args: joinDashValues(args, options), options, strict: true, allowPositionals: true });
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
  (await import('../config/dotenv.ts')).loadDotenv();
  // The pipeline's structured logs stay quiet unless asked for: the CLI prints its own lines,
  // and --verbose shows the pipeline's warnings too.
  process.env.POWERTOOLS_LOG_LEVEL ??= isVerbose() ? 'WARN' : 'SILENT';
  const { loadConfig } = await import('../config/config.ts');
  const { ConfigError } = await import('../config/errors.ts');
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.problems.map((p) => `${p.variable}: ${p.message} (set it in the environment or ./.env; .env.example lists every variable)`).join('\ncalldata: '));
    throw error;
  }
  for (const warning of config.warnings) process.stderr.write(`calldata: warning: ${warning}\n`);
  return config;
}
