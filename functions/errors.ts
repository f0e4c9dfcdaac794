/**
 * The one error root of calldata. Every module subclasses it (ContractError, StorageError,
 * TransportError, RecordingError, ConfigError, …), so a caller tells "try again later" from
 * "this will never work" the same way everywhere: `retryable`, and the original failure in
 * `cause`. It sits below every layer (contract, storage, transport, domain, handlers, worker,
 * CLI and infra may all import it) and imports nothing.
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
