/** Log-safe forms of secrets and personal data. */

/** `+14155550123` → `+1415*****23`: enough to tell calls apart, not enough to dial. */
export function redactPhone(number: string | undefined | null): string | undefined {
  if (!number) return undefined;
  const digits = number.replace(/[^0-9+]/g, '');
  if (digits.length <= 4) return '*'.repeat(digits.length);
  const keepStart = Math.min(5, Math.floor(digits.length / 3));
  return digits.slice(0, keepStart) + '*'.repeat(digits.length - keepStart - 2) + digits.slice(-2);
}

/**
 * A location as doctor shows it: the whole URL, its password masked —
 * `scheme://user:secret@host` → `scheme://user:***@host`, and `?password=…`-style parameters.
 */
export function maskUrlPassword(value: string): string {
  return value
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:***@')
    .replace(/([?&](?:password|pass|pwd)=)[^&#]*/gi, '$1***');
}

/** A connection URL without its password (and without query parameters, which may hold tokens). */
export function redactUrl(location: string): string {
  try {
    const url = new URL(location);
    if (url.password) url.password = '***';
    url.search = '';
    return url.toString();
  } catch {
    return location.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }
}
