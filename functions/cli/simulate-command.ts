/**
 * `calldata simulate --room R [--turns N] [--direction inbound|outbound] [--unanswered] [--wait-ms MS] [--json]`
 */
import { cliConfig, fail, parseOptions, printUsage, wantsHelp } from './common.ts';
import { reportFailure } from './errors.ts';

export const SIMULATE_USAGE = `Usage: calldata simulate --room <name> [--turns N] [--direction inbound|outbound] [--unanswered] [--wait-ms MS] [--json]

Drives one synthetic call through the real pipeline with the current environment
(in-process when CALLDATA_QUEUE_URL is unset, otherwise through SQS) and prints where
each artifact landed. Reads ./.env when present. See .env.example for every variable.`;

export async function simulateCommand(args: string[]): Promise<number> {
  if (wantsHelp(args)) return printUsage(SIMULATE_USAGE);
  const { values, positionals } = parseOptions(
    args,
    {
      room: { type: 'string' },
      turns: { type: 'string', default: '3' },
      direction: { type: 'string', default: 'inbound' },
      unanswered: { type: 'boolean', default: false },
      'wait-ms': { type: 'string', default: '20000' },
      json: { type: 'boolean', default: false },
    },
    SIMULATE_USAGE,
  );
  if (positionals.length > 0) fail(`unexpected argument ${JSON.stringify(positionals[0])}\n\n${SIMULATE_USAGE}`);
  const room = values.room;
  if (!room) fail(`--room is required\n\n${SIMULATE_USAGE}`);
  const turns = Number(values.turns);
  if (!Number.isInteger(turns) || turns < 1 || turns > 10_000) fail('--turns must be an integer from 1 to 10000');
  if (values.direction !== 'inbound' && values.direction !== 'outbound') fail('--direction must be inbound or outbound');
  const direction = values.direction;
  const waitMs = Number(values['wait-ms']);
  if (!Number.isInteger(waitMs) || waitMs < 0) fail('--wait-ms must be a non-negative integer');

  const config = await cliConfig();
  const { simulateCall } = await import('./simulate.ts');
  const { closeAllBackends } = await import('../storage/select.ts');
  const { redactUrl } = await import('../shared/redact.ts');
  try {
    const result = await simulateCall(config, { room, turns, direction, unanswered: values.unanswered, waitMs });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const how = result.transport === 'embedded' ? 'the embedded pipeline (in-process)' : `SQS ${redactUrl(config.queueUrl ?? '')}`;
      process.stdout.write(
        `Simulated ${values.unanswered ? 'unanswered' : 'answered'} ${direction} call ${result.callId} in room ${JSON.stringify(room)}\n` +
          `  ${result.messages.length} messages sent through ${how}\n`,
      );
      for (const a of result.artifacts) {
        process.stdout.write(`  ${a.kind.padEnd(14)} ${a.stored ? a.location : `not stored yet${a.location ? ` (incomplete at ${a.location})` : ''}`}\n`);
      }
      for (const note of result.notes) process.stdout.write(`  note: ${note}\n`);
    }
    return result.artifacts.every((a) => a.stored) ? 0 : 1;
  } catch (error) {
    // Expected failures (a backend or the queue unreachable) are one plain line, never a stack trace.
    reportFailure('simulate failed', error);
    return 1;
  } finally {
    if (config.queueUrl === undefined) {
      // The embedded pipeline may still run recording work in the background.
      const { drainEmbedded } = await import('../transport/embedded-sink.ts');
      await drainEmbedded(10_000);
    }
    await closeAllBackends();
  }
}
