/**
 * The `calldata` command.
 *   calldata simulate --room R [--turns N] [--direction inbound|outbound] [--unanswered] [--json]
 *   calldata calls list [filters] [--json|--csv]
 *   calldata calls show <call-id> [--json]
 *   calldata calls recording <call-id>
 *   calldata browse [--port P] [--host H] [--open]
 *
 * Each subcommand lives in its own module, loaded only when run. Expected failures print one
 * line (`calldata: …`) and exit non-zero: 2 for a usage or configuration mistake, 1 when the
 * command could not do its job.
 */

const USAGE = `Usage: calldata <command> [options]

Commands:
  simulate --room R           drive one synthetic call through the real pipeline
  calls list [filters]        your calls, newest first (table, --json or --csv)
  calls show <call-id>        one call: its metadata and the transcript as a conversation
  calls recording <call-id>   a link to the call's recording (valid 15 minutes)
  browse                      a read-only web page of your calls on this machine

Run \`calldata <command> --help\` for a command's options. Every command reads the
environment and ./.env (see .env.example): calls are read from METADATA_LOCATION.`;

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
    default:
      process.stderr.write(`calldata: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
