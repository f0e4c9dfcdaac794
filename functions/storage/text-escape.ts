/**
 * Reversible escaping for characters a database's JSON type refuses. PostgreSQL's jsonb
 * cannot hold NUL or unpaired UTF-16 surrogates; MariaDB's JSON check refuses unpaired
 * surrogates. Untrusted room names and transcripts (text cut mid-emoji) may contain them.
 * Each such unit becomes MARK + 4 hex digits; MARK itself is escaped too, so decoding is exact.
 */

/** A private-use code point: real text almost never needs it doubled. */
const MARK = '\uE000';
const ESCAPED_ALL = /\uE000([0-9a-f]{4})/g;

export interface TextEscaper {
  /** Whether the text holds a character this database cannot store. */
  needs(text: string): boolean;
  escape(text: string): string;
  unescape(text: string): string;
  /** Whether any string of a JSON value (object keys included) needs escaping. */
  needsAny(value: unknown): boolean;
  /** Applies escape or unescape to every string of a JSON value, object keys included. */
  mapStrings(value: unknown, map: (text: string) => string): unknown;
}

function mapStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((item: unknown) => mapStrings(item, map));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [map(key), mapStrings(item, map)]));
  }
  return value;
}

/** `unstorable` is a character class body, e.g. '\\u0000\\p{Cs}' for jsonb. */
export function textEscaper(unstorable: string): TextEscaper {
  const one = new RegExp(`[\\uE000${unstorable}]`, 'u');
  const all = new RegExp(`[\\uE000${unstorable}]`, 'gu');
  const needs = (text: string) => one.test(text);
  const needsAny = (value: unknown): boolean => {
    if (typeof value === 'string') return needs(value);
    if (Array.isArray(value)) return value.some((item: unknown) => needsAny(item));
    if (value !== null && typeof value === 'object') return Object.entries(value).some(([key, item]) => needs(key) || needsAny(item));
    return false;
  };
  return {
    needs,
    needsAny,
    escape: (text) => text.replace(all, (unit) => MARK + unit.charCodeAt(0).toString(16).padStart(4, '0')),
    unescape: (text) => text.replace(ESCAPED_ALL, (_match, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    mapStrings,
  };
}
