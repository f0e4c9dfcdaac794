import { CallDataError } from '../errors.ts';

/** Errors raised while reading a snapshot off the wire. Never retryable: the bytes will not change. */
export class ContractError extends CallDataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { retryable: false, cause: options?.cause });
  }
}

/** The message is not JSON, is too large, or does not match the schema. */
export class InvalidSnapshotError extends ContractError {
  readonly issues: readonly string[];
  constructor(message: string, issues: readonly string[] = [], options?: { cause?: unknown }) {
    super(issues.length > 0 ? `${message}: ${issues.join('; ')}` : message, options);
    this.issues = issues;
  }
}

/** The message names a schema version this build does not understand. */
export class UnsupportedVersionError extends ContractError {
  readonly version: unknown;
  constructor(version: unknown) {
    super(`unsupported message version ${JSON.stringify(version)}; this build reads v1 and v2`);
    this.version = version;
  }
}
