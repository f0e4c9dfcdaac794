/**
 * The recording function's pure parts: how an egress becomes a fact, who reports it, where a
 * discarded file waits, what the markers allow; and its settings and error classification.
 */
import { EgressInfo, EgressStatus } from 'livekit-server-sdk';
import { describe, expect, it } from 'vitest';
import { factMessageSchema, WRITER_PATTERN } from '../../functions/contract/facts.ts';
import {
  egressFactOf,
  egressIdsFor,
  egressReport,
  egressStatusOf,
  mustStayDiscarded,
  nsToMs,
  quarantineKey,
  recorderFact,
  recorderWriter,
  startDecision,
  startLeaseMs,
} from '../../functions/domain/recorder.ts';
import { DISCARD_PREFIX } from '../../functions/domain/recording-plan.ts';
import { classifyEgressError, EgressRejectedError, EgressUnavailableError } from '../../functions/recording/errors.ts';
import { ConfigError } from '../../functions/config/errors.ts';
import { createEgressApi } from '../../functions/recording/egress.ts';
import { isRetryable } from '../../functions/errors.ts';
import { loadConfig } from '../../functions/config/config.ts';
import { recordingSettings } from '../../functions/recording/settings.ts';

const KEY = 'room/20261124T004838.120_abc/call_room_20261124T004838.120_abc.ogg';

describe('egress facts', () => {
  it('reads the SDK’s EgressInfo: status, file key, size and duration (ns → ms), error, time', () => {
    // Prepare
    const info = new EgressInfo({
      egressId: 'EG_1',
      roomId: 'RM_1',
      status: EgressStatus.EGRESS_FAILED,
      error: 'upload failed',
      updatedAt: 1_800_000_000_123_456_789n,
      fileResults: [{ filename: KEY, size: 2_048n, duration: 61_999_999_999n }],
    });
    // Act + Assess
    expect(egressFactOf(info, { atMs: 1, bucket: 'recordings' })).toEqual({
      status: 'failed',
      atMs: 1_800_000_000_123,
      key: KEY,
      bucket: 'recordings',
      error: 'upload failed',
      sizeBytes: 2_048,
      durationMs: 61_999,
    });
  });

  it('gives sizes only to an egress that is over, and falls back to the command’s key and the time given', () => {
    const active = new EgressInfo({ egressId: 'EG_1', status: EgressStatus.EGRESS_ACTIVE, fileResults: [{ filename: '', size: 10n, duration: 5n }] });
    expect(egressFactOf(active, { atMs: 42, key: KEY })).toEqual({ status: 'active', atMs: 42, key: KEY });
  });

  it('reads the deprecated single file result and the s3:// location', () => {
    const info = { egressId: 'EG_1', status: 3, result: { case: 'file', value: { location: `s3://b/${KEY}`, size: '7', duration: '2000000' } } };
    expect(egressFactOf(info, { atMs: 5 })).toEqual({ status: 'complete', atMs: 5, key: KEY, sizeBytes: 7, durationMs: 2 });
  });

  it('knows no fact for an unknown status, and maps names and numbers alike', () => {
    expect(egressFactOf({ status: 42 }, { atMs: 1 })).toBeUndefined();
    expect(egressStatusOf('EGRESS_ABORTED')).toBe('aborted');
    expect(egressStatusOf('limit_reached')).toBe('limit_reached');
    expect(egressStatusOf('6')).toBe('limit_reached');
    expect(egressStatusOf(undefined)).toBeUndefined();
    expect(nsToMs(0n)).toBeUndefined();
    expect(nsToMs(-5)).toBeUndefined();
    expect(nsToMs('1800000000000000000')).toBe(1_800_000_000_000);
  });
});

describe('what the recording function reports', () => {
  it('one writer per fact, stable for an egress, valid in the contract', () => {
    const fact = { status: 'starting' as const, atMs: 1_800_000_000_000, key: KEY, bucket: 'recordings' };
    const a = egressReport('RM_1', 'start', 'EG_1', fact);
    expect(a).toEqual(egressReport('RM_1', 'start', 'EG_1', fact));
    expect(a).toMatchObject({ kind: 'recording', writer: 'recording:RM_1:start:EG_1', cumulative: false, seq: 1, sentAtMs: fact.atMs });
    expect(factMessageSchema.parse(a)).toEqual(a);
    const discarded = recorderFact('RM_1', 'discard', 'u-1', 5, { recording: { discardedAtMs: 5 } });
    expect(discarded.writer).toBe('recording:RM_1:discard:u-1');
  });

  it('keeps writers inside the contract’s alphabet and length for the longest call ids', () => {
    const longId = `RM_${'x'.repeat(125)}`;
    const writer = recorderWriter(longId, 'restore', '0f8fad5b-d9cb-469f-a165-70867728950e');
    expect(writer).toMatch(WRITER_PATTERN);
    expect(recorderWriter(longId, 'restore', 'a')).not.toBe(recorderWriter(`RM_${'y'.repeat(125)}`, 'restore', 'a'));
    expect(recorderWriter('RM_1', 'start', 'EG/weird id')).toMatch(WRITER_PATTERN);
  });
});

describe('discard quarantine and markers', () => {
  it('keeps a discarded file under the discard prefix, whole', () => {
    expect(quarantineKey(KEY)).toBe(`${DISCARD_PREFIX}/${KEY}`);
    expect(quarantineKey(`/${KEY}`)).toBe(`${DISCARD_PREFIX}/${KEY}`);
  });

  it('decides a start from the markers', () => {
    const egress = { egressId: 'EG_1', key: KEY, bucket: 'b', startedAtMs: 1 };
    expect(startDecision({})).toBe('claim');
    expect(startDecision({ egress })).toBe('report');
    expect(startDecision({ discard: { key: KEY, bucket: 'b', atMs: 1 } })).toBe('discarded');
    expect(startDecision({ discard: { key: KEY, bucket: 'b', atMs: 1 }, restore: { atMs: 2 } })).toBe('claim');
    expect(mustStayDiscarded({ discard: { key: KEY, bucket: 'b', atMs: 1 }, restore: { atMs: 2 } })).toBe(false);
    expect(egressIdsFor(['EG_1', '', 'EG_2'], { egress })).toEqual(['EG_1', 'EG_2']);
  });

  it('holds a start claim for every attempt, its back-off and a margin', () => {
    expect(startLeaseMs({ egressAttempts: 3, egressTimeoutMs: 30_000, egressBackoffMs: 1_000 })).toBe(3 * 30_000 + 1_000 + 2_000 + 30_000);
  });
});

describe('egress errors and settings', () => {
  it.each([
    [{ status: 503, message: 'no response from servers' }, EgressUnavailableError],
    [{ status: 500, message: 'egress not connected' }, EgressUnavailableError],
    [{ status: 408, message: 'request canceled' }, EgressUnavailableError],
    [Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }), EgressUnavailableError],
    [new TypeError('fetch failed'), EgressUnavailableError],
    [{ status: 404, message: 'requested room does not exist' }, EgressRejectedError],
    [{ status: 401, message: 'unauthorized' }, EgressRejectedError],
  ])('classifies %o', (cause, type) => {
    const error = classifyEgressError('start egress', cause);
    expect(error).toBeInstanceOf(type);
    expect(error.retryable).toBe(type === EgressUnavailableError);
    expect(isRetryable(error)).toBe(type === EgressUnavailableError);
  });

  it('takes its settings from the configuration (egress timing is a constant) and names a missing variable', () => {
    const settings = recordingSettings(loadConfig({}));
    expect(settings).toMatchObject({ egressAttempts: 3, egressTimeoutMs: 30_000, egressBackoffMs: 1_000, discardWaitMs: 15_000, discardPollMs: 500 });
    expect(() => loadConfig({ LIVEKIT_URL: 'ftp://x' })).toThrow(/LIVEKIT_URL/);
    expect(() => createEgressApi(settings)).toThrow(ConfigError);
    expect(() => createEgressApi(settings)).toThrow(/LIVEKIT_URL: is required to start and stop recordings/);
  });
});
