/**
 * Running the CLI (or any command) as a user would, for the tests that check its output: a
 * non-zero exit is a result to assert on, not a thrown error.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args` to its end and returns its exit code and output. */
export async function runCommand(file: string, args: readonly string[], options: { cwd: string; env: Record<string, string>; timeout: number }): Promise<Ran> {
  try {
    const { stdout, stderr } = await execFileAsync(file, [...args], options);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A port nothing listens on: bound once by us, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
