/**
 * The `calldata` command.
 *   calldata simulate --room R [--turns N] [--direction inbound|outbound] [--unanswered] [--json]
 *   calldata calls list [filters] [--json|--csv]
 *   calldata calls show <call-id> [--json]
 *   calldata calls recording <call-id>
 *   calldata browse [--port P] [--host H] [--open]
 *   calldata doctor [--probe] [--json]
 *
 * Each subcommand lives in its own module, loaded only when run. Expected failures print one
 * line (`calldata: …`) and exit non-zero: 2 for a usage or configuration mistake, 1 when the
 * command could not do its job. The global `--verbose` adds each failure's causes and stacks.
 */
import { reportFailure, setVerbose } from './errors.ts';

const USAGE = `Usage: calldata <command> [options]

Commands:
  simulate --room R           drive one synthetic call through the real pipeline
  calls list [filters]        your calls, newest first (table, --json or --csv)
  calls show <call-id>        one call: its metadata and the transcript as a conversation
  calls recording <call-id>   a link to the call's recording (valid 15 minutes)
  browse                      a read-only web page of your calls on this machine
  doctor [--probe]            the effective configuration; --probe checks every connection

Run \`calldata <command> --help\` for a command's options. Every command reads the
environment and ./.env (see .env.example): calls are read from METADATA_LOCATION.

Global option:
  --verbose                   with a failure, show its causes and stack traces`;

/** Takes the global flags out of the arguments (anywhere before a `--`). */
function globalFlags(argv: readonly string[]): { args: string[]; verbose: boolean } {
  const end = argv.indexOf('--');
  const flags = end === -1 ? argv : argv.slice(0, end);
  const rest = end === -1 ? [] : argv.slice(end);
  return { args: [...flags.filter((arg) => arg !== '--verbose'), ...rest], verbose: flags.includes('--verbose') };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'simulate':
      return (await import('./simulate-command.ts')).simulateCommand(rest);
    case 'calls':
      return (await import('./calls-command.ts')).callsCommand(rest);
    case 'browse':
      return (await import('./browse-command.ts')).browseCommand(rest);
    case 'doctor':
      return (await import('./doctor-command.ts')).doctorCommand(rest);
    default:
      process.stderr.write(`calldata: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
      return 2;
  }
}

const { args, verbose } = globalFlags(process.argv.slice(2));
setVerbose(verbose);
// Node prints a process warning over several lines (the AWS SDK's notice about older Node
// versions is nine); the CLI says each in one line, and in full with --verbose.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  process.stderr.write(verbose ? `${warning.stack ?? warning.message}\n` : `calldata: warning: ${warning.message.replace(/\s*\n\s*/g, ' ').trim()}\n`);
});
try {
  process.exitCode = await main(args);
} catch (error) {
  // Commands report their expected failures themselves; this is the line for anything else.
  reportFailure(`${args[0] ?? 'calldata'} failed`, error);
  process.exitCode = 1;
}
