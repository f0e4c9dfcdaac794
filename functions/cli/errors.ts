/**
 * How the `calldata` command reports a failure: one line on stderr naming what failed, why (the
 * error's message and its causes, each said once) and what to do; with the global `--verbose`
 * flag the whole cause chain follows, each error with its stack.
 */
import { isRetryable } from '../errors.ts';

let verbose = false;

/** Set once by the dispatcher from the global `--verbose` flag. */
export function setVerbose(on: boolean): void {
  verbose = on;
}

export function isVerbose(): boolean {
  return verbose;
}

/** The wording of a sink's error that promises a retry, true in a long-running worker; the CLI exits instead. */
const RETRY_PROMISE = /keeps it and tries again|will be retried/i;

/** One line: an error's message and its causes, without repeating them. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      // Node reports a refused connection to every address of a name as an AggregateError without a message.
      const inner = current instanceof AggregateError && !current.message ? (current.errors[0] as Error | undefined) : undefined;
      const text = (current.message || inner?.message || current.name).replace(/\s*\n\s*/g, ' ');
      if (text && !RETRY_PROMISE.test(text) && !parts.some((part) => part.includes(text))) parts.push(text);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.length > 0 ? parts.join(': ') : String(error);
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
