/**
 * Failures of the recording function. `retryable` tells the SQS handler whether to give the
 * command back to the queue; egress failures are retried inside the function (bounded) and
 * then reported as a fact (the start error), so they surface here only as the final outcome.
 */
import { CallDataError } from '../errors.ts';

export class RecordingError extends CallDataError {
  constructor(message: string, context: { retryable: boolean; cause?: unknown }) {
    super(message, context);
  }
}

/**
 * The egress service could not be reached or did not answer (LiveKit's 503 "no response from
 * servers" when no egress worker is running, a timeout, a dropped connection).
 */
export class EgressUnavailableError extends RecordingError {
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, cause?: unknown) {
    super(message, { retryable: true, cause });
    this.status = status;
  }
}

/** LiveKit refused the egress request (bad request, room gone, permission): retrying will not help. */
export class EgressRejectedError extends RecordingError {
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, cause?: unknown) {
    super(message, { retryable: false, cause });
    this.status = status;
  }
}

/** The per-call marker objects in the bucket could not be read or written. */
export class RecordingStateError extends RecordingError {
  constructor(message: string, cause?: unknown) {
    super(message, { retryable: true, cause });
  }
}

/** Turns any egress call failure into one of the two egress errors above. */
export function classifyEgressError(action: string, cause: unknown): RecordingError {
  if (cause instanceof RecordingError) return cause;
  const status = typeof cause === 'object' && cause !== null && typeof (cause as { status?: unknown }).status === 'number' ? (cause as { status: number }).status : undefined;
  const name = cause instanceof Error || (typeof cause === 'object' && cause !== null && 'name' in cause) ? String((cause as { name?: unknown }).name) : '';
  const message = cause instanceof Error ? cause.message : String(cause);
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String((cause as { code: unknown }).code) : '';
  if (status !== undefined) {
    // 408 (request canceled), 429, 5xx: the service is busy, missing or slow.
    if (status === 408 || status === 429 || status >= 500) return new EgressUnavailableError(`${action}: egress service unavailable (${status}): ${message}`, status, cause);
    return new EgressRejectedError(`${action}: egress request rejected (${status}${code ? ` ${code}` : ''}): ${message}`, status, cause);
  }
  const transient =
    /TimeoutError|AbortError/.test(name) || /fetch failed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|socket|timed? ?out|terminated/i.test(`${message} ${String((cause as { cause?: unknown })?.cause ?? '')}`);
  if (transient) return new EgressUnavailableError(`${action}: egress service did not answer: ${message}`, undefined, cause);
  return new EgressRejectedError(`${action}: ${message}`, undefined, cause);
}

/** The recordings bucket could not be read or written (an object move); the command is tried again. */
export class RecordingObjectError extends RecordingError {
  constructor(message: string, cause?: unknown) {
    super(message, { retryable: true, cause });
  }
}

