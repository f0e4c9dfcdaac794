import { CallDataError } from '../errors.ts';

/** Configuration is read once at start; every problem names the variable at fault. */
export class ConfigError extends CallDataError {
  readonly problems: readonly { variable: string; message: string }[];
  constructor(problems: readonly { variable: string; message: string }[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`, { retryable: false });
    this.problems = problems;
  }
}
