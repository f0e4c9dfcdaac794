/**
 * Where a call's files go (functions/domain/render.ts): the room slug, the folder timestamp and
 * the folder chosen for a record, and the times written into documents.
 */
import { describe, expect, it } from 'vitest';
import type { CallState } from '../../functions/contract/record.ts';
import { callIdInFolder, callTimestamp, chooseFolder, formatTime, recordingKey, roomSlug, zoneName } from '../../functions/domain/render.ts';
import { HOSTILE_ROOM_NAMES } from '../support/snapshots.ts';

const AT = Date.UTC(2026, 10, 23, 19, 18, 38, 120);
const DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;

function state(fields: Partial<CallState>): CallState {
  return { callId: 'RM_abcdEFGH1234', writers: {}, lastFactAtMs: AT, ...fields };
}

describe('room slugs', () => {
  it('keeps ordinary room names as they are', () => {
    expect(roomSlug('sip-room_42.a')).toBe('sip-room_42.a');
    expect(roomSlug('日本語')).toBe('日本語');
  });

  it.each(HOSTILE_ROOM_NAMES.map((n) => [JSON.stringify(n).slice(0, 50), n]))('makes %s a single safe path segment', (_label, name) => {
    const slug = roomSlug(name);
    expect(slug).not.toMatch(/[/\\\0]/);
    expect(slug).not.toMatch(/^[.-]/);
    expect(slug).not.toMatch(/\.$/);
    expect(Buffer.byteLength(slug)).toBeLessThanOrEqual(96 + 11);
    expect(slug.length).toBeGreaterThan(0);
  });

  it.each(['-rf', '--help', '-', '.hidden', '...', '-.-'])('never starts %j with "-" or "."', (name) => {
    const slug = roomSlug(name);
    expect(slug).not.toMatch(/^[.-]/);
    expect(slug).toMatch(/~[0-9a-f]{10}$/);
  });

  it.each(['con', 'CON', 'prn', 'aux', 'nul', 'NUL.txt', 'com1', 'COM9.log', 'lpt1', 'LPT1.txt', 'lpt²', 'conin$', 'CONOUT$'])('never names %j a Windows device', (name) => {
    const slug = roomSlug(name);
    expect(slug.split('~')[0]).not.toMatch(DEVICE);
    expect(slug).not.toMatch(DEVICE);
  });

  it('keeps names that only look like device names', () => {
    expect(roomSlug('console')).toBe('console');
    expect(roomSlug('com10')).toBe('com10');
  });

  it('gives different names different slugs, also when they differ only in what had to change', () => {
    const slugs = new Set(HOSTILE_ROOM_NAMES.map(roomSlug));
    expect(slugs.size).toBe(HOSTILE_ROOM_NAMES.length);
    expect(roomSlug('a/b')).not.toBe(roomSlug('a_b'));
    expect(roomSlug('con')).not.toBe(roomSlug('_con'));
    expect(roomSlug('x'.repeat(500))).not.toBe(roomSlug(`${'x'.repeat(499)}y`));
  });
});

describe('call timestamps', () => {
  it('formats the folder timestamp in TIMEZONE to the millisecond, followed by the whole call id', () => {
    expect(callTimestamp(AT, 'Asia/Kolkata', 'RM_abcdEFGH1234')).toBe('20261124T004838.120_RM_abcdEFGH1234');
  });

  it('sorts chronologically as text', () => {
    const times = [0, 1, 999, 1_000, 59_999, 60_000, 3_600_000, 86_400_000].map((d) => callTimestamp(Date.UTC(2026, 0, 1) + d, 'UTC', 'id'));
    expect([...times].sort()).toEqual(times);
  });

  it('never gives two calls the same timestamp, even in the same room and millisecond', () => {
    const ids = ['RM_aaaa1111', 'RM_bbbb1111', 'RM_aaaa11111', `RM_${'x'.repeat(100)}a`, `RM_${'x'.repeat(100)}b`, `job_${'y'.repeat(123)}`];
    const stamps = ids.map((id) => callTimestamp(AT, 'UTC', id));
    expect(new Set(stamps).size).toBe(ids.length);
  });

  it('puts long call ids in folders as a prefix and a hash, never longer than 64 characters', () => {
    const long = `RM_${'z'.repeat(125)}`;
    expect(callIdInFolder('RM_short')).toBe('RM_short');
    expect(callIdInFolder(long)).toMatch(/^RM_z{21}~[0-9a-f]{32}$/);
    expect(callIdInFolder(long).length).toBeLessThanOrEqual(64);
  });

  it('writes ISO 8601 times with the zone offset', () => {
    expect(formatTime(AT, 'Asia/Kolkata')).toBe('2026-11-24T00:48:38.120+05:30');
    expect(formatTime(Date.UTC(2026, 6, 1, 12, 0, 0, 0), 'America/New_York')).toBe('2026-07-01T08:00:00.000-04:00');
    expect(zoneName('Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(zoneName('system')).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
  });
});

describe('the folder chosen for a call', () => {
  it('is <room slug>/<timestamp> once the record knows its room and start', () => {
    expect(chooseFolder(state({ roomName: 'demo', startedAtMs: AT }), 'UTC')).toBe('demo/20261123T191838.120_RM_abcdEFGH1234');
    expect(chooseFolder(state({ roomName: '../../etc', startedAtMs: AT }), 'UTC')?.split('/')).toEqual([roomSlug('../../etc'), '20261123T191838.120_RM_abcdEFGH1234']);
  });

  it('is not chosen while the room or the start is unknown', () => {
    expect(chooseFolder(state({ roomName: 'demo' }), 'UTC')).toBeUndefined();
    expect(chooseFolder(state({ startedAtMs: AT }), 'UTC')).toBeUndefined();
  });

  it('names the recording as the spec does, inside the folder', () => {
    const folder = chooseFolder(state({ roomName: 'demo', startedAtMs: AT }), 'UTC') ?? '';
    expect(recordingKey(folder)).toBe('demo/20261123T191838.120_RM_abcdEFGH1234/call_demo_20261123T191838.120_RM_abcdEFGH1234.ogg');
  });
});
