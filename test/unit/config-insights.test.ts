/**
 * The two settings of call insights: SAVE_TOOL_CALLS (off by default) and CALLDATA_PRICE_TABLE
 * (inline JSON or a file path), read once with the rest of the configuration; a bad price table
 * is an error that names the variable.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { ConfigError } from '../../functions/config/errors.ts';

const TABLE = { currency: 'EUR', models: { 'openai/gpt-4.1-mini': { promptPer1M: 0.4, completionPer1M: 1.6 } } };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'calldata-prices-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function problemsOf(env: Record<string, string>): { variable: string; message: string }[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('call insights configuration', () => {
  it('keeps tool calls off unless SAVE_TOOL_CALLS says otherwise, and has no price table by default', () => {
    expect(loadConfig({})).toMatchObject({ saveToolCalls: false });
    expect(loadConfig({}).priceTable).toBeUndefined();
    expect(loadConfig({ SAVE_TOOL_CALLS: 'yes' }).saveToolCalls).toBe(true);
    expect(problemsOf({ SAVE_TOOL_CALLS: 'sometimes' }).map((p) => p.variable)).toEqual(['SAVE_TOOL_CALLS']);
  });

  it('reads the price table inline or from a file', async () => {
    const file = join(dir, 'prices.json');
    await writeFile(file, JSON.stringify(TABLE));
    expect(loadConfig({ CALLDATA_PRICE_TABLE: JSON.stringify(TABLE) }).priceTable).toEqual(TABLE);
    expect(loadConfig({ CALLDATA_PRICE_TABLE: file }).priceTable).toEqual(TABLE);
  });

  it('names CALLDATA_PRICE_TABLE when the table cannot be read or is not a price table', () => {
    for (const value of [join(dir, 'missing.json'), '{"models": ', '{"models": {"m": {"perBanana": 1}}}']) {
      const problems = problemsOf({ CALLDATA_PRICE_TABLE: value });
      expect(problems.map((p) => p.variable), value).toEqual(['CALLDATA_PRICE_TABLE']);
    }
  });
});
