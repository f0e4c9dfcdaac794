import { describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshot, MAX_WIRE_BYTES, nextSequence, parseSnapshot, snapshotSequence } from '../../functions/contract/snapshot.ts';
import { InvalidSnapshotError, UnsupportedVersionError } from '../../functions/contract/errors.ts';
import { buildSnapshot } from '../support/snapshots.ts';

describe('snapshot contract', () => {
  it('round-trips a snapshot through encode and decode unchanged', () => {
    const snapshot = buildSnapshot({ kind: 'ended', turns: 3 });
    expect(decodeSnapshot(encodeSnapshot(snapshot))).toEqual(snapshot);
  });

  it('rejects an unknown schema version with UnsupportedVersionError', () => {
    const body = JSON.stringify({ ...buildSnapshot(), v: 2 });
    expect(() => decodeSnapshot(body)).toThrow(UnsupportedVersionError);
  });

  it('rejects text that is not JSON with InvalidSnapshotError', () => {
    expect(() => decodeSnapshot('{"v":1,')).toThrow(/not JSON/);
  });

  it('rejects bodies above the wire limit before parsing them', () => {
    expect(() => decodeSnapshot(' '.repeat(MAX_WIRE_BYTES + 1))).toThrow(/exceeds/);
  });

  it('names every field at fault', () => {
    const bad = { ...buildSnapshot(), callId: '../x', seq: -1 };
    try {
      parseSnapshot(bad);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidSnapshotError);
      expect((error as InvalidSnapshotError).issues.join(' ')).toMatch(/callId/);
      expect((error as InvalidSnapshotError).issues.join(' ')).toMatch(/seq/);
    }
  });

  it('refuses a conversation and a conversation reference together', () => {
    const snapshot = buildSnapshot({ turns: 1 });
    const both = { ...snapshot, conversationRef: { bucket: 'abc', key: 'k', bytes: 1, sha256: 'a'.repeat(64), items: 1 } };
    expect(() => parseSnapshot(both)).toThrow(/mutually exclusive/);
  });

  it('fills interrupted=false when a producer omits it', () => {
    const snapshot = JSON.parse(encodeSnapshot(buildSnapshot({ turns: 1 })));
    delete snapshot.conversation[0].interrupted;
    expect(parseSnapshot(snapshot).conversation?.[0]?.interrupted).toBe(false);
  });

  it('produces sequences that only grow, also across a restarted producer', () => {
    const now = 1_790_000_000_000;
    const first = nextSequence(undefined, now);
    const second = nextSequence(first, now);
    const third = nextSequence(second, now - 5_000);
    const restarted = nextSequence(undefined, now + 1);
    expect(second).toBeGreaterThan(first);
    expect(third).toBeGreaterThan(second);
    expect(restarted).toBeGreaterThan(third);
    expect(Number.isSafeInteger(nextSequence(undefined, Date.UTC(2200, 0, 1)))).toBe(true);
  });

  it("numbers a worker's final snapshot above a webhook finalization of a room that closed after it", () => {
    // Prepare: the worker sends its final snapshot, the room closes 30 s later
    const sentAtMs = 1_790_000_000_000;
    const progress = nextSequence(undefined, sentAtMs - 2_000);
    const final = snapshotSequence(progress, 'ended', sentAtMs);
    const webhookMinimum = (sentAtMs + 30_000) * 1000;
    // Assess: the worker's word wins; a progress snapshot delayed in the queue does not
    expect(final).toBeGreaterThan(webhookMinimum);
    expect(progress).toBeLessThan(webhookMinimum);
  });
});
