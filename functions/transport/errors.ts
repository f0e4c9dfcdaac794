import { CallDataError } from '../errors.ts';

/** Failures while moving a snapshot from the worker to the persist function. */
export class TransportError extends CallDataError {
  constructor(message: string, context: { retryable: boolean; cause?: unknown }) {
    super(message, context);
  }
}

/** The queue or the payload store could not be reached; the sender keeps the snapshot and tries again. */
export class SendFailedError extends TransportError {
  constructor(message: string, cause?: unknown) {
    super(message, { retryable: true, cause });
  }
}

/** A referenced conversation payload is missing or does not match its checksum: the message is poison. */
export class PayloadError extends TransportError {
  constructor(message: string, retryable: boolean, cause?: unknown) {
    super(message, { retryable, cause });
  }
}
