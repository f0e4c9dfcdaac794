import { describe, expect, it } from 'vitest';
import { callPaths, callTimestamp, formatTime, roomSlug } from '../../functions/storage/paths.ts';
import { HOSTILE_ROOM_NAMES } from '../support/snapshots.ts';

describe('room slugs', () => {
  it('keeps ordinary room names as they are', () => {
    expect(roomSlug('sip-room_42.a')).toBe('sip-room_42.a');
  });

  it.each(HOSTILE_ROOM_NAMES.map((n) => [JSON.stringify(n).slice(0, 50), n]))('makes %s a single safe path segment', (_label, name) => {
    const slug = roomSlug(name);
    expect(slug).not.toMatch(/[/\\\0]/);
    expect(slug.startsWith('.')).toBe(false);
    expect(Buffer.byteLength(slug)).toBeLessThanOrEqual(96 + 11);
    expect(slug.length).toBeGreaterThan(0);
  });

  it('gives different hostile names different slugs', () => {
    const slugs = new Set(HOSTILE_ROOM_NAMES.map(roomSlug));
    expect(slugs.size).toBe(HOSTILE_ROOM_NAMES.length);
    expect(roomSlug('a/b')).not.toBe(roomSlug('a_b'));
  });

  it('keeps letters of any script', () => {
    expect(roomSlug('日本語')).toBe('日本語');
  });
});

describe('call timestamps', () => {
  it('formats the folder timestamp in TIMEZONE to the millisecond with the call id tail', () => {
    expect(callTimestamp(Date.UTC(2026, 10, 23, 19, 18, 38, 120), 'Asia/Kolkata', 'RM_abcdEFGH1234')).toBe('20261124T004838.120_EFGH1234');
  });

  it('sorts chronologically as text', () => {
    const times = [0, 999, 1_000, 59_999, 60_000, 3_600_000, 86_400_000].map((d) => callTimestamp(Date.UTC(2026, 0, 1) + d, 'UTC', 'id'));
    expect([...times].sort()).toEqual(times);
  });

  it('never gives two calls in the same room and second the same folder', () => {
    const at = Date.UTC(2026, 10, 23, 10, 0, 0, 0);
    expect(callPaths('room', at, 'UTC', 'call-aaaa1111').folder).not.toBe(callPaths('room', at, 'UTC', 'call-bbbb2222').folder);
  });

  it('writes ISO 8601 times with the zone offset', () => {
    expect(formatTime(Date.UTC(2026, 10, 23, 19, 18, 38, 120), 'Asia/Kolkata')).toBe('2026-11-24T00:48:38.120+05:30');
    expect(formatTime(Date.UTC(2026, 6, 1, 12, 0, 0, 0), 'America/New_York')).toBe('2026-07-01T08:00:00.000-04:00');
  });

  it('names files as the spec does', () => {
    const paths = callPaths('demo', Date.UTC(2026, 10, 23, 19, 18, 38, 120), 'UTC', 'x12345678');
    expect(paths).toMatchObject({
      folder: 'demo/20261123T191838.120_12345678',
      metadataFile: 'call_metadata_demo_20261123T191838.120_12345678.json',
      transcriptionFile: 'call_transcription_demo_20261123T191838.120_12345678.json',
      recordingFile: 'call_demo_20261123T191838.120_12345678.ogg',
    });
  });
});
