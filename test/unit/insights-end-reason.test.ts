/**
 * The end-reason rules of functions/domain/insights/end-reason.ts: every SIP status family, every
 * value of the installed LiveKit enums (DisconnectReason, agents CloseReason, AMDCategory, the
 * protocol's SIPStatusCode), so a LiveKit upgrade that adds a value fails here; and the precedence
 * rule, by named scenarios and by properties over any evidence.
 */
import { readFileSync } from 'node:fs';
import { voice } from '@livekit/agents';
// A dependency of livekit-server-sdk and @livekit/agents; the test reads the enum LiveKit's SIP service uses.
import { SIPStatusCode } from '@livekit/protocol';
import { DisconnectReason } from '@livekit/rtc-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { END_REASONS, FINAL_STATUSES, isUnansweredStatus, type EndReason } from '../../functions/contract/vocabulary.ts';
import {
  amdEndReason,
  decideEndReason,
  endReasonFromCloseReason,
  endReasonFromDisconnect,
  endReasonFromSipStatus,
  KNOWN_DISCONNECT_REASONS,
  sipStatusText,
  type EndEvidence,
} from '../../functions/domain/insights/index.ts';

const enumNames = (e: object): string[] => Object.keys(e).filter((key) => Number.isNaN(Number(key)));

describe('endReasonFromSipStatus: every family of SIP final responses', () => {
  it.each<[number, EndReason | undefined]>([
    // 1xx provisional and 2xx success end nothing by themselves
    [100, undefined], [180, undefined], [183, undefined], [199, undefined],
    [200, undefined], [202, undefined],
    // 3xx: LiveKit does not follow redirects, the call never connected
    [300, 'failed'], [302, 'failed'], [380, 'failed'],
    // 4xx
    [401, 'failed'], [402, 'failed'], [403, 'declined'], [404, 'failed'], [407, 'failed'], [408, 'no_answer'],
    [410, 'failed'], [480, 'no_answer'], [484, 'failed'], [486, 'busy'], [487, 'no_answer'], [488, 'failed'], [499, 'failed'],
    // 5xx
    [500, 'failed'], [503, 'failed'], [504, 'failed'], [599, 'failed'],
    // 6xx
    [600, 'busy'], [603, 'declined'], [604, 'failed'], [606, 'failed'], [607, 'declined'], [608, 'declined'], [699, 'failed'],
    // not SIP status codes
    [0, undefined], [99, undefined], [700, undefined], [486.5, undefined], [Number.NaN, undefined], [-486, undefined],
  ])('%d → %s', (code, expected) => {
    // Act / Assess
    expect(endReasonFromSipStatus(code)).toBe(expected);
  });

  it('maps every final code LiveKit names (SIPStatusCode) to a member of END_REASONS and never a provisional one', () => {
    // Prepare
    const codes = Object.values(SIPStatusCode).filter((value): value is number => typeof value === 'number' && value !== 0);
    expect(codes.length).toBeGreaterThan(60);
    for (const code of codes) {
      // Act
      const reason = endReasonFromSipStatus(code);
      // Assess
      if (code < 300) expect(reason, String(code)).toBeUndefined();
      else expect(END_REASONS, String(code)).toContain(reason);
    }
  });
});

describe('sipStatusText', () => {
  it('gives the standard reason phrase of the well-known codes', () => {
    expect(sipStatusText(486)).toBe('Busy Here');
    expect(sipStatusText(603)).toBe('Decline');
    expect(sipStatusText(480)).toBe('Temporarily Unavailable');
    expect(sipStatusText(487)).toBe('Request Terminated');
    expect(sipStatusText(404)).toBe('Not Found');
    expect(sipStatusText(200)).toBe('OK');
    expect(sipStatusText(999)).toBeUndefined();
  });

  it('has a phrase for every code in LiveKit\'s SIPStatusCode enum', () => {
    // Prepare
    const named = Object.entries(SIPStatusCode).filter((entry): entry is [string, number] => typeof entry[1] === 'number' && entry[1] !== 0);
    // Act
    const missing = named.filter(([, code]) => sipStatusText(code) === undefined).map(([name]) => name);
    // Assess
    expect(missing).toEqual([]);
  });
});

describe('endReasonFromDisconnect: every DisconnectReason of the installed rtc-node', () => {
  it('knows exactly the installed names (a new LiveKit value must be mapped on purpose)', () => {
    expect([...KNOWN_DISCONNECT_REASONS].sort()).toEqual(enumNames(DisconnectReason).sort());
  });

  it.each<[string, EndReason | undefined]>([
    ['UNKNOWN_REASON', undefined],
    ['CLIENT_INITIATED', 'caller_hangup'],
    ['DUPLICATE_IDENTITY', 'failed'],
    ['SERVER_SHUTDOWN', 'failed'],
    ['PARTICIPANT_REMOVED', 'agent_hangup'],
    ['ROOM_DELETED', 'agent_hangup'],
    ['STATE_MISMATCH', 'failed'],
    ['JOIN_FAILURE', 'failed'],
    ['MIGRATION', undefined],
    ['SIGNAL_CLOSE', 'failed'],
    ['ROOM_CLOSED', undefined],
    ['USER_UNAVAILABLE', 'no_answer'],
    ['USER_REJECTED', 'declined'],
    ['SIP_TRUNK_FAILURE', 'failed'],
    ['CONNECTION_TIMEOUT', 'failed'],
    ['MEDIA_FAILURE', 'failed'],
    ['AGENT_ERROR', 'agent_error'],
  ])('%s → %s', (name, expected) => {
    // Prepare: the name is one of the installed enum's
    expect(enumNames(DisconnectReason)).toContain(name);
    // Act / Assess
    expect(endReasonFromDisconnect(name)).toBe(expected);
  });

  it('returns undefined for names it does not know, including Object.prototype members', () => {
    expect(endReasonFromDisconnect('SOMETHING_NEW')).toBeUndefined();
    expect(endReasonFromDisconnect('toString')).toBeUndefined();
    expect(endReasonFromDisconnect('client_initiated')).toBeUndefined();
  });
});

describe('endReasonFromCloseReason: every CloseReason of the installed agents-js', () => {
  const expected: Record<string, EndReason | undefined> = {
    error: 'agent_error',
    participant_disconnected: 'caller_hangup',
    user_initiated: 'agent_hangup',
    job_shutdown: undefined,
  };

  it('maps every installed value as documented', () => {
    // Prepare
    const installed = Object.values(voice.CloseReason) as string[];
    // Assess: a value added by an agents-js upgrade has no expectation and fails here
    expect(installed.sort()).toEqual(Object.keys(expected).sort());
    for (const reason of installed) expect(endReasonFromCloseReason(reason), reason).toBe(expected[reason]);
  });

  it('treats task_completed (newer agents releases) as the agent ending the call', () => {
    expect(endReasonFromCloseReason('task_completed')).toBe('agent_hangup');
  });

  it('calls any close that carries an error the agent\'s error', () => {
    for (const reason of Object.values(voice.CloseReason) as string[]) {
      expect(endReasonFromCloseReason(reason, { error: true }), reason).toBe('agent_error');
    }
    expect(endReasonFromCloseReason('something_else', { error: true })).toBe('agent_error');
    expect(endReasonFromCloseReason('something_else')).toBeUndefined();
  });
});

describe('amdEndReason: LiveKit answering-machine detection (voice.AMDCategory)', () => {
  it('maps every installed category', () => {
    // Prepare
    const expected: Record<string, EndReason | undefined> = {
      human: undefined,
      'machine-ivr': undefined,
      'machine-vm': 'voicemail',
      'machine-unavailable': 'voicemail',
      uncertain: undefined,
    };
    const installed = Object.values(voice.AMDCategory) as string[];
    // Assess
    expect(installed.sort()).toEqual(Object.keys(expected).sort());
    for (const category of installed) expect(amdEndReason(category), category).toBe(expected[category]);
  });

  it('accepts the generic result names of other detectors', () => {
    expect(amdEndReason('machine')).toBe('voicemail');
    expect(amdEndReason('voicemail')).toBe('voicemail');
    expect(amdEndReason('unknown')).toBeUndefined();
  });
});

describe('decideEndReason: named scenarios', () => {
  it.each<[string, EndEvidence, EndReason, string]>([
    ['the caller hangs up an answered call', { answered: true, closeReason: 'participant_disconnected', disconnectReason: 'CLIENT_INITIATED' }, 'caller_hangup', 'completed'],
    ['the agent ends the call with its hangup tool', { answered: true, hangupTool: true, closeReason: 'user_initiated', disconnectReason: 'ROOM_DELETED' }, 'agent_hangup', 'completed'],
    ['the session dies on a model error (issue 9: was stored as completed)', { answered: true, closeReason: 'error', closeError: true, disconnectReason: 'CLIENT_INITIATED' }, 'agent_error', 'failed'],
    ['the hangup tool runs, then the session fails: the agent ended it, but the call failed', { answered: true, hangupTool: true, closeReason: 'error', closeError: true }, 'agent_hangup', 'failed'],
    ['an error on a close that names another reason', { answered: true, closeReason: 'participant_disconnected', closeError: true }, 'agent_error', 'failed'],
    ['LiveKit reports the agent\'s error on the SIP participant', { answered: true, disconnectReason: 'AGENT_ERROR' }, 'agent_error', 'failed'],
    ['the callee is busy', { answered: false, sipStatusCode: 486, disconnectReason: 'USER_REJECTED' }, 'busy', 'busy'],
    ['the callee declines', { answered: false, sipStatusCode: 603, disconnectReason: 'USER_REJECTED' }, 'declined', 'declined'],
    ['LiveKit says rejected without a status code', { answered: false, disconnectReason: 'USER_REJECTED' }, 'declined', 'declined'],
    ['nobody picks up within the answer timeout', { answered: false, answerTimedOut: true }, 'no_answer', 'no_answer'],
    ['the ringing is cancelled (487) after our timeout', { answered: false, answerTimedOut: true, sipStatusCode: 487 }, 'no_answer', 'no_answer'],
    ['the number does not exist', { answered: false, sipStatusCode: 404, disconnectReason: 'USER_UNAVAILABLE' }, 'failed', 'failed'],
    ['the trunk fails', { answered: false, disconnectReason: 'SIP_TRUNK_FAILURE' }, 'failed', 'failed'],
    ['the caller hangs up while still ringing', { answered: false, disconnectReason: 'CLIENT_INITIATED' }, 'caller_hangup', 'abandoned'],
    ['the SIP participant leaves before answer for an unknown reason', { answered: false, disconnectReason: 'UNKNOWN_REASON' }, 'caller_hangup', 'abandoned'],
    ['a voicemail greeting answers', { answered: true, voicemail: true, closeReason: 'user_initiated' }, 'voicemail', 'completed'],
    ['the agent transfers the call', { answered: true, transferred: true, disconnectReason: 'PARTICIPANT_REMOVED' }, 'transfer', 'completed'],
    ['the call reaches its maximum duration', { answered: true, maxDurationReached: true, disconnectReason: 'ROOM_DELETED' }, 'max_duration', 'limit_reached'],
    ['the worker is lost during an answered call', { answered: true, workerLost: true }, 'worker_lost', 'completed'],
    ['the worker is lost before an answer', { answered: false, workerLost: true }, 'worker_lost', 'failed'],
    ['the job shuts down while the caller is still there', { answered: true, closeReason: 'job_shutdown' }, 'agent_hangup', 'completed'],
    ['an answered call ignores reasons only an unanswered one can have', { answered: true, sipStatusCode: 486, disconnectReason: 'USER_UNAVAILABLE', closeReason: 'participant_disconnected' }, 'caller_hangup', 'completed'],
    ['nothing is known about an unanswered call', { answered: false }, 'no_answer', 'no_answer'],
  ])('%s', (_name, evidence, endReason, status) => {
    // Act
    const decision = decideEndReason(evidence);
    // Assess
    expect(decision).toEqual({ endReason, status });
  });

  it('ranks the agent\'s own facts above everything else, in the documented order', () => {
    // Prepare: all the evidence at once, then take the strongest away one by one
    const all: EndEvidence = { answered: true, hangupTool: true, voicemail: true, transferred: true, maxDurationReached: true, closeError: true, workerLost: true, sipStatusCode: 500, disconnectReason: 'CLIENT_INITIATED', closeReason: 'user_initiated' };
    const order: [keyof EndEvidence, EndReason][] = [['hangupTool', 'agent_hangup'], ['voicemail', 'voicemail'], ['transferred', 'transfer'], ['maxDurationReached', 'max_duration'], ['closeError', 'agent_error'], ['workerLost', 'worker_lost'], ['sipStatusCode', 'failed'], ['disconnectReason', 'caller_hangup'], ['closeReason', 'agent_hangup']];
    const evidence: EndEvidence = { ...all };
    for (const [field, reason] of order) {
      // Act / Assess
      expect(decideEndReason(evidence).endReason, field).toBe(reason);
      delete evidence[field];
    }
  });
});

describe('decideEndReason: properties over any evidence', () => {
  const evidenceArb: fc.Arbitrary<EndEvidence> = fc.record(
    {
      answered: fc.boolean(),
      closeReason: fc.constantFrom(...(Object.values(voice.CloseReason) as string[]), 'task_completed', 'other'),
      closeError: fc.boolean(),
      disconnectReason: fc.constantFrom(...enumNames(DisconnectReason), 'NEW_REASON'),
      sipStatusCode: fc.oneof(fc.integer({ min: 0, max: 800 }), fc.constantFrom(486, 487, 603, 404, 200)),
      hangupTool: fc.boolean(),
      answerTimedOut: fc.boolean(),
      maxDurationReached: fc.boolean(),
      voicemail: fc.boolean(),
      transferred: fc.boolean(),
      workerLost: fc.boolean(),
    },
    { requiredKeys: ['answered'] },
  );

  it('always yields a member of END_REASONS and of FINAL_STATUSES', () => {
    fc.assert(
      fc.property(evidenceArb, (evidence) => {
        const { endReason, status } = decideEndReason(evidence);
        expect(END_REASONS).toContain(endReason);
        expect(FINAL_STATUSES).toContain(status);
      }),
      { numRuns: 2_000 },
    );
  });

  it('never gives an unanswered call an answered status, nor an answered call an unanswered one', () => {
    fc.assert(
      fc.property(evidenceArb, (evidence) => {
        const { status } = decideEndReason(evidence);
        if (evidence.answered) expect(isUnansweredStatus(status)).toBe(false);
        else expect(['no_answer', 'busy', 'declined', 'failed', 'abandoned']).toContain(status);
      }),
      { numRuns: 2_000 },
    );
  });

  it('never calls a session that closed with an error completed', () => {
    fc.assert(
      fc.property(evidenceArb, (evidence) => {
        const withError = { ...evidence, closeError: true };
        expect(decideEndReason(withError).status).not.toBe('completed');
        expect(decideEndReason({ ...evidence, closeReason: 'error' }).status).not.toBe('completed');
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('the insights rules stay free of SDKs', () => {
  it('imports no LiveKit, AWS or Lambda module', () => {
    for (const file of ['end-reason.ts', 'latency.ts', 'usage.ts', 'index.ts']) {
      const source = readFileSync(new URL(`../../functions/domain/insights/${file}`, import.meta.url), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      expect(imports.filter((name) => /livekit|aws|lambda/i.test(name ?? '')), file).toEqual([]);
    }
  });
});
