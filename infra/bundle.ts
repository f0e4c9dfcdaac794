/**
 * How a calldata Lambda's code is built: the locally installed esbuild (never Docker) bundles the
 * handler into an ESM `index.mjs` plus chunks, each with a linked source map.
 *
 * Code splitting is the point: every `import()` in the functions (the storage backends in
 * functions/storage/select.ts, the SQS and S3 clients, the recording step) becomes its own chunk,
 * so a function whose location is postgres:// loads pg and nothing of mysql2, ioredis or mongodb.
 * NodejsFunction cannot split (it passes esbuild `--outfile`, splitting needs `outdir`), so the
 * stack builds its assets here (infra/calldata-function.ts) and `npm run bench:cold` builds the
 * same way.
 */
import { fileURLToPath } from 'node:url';
import { buildSync, type BuildOptions, type Metafile } from 'esbuild';

/** The project root, with a trailing slash. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * esbuild emits ESM; a few bundled CommonJS dependencies still call require() for Node
 * built-ins, which ESM lacks, so the banner defines one.
 */
export const ESM_REQUIRE_BANNER = "import { createRequire as __calldataCreateRequire } from 'node:module'; const require = __calldataCreateRequire(import.meta.url);";

/**
 * Optional peer dependencies of the database drivers that this project never uses; left out of
 * the bundle (the drivers load them inside try/catch).
 */
export const UNUSED_OPTIONAL_MODULES = [
  'kerberos',
  '@mongodb-js/zstd',
  '@aws-sdk/credential-providers',
  'gcp-metadata',
  'snappy',
  'socks',
  'aws4',
  'mongodb-client-encryption',
  'pg-native',
  'cloudflare:sockets',
];

/** Chunks live beside the entry, so the Lambda handler stays `index.handler`. */
export const CHUNK_DIR = 'chunks';

/**
 * What every function bundle shares. The AWS SDK is bundled too: versions pinned by
 * package-lock.json, not the runtime's copy.
 */
const COMMON: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  mainFields: ['module', 'main'],
  minify: true,
  // Linked maps without the sources: stack traces point into the TypeScript files
  // (NODE_OPTIONS=--enable-source-maps) without shipping the code twice.
  sourcemap: true,
  sourcesContent: false,
  banner: { js: ESM_REQUIRE_BANNER },
  external: UNUSED_OPTIONAL_MODULES,
  logLevel: 'warning',
  absWorkingDir: PROJECT_ROOT,
};

export interface BundleResult {
  /** The entry module (`<outdir>/index.mjs`). */
  entry: string;
  metafile: Metafile;
}

/**
 * Builds one function into `outdir`: `index.mjs` (exports `handler`) and `chunks/*.mjs`.
 * @param entry the handler file, relative to the project root
 */
export function bundleFunction(entry: string, outdir: string): BundleResult {
  const { metafile } = buildSync({
    ...COMMON,
    entryPoints: { index: `${PROJECT_ROOT}${entry}` },
    splitting: true,
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
    alias: { 'whatwg-url': './infra/node-url.ts' },
    metafile: true,
  });
  return { entry: `${outdir}/index.mjs`, metafile };
}

/**
 * The bundle as the stack built it before code splitting (NodejsFunction's options: one file with
 * every driver). Kept only so that `npm run bench:cold` compares old and new in the same run.
 */
export function bundleSingleFile(entry: string, outdir: string): BundleResult {
  const { metafile } = buildSync({ ...COMMON, entryPoints: [`${PROJECT_ROOT}${entry}`], outfile: `${outdir}/index.mjs`, metafile: true });
  return { entry: `${outdir}/index.mjs`, metafile };
}
