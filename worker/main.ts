/**
 * The runnable worker: `npm run worker -- dev` (development) or `npm run worker -- start`
 * (production), LiveKit's usual subcommands. Reads `./.env` (the environment wins over it),
 * then the one configuration (functions/config/config.ts): LiveKit's URL and credentials,
 * LIVEKIT_AGENT_NAME, the queue URLs and the spec's flags. Before the worker registers it
 * validates the configuration and checks that it can work at all (worker/start-checks.ts):
 * every problem is one line naming the variable and the fix, and the exit code is 2.
 *
 * On the embedded default (no CALLDATA_QUEUE_URL) the worker also runs the sweeper: once at
 * start and then periodically, it closes the calls a lost worker left open whose rooms are gone
 * (functions/sweeper/embedded.ts). With a queue, the stack's scheduled sweeper Lambda does that.
 */
import { fileURLToPath } from 'node:url';
import { cli, ServerOptions } from '@livekit/agents';
import { getConfig, type Config } from '../functions/config/config.ts';
import { loadDotenv } from '../functions/config/dotenv.ts';
import { ConfigError } from '../functions/config/errors.ts';
import { logger } from '../functions/shared/logger.ts';
import { loadOptions } from './load.ts';
import { livekitFromArgs, startProblems } from './start-checks.ts';

const agentFile = fileURLToPath(new URL('./agent.ts', import.meta.url));

/** Subcommands that register a worker or run a job, and so need what the checks look for. */
const RUNNING_COMMANDS = new Set(['start', 'dev', 'connect', 'console']);

function stop(lines: readonly string[]): never {
  for (const line of lines) process.stderr.write(`worker: ${line}\n`);
  process.exit(2);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  let config: Config;
  try {
    loadDotenv();
    config = getConfig();
  } catch (error) {
    if (error instanceof ConfigError) stop(error.problems.map((p) => `${p.variable}: ${p.message}`));
    throw error;
  }
  const running = RUNNING_COMMANDS.has(args.find((a) => !a.startsWith('-')) ?? '') && !args.includes('--help') && !args.includes('-h');
  const livekit = livekitFromArgs(config.livekit, args);
  if (running) {
    const problems = startProblems({ livekit, worker: config.worker });
    if (problems.length > 0) stop(problems);
    for (const warning of config.warnings) logger.warn('configuration warning', { warning });
    logger.info('worker configuration', {
      callRecording: config.callRecording,
      saveMetadata: config.saveMetadata,
      saveTranscription: config.saveTranscription,
      hangupCall: config.hangupCall,
      transport: config.queueUrl ? 'sqs' : 'embedded',
      agent: config.worker.agentScript ? 'scripted' : 'inference',
    });
    if (!config.queueUrl) {
      // Never in the way of the worker: loaded, started and run without ever throwing here.
      import('../functions/sweeper/embedded.ts')
        .then(({ startEmbeddedSweeper }) => startEmbeddedSweeper(config))
        .catch((error: unknown) => logger.warn('sweeper not started', { error: error as Error }));
    }
  }
  cli.runApp(
    new ServerOptions({
      agent: agentFile,
      agentName: config.worker.agentName,
      ...(livekit.url ? { wsURL: livekit.url } : {}),
      ...(livekit.apiKey ? { apiKey: livekit.apiKey } : {}),
      ...(livekit.apiSecret ? { apiSecret: livekit.apiSecret } : {}),
      ...loadOptions(config.worker),
      // Jobs may take a while to hand over their final snapshot.
      shutdownProcessTimeout: 60_000,
    }),
  );
}
