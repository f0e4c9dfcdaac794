/**
 * The package's `calldata/contract` entry: the fact messages the worker sends and the
 * persist step reads (versioned, zod-validated), the stored documents' shapes and the closed
 * vocabularies. For anyone who produces or consumes calldata messages without the capture API.
 */
export * from './facts.ts';
export type * from './record.ts';
export * from './vocabulary.ts';
export { ContractError, InvalidSnapshotError, UnsupportedVersionError } from './errors.ts';
export { CallDataError, isRetryable, type CallDataErrorOptions } from '../errors.ts';
