import { describe, expect, it } from 'vitest';
import { textEscaper } from '../../functions/storage/text-escape.ts';

const jsonb = textEscaper('\\u0000\\p{Cs}');

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
    expect(/[\u0000\p{Cs}]/u.test(JSON.stringify(stored))).toBe(false);
    expect(/[\u0000\p{Cs}]/u.test(JSON.stringify(doc))).toBe(true);
    expect(jsonb.mapStrings(stored, jsonb.unescape)).toEqual(doc);
  });
});
