/**
 * `calldata doctor [--probe] [--json]`: the effective configuration (every variable, secrets
 * masked, and whether its value is the default, from ./.env or from the environment), the
 * configuration's problems, and with --probe one line per location, queue, bucket and LiveKit
 * saying ok or the exact error. Exit codes: 0 all good, 1 a probe failed, 2 a bad variable or option.
 */
import { parseOptions, printUsage, wantsHelp } from './common.ts';

export const DOCTOR_USAGE = `Usage: calldata doctor [--probe] [--json]

Prints the effective configuration: every variable calldata reads (.env.example lists them),
its value (secrets and passwords in location URLs masked) and where it came from: [default],
[.env] (./.env) or [environment] (the environment wins over ./.env). Then the configuration's
problems, one line each.

Options:
  --probe   also connect to every configured location (a read), the queues (GetQueueAttributes),
            the bucket (HeadBucket) and LiveKit (ListRooms), and report each as ok or the exact
            error; exit 1 if one fails
  --json    print {"variables": [...], "problems": [...], "warnings": [...], "probes": [...]}
  -h, --help`;

export async function doctorCommand(args: string[]): Promise<number> {
  if (wantsHelp(args)) return printUsage(DOCTOR_USAGE);
  const { values, positionals } = parseOptions(args, { probe: { type: 'boolean' }, json: { type: 'boolean' } }, DOCTOR_USAGE);
  if (positionals.length > 0) {
    process.stderr.write(`calldata: doctor takes no arguments, got ${JSON.stringify(positionals[0])}\n\n${DOCTOR_USAGE}\n`);
    return 2;
  }
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  const [{ loadDotenv }, { loadConfig }, { ConfigError }, { configurationReport, formatReport }, { terminalSafe }] = await Promise.all([
    import('../config/dotenv.ts'),
    import('../config/config.ts'),
    import('../config/errors.ts'),
    import('./doctor/report.ts'),
    import('../domain/calls.ts'),
  ]);

  const problems: string[] = [];
  let config: Awaited<ReturnType<typeof loadConfig>> | undefined;
  try {
    loadDotenv();
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems.map((p) => `${p.variable}: ${p.message}`));
  }
  const variables = configurationReport();
  const warnings = config?.warnings ?? [];

  let probes: Awaited<ReturnType<typeof import('./doctor/probes.ts').runProbes>> = [];
  if (values.probe && config) {
    const [{ runProbes }, { closeAllBackends }] = await Promise.all([import('./doctor/probes.ts'), import('../storage/select.ts')]);
    probes = await runProbes(config);
    await closeAllBackends();
  }

  if (values.json) {
    process.stdout.write(`${JSON.stringify({ variables, problems, warnings, probes }, null, 2)}\n`);
  } else {
    const out: string[] = formatReport(variables).map(terminalSafe);
    for (const warning of warnings) out.push(`warning: ${terminalSafe(warning)}`);
    for (const problem of problems) out.push(`problem: ${terminalSafe(problem)}`);
    if (values.probe && !config) out.push('probes skipped: fix the problems above first');
    if (values.probe && config && probes.length === 0) out.push('nothing to probe');
    for (const p of probes) {
      out.push(`${p.ok ? 'ok  ' : 'FAIL'}  ${p.kind} ${p.variable} ${terminalSafe(p.target)}${p.ok ? ` (${p.ms} ms)` : `: ${terminalSafe(p.error ?? 'failed')}`}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
  }
  if (problems.length > 0) return 2;
  return probes.some((p) => !p.ok) ? 1 : 0;
}
