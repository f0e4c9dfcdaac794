/**
 * The runnable worker: `npm run worker -- dev` (development) or `npm run worker -- start`
 * (production), LiveKit's usual subcommands. Reads LIVEKIT_URL / LIVEKIT_API_KEY /
 * LIVEKIT_API_SECRET, LIVEKIT_AGENT_NAME (explicit dispatch), the queue URLs and the spec's
 * flags (CALL_RECORDING, SAVE_METADATA, SAVE_TRANSCRIPTION, HANGUP_CALL, TIMEZONE, ...) from
 * the environment. The configuration is validated here, before the worker registers, so a
 * bad variable stops it at once with the variable's name.
 */
import { fileURLToPath } from 'node:url';
import { cli, ServerOptions } from '@livekit/agents';
import { getConfig } from '../functions/config/config.ts';
import { ConfigError } from '../functions/config/errors.ts';
import { logger } from '../functions/shared/logger.ts';
import { loadOptions } from './load.ts';

const agentFile = fileURLToPath(new URL('./agent.ts', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let load: ReturnType<typeof loadOptions> = {};
  try {
    load = loadOptions(process.env);
    const config = getConfig();
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
