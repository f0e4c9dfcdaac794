import { describe, expect, it } from 'vitest';
import { textEscaper } from '../../functions/storage/text-escape.ts';

const jsonb = textEscaper('\\u0000\\p{Cs}');

/** Every string of a JSON value, keys included. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([key, item]) => [key, ...strings(item)]);
  return [];
}

describe('reversible text escaping', () => {
  it.each(['plain', 'nul\u0000byte', 'lone \uD83D surrogate', 'mark \uE000 itself', '\uE0000041 looks escaped', '📞 whole emoji'])('round-trips %j exactly', (text) => {
    expect(jsonb.unescape(jsonb.escape(text))).toBe(text);
  });

  it('leaves ordinary text untouched and flags only what the database refuses', () => {
    expect(jsonb.escape('📞 日本語')).toBe('📞 日本語');
    expect(jsonb.needs('a\u0000b')).toBe(true);
    expect(jsonb.needs('📞')).toBe(false);
    expect(jsonb.escape('a\u0000b')).not.toContain('\u0000');
  });

  it('escapes keys and nested values of a JSON document', () => {
    const doc = { 'k\u0000': ['x\uD800', { y: 'ok' }], n: 1, b: null };
    expect(jsonb.needsAny(doc)).toBe(true);
    const stored = jsonb.mapStrings(doc, jsonb.escape);
    // What reaches the database holds no NUL and no lone surrogate.
    expect(strings(stored).some((t) => /[\u0000\p{Cs}]/u.test(t))).toBe(false);
    expect(strings(doc).some((t) => /[\u0000\p{Cs}]/u.test(t))).toBe(true);
    expect(jsonb.mapStrings(stored, jsonb.unescape)).toEqual(doc);
  });
});
