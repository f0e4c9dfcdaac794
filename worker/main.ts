/**
 * The runnable worker: `npm run worker -- dev` (development) or `npm run worker -- start`
 * (production), LiveKit's usual subcommands. Reads LIVEKIT_URL / LIVEKIT_API_KEY /
 * LIVEKIT_API_SECRET, LIVEKIT_AGENT_NAME (explicit dispatch), the queue URLs and the spec's
 * flags (CALL_RECORDING, SAVE_METADATA, SAVE_TRANSCRIPTION, HANGUP_CALL, TIMEZONE, ...) from
 * the environment. The configuration is validated here, before the worker registers, so a
 * bad variable stops it at once with the variable's name.
 *
 * On the embedded default (no CALLDATA_QUEUE_URL) the worker also runs the sweeper: once at
 * start and then periodically, it closes the calls a lost worker left open whose rooms are gone
 * (functions/sweeper/embedded.ts). With a queue, the stack's scheduled sweeper Lambda does that.
 */
import { fileURLToPath } from 'node:url';
import { cli, ServerOptions } from '@livekit/agents';
import { getConfig, type Config } from '../functions/config/config.ts';
import { ConfigError } from '../functions/config/errors.ts';
import { logger } from '../functions/shared/logger.ts';
import { loadOptions } from './load.ts';

const agentFile = fileURLToPath(new URL('./agent.ts', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let load: ReturnType<typeof loadOptions> = {};
  let config: Config;
  try {
    load = loadOptions(process.env);
    config = getConfig();
    for (const warning of config.warnings) logger.warn('configuration warning', { warning });
    logger.info('worker configuration', {
      callRecording: config.callRecording,
      saveMetadata: config.saveMetadata,
      saveTranscription: config.saveTranscription,
      hangupCall: config.hangupCall,
      transport: config.queueUrl ? 'sqs' : 'embedded',
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  if (!config.queueUrl) {
    // Never in the way of the worker: loaded, started and run without ever throwing here.
    import('../functions/sweeper/embedded.ts')
      .then(({ startEmbeddedSweeper }) => startEmbeddedSweeper(config))
      .catch((error: unknown) => logger.warn('sweeper not started', { error: error as Error }));
  }
  cli.runApp(
    new ServerOptions({
      agent: agentFile,
      agentName: process.env.LIVEKIT_AGENT_NAME ?? '',
      ...load,
      // Jobs may take a while to hand over their final snapshot.
      shutdownProcessTimeout: 60_000,
    }),
  );
}
