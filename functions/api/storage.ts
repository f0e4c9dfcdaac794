/**
 * The package's `calldata/storage` entry: reading stored calls back (the same reader
 * `calldata calls` and `calldata browse` use) and the backends themselves.
 *
 *   const reader = new CallReader(loadConfig());            // METADATA_LOCATION, TIMEZONE, ...
 *   const { calls, cursor } = await reader.list(parseFilters({ since: '2026-11-01' }, reader.config.timezone));
 *   await closeAllBackends();
 *
 * Each driver is imported only when a location selects it; `calldata/storage/<backend>`
 * (postgres, mysql, mongodb, redis, s3, local) exports one backend class on its own. This entry
 * sits above every layer it gathers, so storage itself never imports the reader or the domain.
 */
export { CallReader, CallNotFoundError, NoRecordingError, listLocation, shownLocation, RECORDING_URL_TTL_S, type CallDetails, type RecordingLink } from '../query/reader.ts';
export { parseFilters, type FilterInput, type Overview } from '../domain/calls.ts';
export { recordModel } from '../domain/model.ts';
export { loadConfig, type Config, type S3Settings } from '../config/config.ts';
export { backendFor, backendKind, closeAllBackends, type BackendKind, type SelectOptions } from '../storage/select.ts';
export { MAX_PAGE, type BackendOptions, type CallFilter, type CallPage, type CallQuery, type OpenCall, type RecordModel, type StorageBackend, type StoredCall } from '../storage/backend.ts';
export { StorageError, BackendUnavailableError, LocationError, InvalidQueryError } from '../storage/errors.ts';
export type { CallSummary, MetadataDocument, TranscriptionDocument, TranscriptionItem } from '../contract/record.ts';
