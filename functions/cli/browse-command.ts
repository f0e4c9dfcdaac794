/**
 * `calldata browse [--port P] [--host H] [--open]`: serves the read-only call pages
 * (functions/cli/browse/server.ts) until interrupted.
 */
import { spawn } from 'node:child_process';
import { cliConfig, fail, parseOptions, printUsage, wantsHelp } from './common.ts';
import { reportFailure } from './errors.ts';

export const BROWSE_USAGE = `Usage: calldata browse [--port P] [--host H] [--open]

Serves a read-only web page of your calls: the list (filters, paging, search by call id,
number or room), each call (metadata, the transcript as a conversation, the recording) and an
overview (calls per day, answer rate, median duration). Reads the same locations as
\`calldata calls\`; stops with Ctrl+C.

  --port P    port to listen on (default: a free port)
  --host H    address to bind (default 127.0.0.1). Any other address requires the token
              printed at start, given once as ?token=… (then kept in a cookie)
  --open      open the page in the default browser`;

function openInBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(command, args, { detached: true, stdio: 'ignore' });
    child.on('error', () => process.stderr.write(`calldata: could not open a browser (${command}); open ${url} yourself\n`));
    child.unref();
  } catch {
    process.stderr.write(`calldata: could not open a browser; open ${url} yourself\n`);
  }
}

export async function browseCommand(args: string[]): Promise<number> {
  if (wantsHelp(args)) return printUsage(BROWSE_USAGE);
  const { values, positionals } = parseOptions(
    args,
    {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      open: { type: 'boolean', default: false },
    },
    BROWSE_USAGE,
  );
  if (positionals.length > 0) fail(`unexpected argument ${JSON.stringify(positionals[0])}\n\n${BROWSE_USAGE}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) fail('--port must be an integer from 0 to 65535');
  const host = values.host.trim();
  if (!host) fail('--host must not be empty');

  const config = await cliConfig();
  const { startBrowseServer } = await import('./browse/server.ts');
  const { shownLocation, listLocation } = await import('../query/reader.ts');
  const { closeAllBackends } = await import('../storage/select.ts');
  let server;
  try {
    server = await startBrowseServer(config, { host, port });
  } catch (error) {
    reportFailure(`browse could not listen on ${host}:${port}`, error);
    return 1;
  }
  process.stdout.write(`calldata browse: calls from ${shownLocation(listLocation(config))}\n`);
  process.stdout.write(`  ${server.openUrl}\n`);
  if (server.token) process.stdout.write(`  Bound to ${host}: the page asks for this token once: ${server.token}\n`);
  process.stdout.write('  Read-only. Ctrl+C stops it.\n');
  if (values.open) openInBrowser(server.openUrl);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await closeAllBackends();
  return 0;
}
