import { DisconnectReason, ParticipantKind } from '@livekit/rtc-node';
import { describe, expect, it } from 'vitest';
import { AnswerDetector, type AnswerEvents, type ParticipantLike } from '../../worker/answer.ts';

function harness(timeoutMs = 30_000) {
  const log: string[] = [];
  let fire: (() => void) | undefined;
  let cancelled = false;
  const events: AnswerEvents = {
    answered: (p) => log.push(`answered:${p?.identity ?? '-'}`),
    unanswered: (reason, detail) => log.push(`unanswered:${reason}:${detail}`),
    callerLeft: (p, detail) => log.push(`left:${p.identity}:${detail}`),
  };
  const detector = new AnswerDetector(events, {
    timeoutMs,
    now: () => 1_000,
    setTimer: (fn, ms) => {
      expect(ms).toBe(timeoutMs);
      fire = fn;
      return { cancel: () => (cancelled = true) };
    },
  });
  return { detector, log, fireTimeout: () => fire?.(), wasCancelled: () => cancelled };
}

const sip = (status: string, identity = 'sip_caller'): ParticipantLike => ({ identity, kind: ParticipantKind.SIP, attributes: { 'sip.callStatus': status } });

describe('answer detection', () => {
  it('answers when the SIP participant becomes active and stops the timeout', () => {
    // Prepare
    const { detector, log, wasCancelled } = harness();
    // Act
    detector.seen(sip('ringing'));
    detector.statusChanged(sip('active'));
    // Assess
    expect(log).toEqual(['answered:sip_caller']);
    expect(detector.state).toBe('answered');
    expect(wasCancelled()).toBe(true);
  });

  it('answers at once when a non-SIP caller joins', () => {
    const { detector, log } = harness();
    detector.seen({ identity: 'web_user', kind: ParticipantKind.STANDARD, attributes: {} });
    expect(log).toEqual(['answered:web_user']);
  });

  it('ignores other agents and egress participants', () => {
    const { detector, log } = harness();
    detector.seen({ identity: 'agent-2', kind: ParticipantKind.AGENT });
    detector.seen({ identity: 'EG_1', kind: ParticipantKind.EGRESS });
    expect(log).toEqual([]);
    expect(detector.state).toBe('waiting');
  });

  it('recognises a SIP caller by its call status attribute even without the SIP kind', () => {
    const { detector, log } = harness();
    detector.seen({ identity: 'p', kind: ParticipantKind.STANDARD, attributes: { 'sip.callStatus': 'dialing' } });
    expect(log).toEqual([]);
    detector.statusChanged({ identity: 'p', attributes: { 'sip.callStatus': 'active' } });
    expect(log).toEqual(['answered:p']);
  });

  it('reports unanswered when the SIP call hangs up before it was active', () => {
    const { detector, log } = harness();
    detector.seen(sip('ringing'));
    detector.statusChanged(sip('hangup'));
    expect(log).toEqual(['unanswered:abandoned:sip call status hangup before the call was active']);
  });

  it('reports unanswered with the mapped reason when the caller leaves before answering', () => {
    const { detector, log } = harness();
    detector.seen(sip('dialing'));
    detector.left({ ...sip('dialing'), disconnectReason: DisconnectReason.USER_REJECTED });
    expect(log).toEqual(['unanswered:declined:caller left before the call was active (user_rejected)']);
  });

  it('reports no answer when nobody answers within the timeout', () => {
    const { detector, log, fireTimeout } = harness(5_000);
    detector.seen(sip('ringing'));
    detector.statusChanged(sip('automation'));
    fireTimeout();
    expect(log).toEqual(['unanswered:no_answer:nobody answered within the answer timeout']);
  });

  it('reports a failed outbound dial with the SIP reason and ignores later events', () => {
    const { detector, log, fireTimeout } = harness();
    detector.dialFailed(486, 'SIP 486 Busy Here');
    detector.seen(sip('active'));
    fireTimeout();
    expect(log).toEqual(['unanswered:busy:SIP 486 Busy Here']);
  });

  it('reports the caller hanging up after an answered call, once', () => {
    const { detector, log } = harness();
    detector.seen(sip('active'));
    detector.left({ ...sip('active'), disconnectReason: DisconnectReason.CLIENT_INITIATED });
    expect(log).toEqual(['answered:sip_caller', 'left:sip_caller:client_initiated']);
  });

  it('follows only the first SIP participant of the call', () => {
    const { detector, log } = harness();
    detector.seen(sip('ringing', 'first'));
    detector.seen(sip('active', 'second'));
    detector.left({ identity: 'second', kind: ParticipantKind.SIP });
    expect(log).toEqual([]);
    detector.statusChanged(sip('active', 'first'));
    expect(log).toEqual(['answered:first']);
  });
});
