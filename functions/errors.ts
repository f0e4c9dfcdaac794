/**
 * The one error root of calldata. Every module subclasses it (ContractError, StorageError,
 * TransportError, RecordingError, ConfigError, …), so a caller tells "try again later" from
 * "this will never work" the same way everywhere: `retryable`, and the original failure in
 * `cause`; describeError says any error and its causes in one line for people. It sits below
 * every layer (contract, storage, transport, domain, handlers, worker, CLI and infra may all
 * import it) and imports nothing.
 */
export interface CallDataErrorOptions {
  /** True when the same operation may succeed later (a server was down, a lock was busy). */
  retryable?: boolean;
  cause?: unknown;
}

export class CallDataError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: CallDataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

/**
 * True when trying again may succeed. A CallDataError says so itself; a foreign error counts
 * only when it carries `retryable: true` (as LiveKit's agents errors do).
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof CallDataError) return error.retryable;
  return typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === true;
}

/** One line: an error's message and its causes, without repeating them. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      // Node reports a refused connection to every address of a name as an AggregateError without a message.
      const inner = current instanceof AggregateError && !current.message ? (current.errors[0] as Error | undefined) : undefined;
      const text = (current.message || inner?.message || current.name).replace(/\s*\n\s*/g, ' ');
      if (text && !parts.some((part) => part.includes(text))) parts.push(text);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.length > 0 ? parts.join(': ') : String(error);
}
