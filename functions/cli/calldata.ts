/**
 * The `calldata` command.
 *   calldata simulate --room R [--turns N] [--direction inbound|outbound] [--unanswered] [--json]
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = `Usage: calldata simulate --room <name> [--turns N] [--direction inbound|outbound] [--unanswered] [--wait-ms MS] [--json]

Drives one synthetic call through the real pipeline with the current environment
(in-process when CALLDATA_QUEUE_URL is unset, otherwise through SQS) and prints where
each artifact landed. Reads ./.env when present. See .env.example for every variable.`;

function fail(message: string, code = 2): never {
  process.stderr.write(`calldata: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  if (command !== 'simulate') fail(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);

  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        room: { type: 'string' },
        turns: { type: 'string', default: '3' },
        direction: { type: 'string', default: 'inbound' },
        unanswered: { type: 'boolean', default: false },
        'wait-ms': { type: 'string', default: '20000' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n\n${USAGE}`);
  }
  const room = values.room;
  if (!room) fail(`--room is required\n\n${USAGE}`);
  const turns = Number(values.turns);
  if (!Number.isInteger(turns) || turns < 1 || turns > 10_000) fail('--turns must be an integer from 1 to 10000');
  if (values.direction !== 'inbound' && values.direction !== 'outbound') fail('--direction must be inbound or outbound');
  const waitMs = Number(values['wait-ms']);
  if (!Number.isInteger(waitMs) || waitMs < 0) fail('--wait-ms must be a non-negative integer');

  if (existsSync('.env')) process.loadEnvFile('.env');
  // The pipeline's structured logs stay quiet unless asked for; the CLI prints its own summary.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';

  const { loadConfig } = await import('../config/config.ts');
  const { ConfigError } = await import('../config/errors.ts');
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.problems.map((p) => `${p.variable}: ${p.message}`).join('\n'));
    throw error;
  }
  for (const warning of config.warnings) process.stderr.write(`calldata: warning: ${warning}\n`);

  const { simulateCall } = await import('./simulate.ts');
  const { closeAllBackends } = await import('../storage/select.ts');
  const { redactUrl } = await import('../shared/redact.ts');
  try {
    const result = await simulateCall(config, { room, turns, direction: values.direction, unanswered: values.unanswered, waitMs });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const how = result.transport === 'embedded' ? 'the embedded pipeline (in-process)' : `SQS ${redactUrl(config.queueUrl ?? '')}`;
      process.stdout.write(
        `Simulated ${values.unanswered ? 'unanswered' : 'answered'} ${values.direction} call ${result.callId} in room ${JSON.stringify(room)}\n` +
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
    process.stderr.write(`calldata: simulate failed: ${describe(error)}\n`);
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

/** One line: the error's message and its causes, without repeating them. */
function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    const text = current.message.replace(/\s*\n\s*/g, ' ');
    if (text && !parts.some((part) => part.includes(text))) parts.push(text);
    // A SimulateError already names its cause.
    if (current.name === 'SimulateError') break;
    current = current.cause;
  }
  return parts.length > 0 ? parts.join(': ') : String(error);
}

process.exitCode = await main(process.argv.slice(2));
