import { CallDataError } from '../errors.ts';

/** Base of every storage failure. `retryable` tells the persist function whether to give the record back to the queue. */
export class StorageError extends CallDataError {
  readonly backend: string;
  constructor(message: string, context: { backend: string; retryable: boolean; cause?: unknown }) {
    super(message, { retryable: context.retryable, cause: context.cause });
    this.backend = context.backend;
  }
}

/** The backend could not be reached or answered with a transient failure: retry later, nothing is lost. */
export class BackendUnavailableError extends StorageError {
  constructor(backend: string, message: string, cause?: unknown) {
    super(message, { backend, retryable: true, cause });
  }
}

/** The location string cannot be used (bad URL, unsupported scheme options). Not retryable. */
export class LocationError extends StorageError {
  constructor(backend: string, message: string, cause?: unknown) {
    super(message, { backend, retryable: false, cause });
  }
}

/** Wraps an unknown driver error: connection-level failures are retryable, the rest are not. */
export function classifyDriverError(backend: string, action: string, cause: unknown): StorageError {
  if (cause instanceof StorageError) return cause;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String((cause as { code: unknown }).code) : '';
  const name = cause instanceof Error ? cause.name : '';
  const transient =
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|PROTOCOL_CONNECTION_LOST|ER_CON_COUNT_ERROR|57P0[123]|53300|08\d\d\d|40001|40P01|ER_LOCK_DEADLOCK|ER_LOCK_WAIT_TIMEOUT)$/.test(code) ||
    /Mongo(Network|ServerSelection|NotConnected|Topology)|Timeout|AbortError/.test(name) ||
    (cause instanceof Error && /connect|ECONNREFUSED|Connection is closed|socket|timed? ?out|terminat/i.test(cause.message));
  return new StorageError(`${backend}: ${action} failed`, { backend, retryable: transient, cause });
}

/** A query the store cannot answer as asked (a bad cursor or limit). Not retryable. */
export class InvalidQueryError extends StorageError {
  constructor(message: string) {
    super(message, { backend: 'query', retryable: false });
  }
}
