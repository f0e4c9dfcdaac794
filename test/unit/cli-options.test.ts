/**
 * The CLI's option parsing: a value that starts with `-` after an option that takes a value
 * (`--room -rf`) is that option's value, which node:util's parseArgs alone refuses as ambiguous;
 * one of the command's own options in that place is still reported as a mistake.
 */
import fc from 'fast-check';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { describe, expect, it } from 'vitest';
import { joinDashValues } from '../../functions/cli/common.ts';

const OPTIONS = {
  room: { type: 'string' },
  port: { type: 'string', short: 'p' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsOptionsConfig;

function parse(args: string[]) {
  return parseArgs({ args: joinDashValues(args, OPTIONS), options: OPTIONS, strict: true, allowPositionals: true });
}

describe('joinDashValues', () => {
  it('takes a dash-led value for an option that takes one, long or short', () => {
    // Act
    const long = parse(['--room', '-rf', '--json']);
    const short = parse(['-p', '-1']);
    // Assess
    expect(long.values).toEqual({ room: '-rf', json: true });
    expect(short.values).toEqual({ port: '-1' });
  });

  it('leaves a known option in the value position to parseArgs, which reports it', () => {
    // Act + Assess
    expect(() => parse(['--room', '--json'])).toThrow(/ambiguous/);
    expect(() => parse(['--room', '--help'])).toThrow(/ambiguous/);
    expect(() => parse(['--room', '-p'])).toThrow(/ambiguous/);
  });

  it('keeps everything after -- as positionals and changes nothing else', () => {
    // Act
    const parsed = parse(['--json', '--', '--room', '-rf']);
    // Assess
    expect(parsed.values).toEqual({ json: true });
    expect(parsed.positionals).toEqual(['--room', '-rf']);
    expect(joinDashValues(['--room', 'plain', 'x', '--json'], OPTIONS)).toEqual(['--room', 'plain', 'x', '--json']);
  });

  it('gives back any room name exactly, whether written --room V or --room=V', () => {
    const known = new Set(['--room', '--port', '-p', '--json', '--help', '-h', '--']);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }).filter((value) => !known.has(value.split('=')[0] ?? value)),
        (value) => {
          // Act
          const spaced = parse(['--room', value]);
          const joined = parse([`--room=${value}`]);
          // Assess
          expect(spaced.values.room).toBe(value);
          expect(joined.values.room).toBe(value);
        },
      ),
    );
  });
});
