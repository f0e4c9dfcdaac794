/**
 * Stands in for the `whatwg-url` package in the Lambda bundles (infra/bundle.ts):
 * mongodb-connection-string-url takes `URL` and `URLSearchParams` from it so that it also runs
 * in browsers. Node's own classes implement the same WHATWG URL standard, and the package's
 * Unicode tables (tr46, about 280 KB) stay out of the mongodb chunk.
 */
export const { URL, URLSearchParams } = globalThis;
