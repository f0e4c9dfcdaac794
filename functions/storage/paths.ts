/**
 * Names derived from untrusted room names. The original name stays verbatim inside the
 * JSON documents; paths, keys and file names only ever see the safe slug built here.
 */
import { createHash } from 'node:crypto';
import { DateTime } from 'luxon';

const MAX_SLUG_BYTES = 96;

/**
 * A path segment that cannot escape its parent: letters and digits of any script, `.`, `_`, `-`.
 * Anything else becomes `_`; a name that had to change or be shortened gets a hash suffix so
 * two different hostile names never share a slug.
 */
export function roomSlug(roomName: string): string {
  const normalized = roomName.normalize('NFC');
  let slug = normalized.replace(/[^\p{L}\p{N}._-]/gu, '_').replace(/^\.+/, (dots) => '_'.repeat(dots.length));
  let changed = slug !== roomName;
  if (Buffer.byteLength(slug, 'utf8') > MAX_SLUG_BYTES) {
    const chars = Array.from(slug);
    while (Buffer.byteLength(chars.join(''), 'utf8') > MAX_SLUG_BYTES) chars.pop();
    slug = chars.join('');
    changed = true;
  }
  if (slug.length === 0) {
    slug = 'room';
    changed = true;
  }
  if (changed) slug = `${slug}~${createHash('sha256').update(roomName, 'utf8').digest('hex').slice(0, 10)}`;
  return slug;
}

/**
 * The per-call folder timestamp: start time in TIMEZONE to the millisecond, then the call id's
 * tail, so it sorts chronologically as text and two calls in one room never share a folder.
 */
export function callTimestamp(startedAtMs: number, timezone: string, callId: string): string {
  const zone = timezone === 'system' ? 'local' : timezone;
  const time = DateTime.fromMillis(startedAtMs, { zone }).toFormat("yyyyLLdd'T'HHmmss.SSS");
  const suffix = callId.replace(/[^A-Za-z0-9]/g, '').slice(-8) || 'call';
  return `${time}_${suffix}`;
}

/** ISO 8601 with the zone's offset, e.g. 2026-11-24T00:48:38.120+05:30. */
export function formatTime(epochMs: number, timezone: string): string {
  const zone = timezone === 'system' ? 'local' : timezone;
  return DateTime.fromMillis(epochMs, { zone }).toISO({ includeOffset: true, suppressMilliseconds: false }) ?? new Date(epochMs).toISOString();
}

export interface CallPaths {
  slug: string;
  timestamp: string;
  /** `<room>/<timestamp>` relative folder (S3 prefix or local sub-folder). */
  folder: string;
  metadataFile: string;
  transcriptionFile: string;
  recordingFile: string;
}

export function callPaths(roomName: string, startedAtMs: number, timezone: string, callId: string): CallPaths {
  const slug = roomSlug(roomName);
  const timestamp = callTimestamp(startedAtMs, timezone, callId);
  return {
    slug,
    timestamp,
    folder: `${slug}/${timestamp}`,
    metadataFile: `call_metadata_${slug}_${timestamp}.json`,
    transcriptionFile: `call_transcription_${slug}_${timestamp}.json`,
    recordingFile: `call_${slug}_${timestamp}.ogg`,
  };
}
