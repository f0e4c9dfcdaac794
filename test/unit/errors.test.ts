/**
 * Proves there is one error root: every error class the project exports extends CallDataError,
 * carries `retryable` and `cause`, and the one `isRetryable` reads them.
 */
import { describe, expect, it } from 'vitest';
import { CallDataError, isRetryable } from '../../functions/errors.ts';

const MODULES = [
  '../../functions/contract/errors.ts',
  '../../functions/storage/errors.ts',
  '../../functions/transport/errors.ts',
  '../../functions/recording/errors.ts',
  '../../functions/config/errors.ts',
  '../../functions/sweeper/sweep.ts',
  '../../functions/cli/simulate.ts',
  '../../functions/query/reader.ts',
  '../../functions/domain/calls.ts',
  '../../infra/settings.ts',
];

describe('one error root', () => {
  it('every exported error class extends CallDataError', async () => {
    // Prepare / Act: collect every exported class whose name ends in Error
    const classes: [string, unknown][] = [];
    for (const path of MODULES) {
      const module = (await import(path)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(module)) if (/^[A-Z]\w*Error$/.test(name) && typeof value === 'function') classes.push([`${path}#${name}`, value]);
    }
    // Assess
    expect(classes.length).toBeGreaterThan(15);
    const strays = classes.filter(([, value]) => !((value as { prototype: unknown }).prototype instanceof CallDataError)).map(([name]) => name);
    expect(strays).toEqual([]);
  });

  it('keeps retryable and cause, and names the subclass', () => {
    class DownError extends CallDataError {}
    const cause = new Error('ECONNREFUSED');
    const error = new DownError('store down', { retryable: true, cause });
    expect(error.name).toBe('DownError');
    expect(error.cause).toBe(cause);
    expect(isRetryable(error)).toBe(true);
    expect(isRetryable(new CallDataError('bad input'))).toBe(false);
  });

  it('reads retryable from foreign errors only when it is literally true', () => {
    expect(isRetryable(Object.assign(new Error('x'), { retryable: true }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('x'), { retryable: 'yes' }))).toBe(false);
    expect(isRetryable(new Error('x'))).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
  });
});
