import { DisconnectReason } from '@livekit/rtc-node';
import { describe, expect, it } from 'vitest';
import { callParties, directionOf, parseJobMetadata, sipDetails } from '../../worker/call-info.ts';
import { callIdFor, startTimeFor } from '../../worker/capture.ts';
import { conversationItem, AUDIO_PLACEHOLDER, IMAGE_PLACEHOLDER } from '../../worker/conversation.ts';
import { reasonForDisconnect, reasonForSipStatus, UNANSWERED } from '../../worker/sip.ts';

describe('job metadata and SIP attributes', () => {
  it('treats a job that names a number to call as outbound with that trunk and number', () => {
    // Prepare
    const metadata = JSON.stringify({ phone_number: '+14155550123', sip_trunk_id: 'ST_out', agent_number: '+14155550100' });
    // Act
    const hints = parseJobMetadata(metadata);
    const parties = callParties(hints, {});
    // Assess
    expect(directionOf(hints)).toBe('outbound');
    expect(parties).toMatchObject({ direction: 'outbound', outboundTrunkId: 'ST_out', userNumber: '+14155550123', agentNumber: '+14155550100' });
    expect(parties.inboundTrunkId).toBeUndefined();
  });

  it('treats a job without dial instructions as inbound and takes numbers from the SIP participant', () => {
    const hints = parseJobMetadata('');
    const sip = sipDetails({ 'sip.phoneNumber': '+919876543210', 'sip.trunkPhoneNumber': '+14155550100', 'sip.trunkID': 'ST_in', 'sip.callID': 'SCL_1', 'sip.callStatus': 'active' });
    const parties = callParties(hints, sip);
    expect(parties).toEqual({ direction: 'inbound', inboundTrunkId: 'ST_in', outboundTrunkId: undefined, agentNumber: '+14155550100', userNumber: '+919876543210', sipCallId: 'SCL_1' });
    expect(sip.callStatus).toBe('active');
  });

  it('prefers what the SIP participant says over the job metadata', () => {
    const hints = parseJobMetadata(JSON.stringify({ phoneNumber: '+1000', outboundTrunkId: 'ST_meta' }));
    const parties = callParties(hints, { userNumber: '+2000', trunkId: 'ST_attr' });
    expect(parties.userNumber).toBe('+2000');
    expect(parties.outboundTrunkId).toBe('ST_attr');
  });

  it.each([['not json'], ['[1,2]'], ['null'], ['"text"']])('ignores unusable job metadata %s', (raw) => {
    expect(parseJobMetadata(raw)).toEqual({});
  });

  it('honours an explicit direction and caps overlong values', () => {
    const hints = parseJobMetadata(JSON.stringify({ direction: 'OUTBOUND', agent_number: 'x'.repeat(1_000) }));
    expect(directionOf(hints)).toBe('outbound');
    expect(hints.agentNumber).toHaveLength(256);
  });
});

describe('unanswered reasons', () => {
  it.each([
    [486, UNANSWERED.busy],
    [600, UNANSWERED.busy],
    [603, UNANSWERED.declined],
    [480, UNANSWERED.noAnswer],
    [408, UNANSWERED.noAnswer],
    [487, UNANSWERED.noAnswer],
    [500, UNANSWERED.failed],
    [503, UNANSWERED.failed],
    [404, UNANSWERED.failed],
    [undefined, UNANSWERED.failed],
  ])('maps SIP status %s to %s', (code, reason) => {
    expect(reasonForSipStatus(code)).toBe(reason);
  });

  it.each([
    [DisconnectReason.USER_REJECTED, UNANSWERED.declined],
    [DisconnectReason.USER_UNAVAILABLE, UNANSWERED.noAnswer],
    [DisconnectReason.SIP_TRUNK_FAILURE, UNANSWERED.failed],
    [DisconnectReason.CLIENT_INITIATED, UNANSWERED.abandoned],
    [undefined, UNANSWERED.abandoned],
  ])('maps a caller leaving with disconnect reason %s to %s', (reason, expected) => {
    expect(reasonForDisconnect(reason)).toBe(expected);
  });
});

describe('call id and start time', () => {
  it('uses the room SID as the call id', () => {
    expect(callIdFor({ id: 'AJ_1', room: { sid: 'RM_abc123' } })).toBe('RM_abc123');
  });

  it('falls back to a job-derived id when the job has no usable room SID', () => {
    expect(callIdFor({ id: 'AJ_x/y', room: { sid: '' } })).toBe('job_AJ_x_y');
  });

  it('starts the call at the room creation time so a restarted job keeps the same folder', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    expect(startTimeFor({ creationTimeMs: BigInt(now - 5_000) }, now)).toBe(now - 5_000);
    expect(startTimeFor({ creationTime: BigInt((now - 7_000) / 1000) }, now)).toBe(now - 7_000);
    expect(startTimeFor({ creationTimeMs: BigInt(now + 60_000) }, now)).toBe(now);
    expect(startTimeFor(undefined, now)).toBe(now);
  });
});

describe('conversation items', () => {
  it('keeps user and assistant text with interrupted flag and timestamp', () => {
    const item = conversationItem({ type: 'message', role: 'assistant', content: ['Hello', 'there'], interrupted: true, createdAt: 1_700_000_000_123 }, 1);
    expect(item).toEqual({ role: 'assistant', content: 'Hello\nthere', interrupted: true, timestampMs: 1_700_000_000_123 });
  });

  it('uses the message text without expressive markup when the SDK provides it', () => {
    const item = conversationItem({ type: 'message', role: 'assistant', content: ['<expr/>Hi'], textContent: 'Hi', createdAt: 5 }, 1);
    expect(item?.content).toBe('Hi');
  });

  it('replaces non-text content with placeholders, as the original does', () => {
    const item = conversationItem(
      { type: 'message', role: 'user', content: ['look', { type: 'image_content', image: 'x' }, { type: 'audio_content', frame: [] }, { type: 'audio_content', frame: [], transcript: 'said this' }], createdAt: 5 },
      1,
    );
    expect(item?.content).toBe(`look\n${IMAGE_PLACEHOLDER}\n${AUDIO_PLACEHOLDER}\nsaid this`);
  });

  it.each([
    [{ type: 'message', role: 'system', content: ['rules'] }],
    [{ type: 'message', role: 'developer', content: ['rules'] }],
    [{ type: 'agent_handoff' }],
    [{ type: 'function_call' }],
  ])('skips items that are not part of the transcript: %o', (item) => {
    expect(conversationItem(item, 1)).toBeUndefined();
  });

  it('uses the event time when the item has no usable timestamp', () => {
    expect(conversationItem({ type: 'message', role: 'user', content: ['x'], createdAt: Number.NaN }, 42)?.timestampMs).toBe(42);
  });
});
