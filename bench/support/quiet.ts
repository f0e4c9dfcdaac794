/**
 * Imported first by bench/persist.ts: the logger reads its level when its module loads, which
 * happens through the static imports. BENCH_LOG_LEVEL=INFO measures with the deployed
 * stack's level (one log line per message; pipe stdout to /dev/null).
 */
process.env.POWERTOOLS_LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'SILENT';
