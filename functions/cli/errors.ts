/**
 * How the `calldata` command reports a failure: one line on stderr naming what failed, why (the
 * error's message and its causes, each said once) and what to do; with the global `--verbose`
 * flag the whole cause chain follows, each error with its stack.
 */
import { describeError, isRetryable } from '../errors.ts';

export { describeError };

let verbose = false;

/** Set once by the dispatcher from the global `--verbose` flag. */
export function setVerbose(on: boolean): void {
  verbose = on;
}

export function isVerbose(): boolean {
  return verbose;
}

/** What the user can do about it, when the error says. */
function advice(error: unknown): string | undefined {
  if (isRetryable(error)) return 'check that the server is running and reachable from here, then run the command again';
  return undefined;
}

/** Every error of the cause chain with its stack (for --verbose). */
export function errorDetails(error: unknown): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current !== undefined && current !== null; depth++) {
    const prefix = depth === 0 ? '' : 'caused by: ';
    if (current instanceof Error) {
      lines.push(`${prefix}${current.stack ?? `${current.name}: ${current.message}`}`);
      const code = (current as { code?: unknown }).code;
      if (code !== undefined) lines.push(`  code: ${String(code)}`);
      if (current instanceof AggregateError) for (const inner of current.errors) lines.push(`  - ${inner instanceof Error ? `${inner.name}: ${inner.message}` : String(inner)}`);
      current = current.cause;
    } else {
      lines.push(`${prefix}${String(current)}`);
      break;
    }
  }
  return lines.join('\n');
}

/**
 * Reports a failed command: `calldata: <what>: <why> — <what to do>` and, with --verbose, the
 * details. `clean` makes the line safe for a terminal (e.g. terminalSafe for stored names).
 */
export function reportFailure(what: string, error: unknown, clean: (text: string) => string = (text) => text): void {
  const todo = advice(error);
  const hint = verbose ? '' : ' (--verbose shows details)';
  process.stderr.write(`calldata: ${clean(`${what}: ${describeError(error)}`)}${todo ? ` — ${todo}` : ''}${hint}\n`);
  if (verbose) process.stderr.write(`${errorDetails(error).split('\n').map(clean).join('\n')}\n`);
}
