/**
 * Why a call ended, in the one taxonomy of END_REASONS, from what LiveKit tells the worker and the
 * webhook: the SIP final response code, the SIP participant's `DisconnectReason`, the agents
 * session's `CloseReason`, answering-machine detection, and the agent's own facts (hangup tool,
 * transfer, answer timeout, max duration). Inputs are plain values (enum *names*, numbers), so this
 * file stays free of LiveKit types; test/unit/insights-end-reason.test.ts checks every value of the
 * installed enums against it, so a new LiveKit value fails a test instead of passing unmapped.
 */
import { CALL_STATUS, UNANSWERED, type EndReason, type FinalStatus } from '../../contract/vocabulary.ts';

/**
 * SIP final response → end reason (RFC 3261 §21, RFC 6665, RFC 8197, RFC 8688, IANA registry).
 * The codes LiveKit's own SIP service classifies (livekit/sip `classifyInviteError`) map the way it
 * does, except where our taxonomy is finer (404 is `failed`, not "unavailable": the number is wrong).
 *
 *   1xx           undefined     provisional, never ends a call
 *   2xx           undefined     success; the call's end comes from elsewhere
 *   3xx           failed        redirection; LiveKit does not follow redirects, so the call never
 *                               connected (`transfer` is kept for an answered call the agent hands on)
 *   401 407 402   failed        our trunk's credentials or account, not the callee
 *   403           declined      Forbidden: carriers refuse (spam-blocked, barred) calls with it
 *   404 410 484   failed        the number does not exist / no longer exists / is incomplete
 *   408 480       no_answer     Request Timeout, Temporarily Unavailable (nobody picked up)
 *   486           busy          Busy Here
 *   487           no_answer     Request Terminated: the INVITE was cancelled before an answer
 *                               (our ring timeout, or the caller gave up ringing)
 *   other 4xx     failed        request or negotiation failures (488 codecs, 481, 482, …)
 *   5xx           failed        server or carrier failure
 *   600           busy          Busy Everywhere
 *   603 607 608   declined      Decline, Unwanted, Rejected
 *   604 606       failed        Does Not Exist Anywhere, Not Acceptable
 *   other 6xx     failed
 *   anything else undefined     not a SIP status
 */
export function endReasonFromSipStatus(code: number): EndReason | undefined {
  if (!Number.isInteger(code) || code < 100 || code > 699) return undefined;
  switch (code) {
    case 403:
    case 603:
    case 607:
    case 608:
      return 'declined';
    case 486:
    case 600:
      return 'busy';
    case 408:
    case 480:
    case 487:
      return 'no_answer';
  }
  return code < 300 ? undefined : 'failed';
}

/** Reason phrases of the IANA SIP response-code registry (plus 409 and 411 from RFC 2543, which LiveKit still names). */
const SIP_STATUS_TEXT: ReadonlyMap<number, string> = new Map([
  [100, 'Trying'], [180, 'Ringing'], [181, 'Call Is Being Forwarded'], [182, 'Queued'], [183, 'Session Progress'],
  [199, 'Early Dialog Terminated'],
  [200, 'OK'], [202, 'Accepted'], [204, 'No Notification'],
  [300, 'Multiple Choices'], [301, 'Moved Permanently'], [302, 'Moved Temporarily'], [305, 'Use Proxy'], [380, 'Alternative Service'],
  [400, 'Bad Request'], [401, 'Unauthorized'], [402, 'Payment Required'], [403, 'Forbidden'], [404, 'Not Found'],
  [405, 'Method Not Allowed'], [406, 'Not Acceptable'], [407, 'Proxy Authentication Required'], [408, 'Request Timeout'],
  [409, 'Conflict'], [410, 'Gone'], [411, 'Length Required'], [412, 'Conditional Request Failed'],
  [413, 'Request Entity Too Large'], [414, 'Request-URI Too Long'], [415, 'Unsupported Media Type'],
  [416, 'Unsupported URI Scheme'], [417, 'Unknown Resource-Priority'], [420, 'Bad Extension'], [421, 'Extension Required'],
  [422, 'Session Interval Too Small'], [423, 'Interval Too Brief'], [424, 'Bad Location Information'],
  [425, 'Bad Alert Message'], [428, 'Use Identity Header'], [429, 'Provide Referrer Identity'], [430, 'Flow Failed'],
  [433, 'Anonymity Disallowed'], [436, 'Bad Identity-Info'], [437, 'Unsupported Certificate'],
  [438, 'Invalid Identity Header'], [439, 'First Hop Lacks Outbound Support'], [440, 'Max-Breadth Exceeded'],
  [469, 'Bad Info Package'], [470, 'Consent Needed'], [480, 'Temporarily Unavailable'],
  [481, 'Call/Transaction Does Not Exist'], [482, 'Loop Detected'], [483, 'Too Many Hops'], [484, 'Address Incomplete'],
  [485, 'Ambiguous'], [486, 'Busy Here'], [487, 'Request Terminated'], [488, 'Not Acceptable Here'], [489, 'Bad Event'],
  [491, 'Request Pending'], [493, 'Undecipherable'], [494, 'Security Agreement Required'],
  [500, 'Server Internal Error'], [501, 'Not Implemented'], [502, 'Bad Gateway'], [503, 'Service Unavailable'],
  [504, 'Server Time-out'], [505, 'Version Not Supported'], [513, 'Message Too Large'],
  [555, 'Push Notification Service Not Supported'], [580, 'Precondition Failure'],
  [600, 'Busy Everywhere'], [603, 'Decline'], [604, 'Does Not Exist Anywhere'], [606, 'Not Acceptable'],
  [607, 'Unwanted'], [608, 'Rejected'],
]);

/** The standard reason phrase of a SIP status code, for when LiveKit gives only the code. */
export function sipStatusText(code: number): string | undefined {
  return SIP_STATUS_TEXT.get(code);
}

/**
 * The SIP participant's `DisconnectReason` (LiveKit protocol enum, by name) → end reason.
 * CLIENT_INITIATED is the phone side's BYE: the caller hung up. PARTICIPANT_REMOVED and
 * ROOM_DELETED are RoomService calls, which is how an agent hangs up. UNKNOWN_REASON, MIGRATION
 * (the participant moves, the call goes on) and ROOM_CLOSED (a consequence of others leaving)
 * decide nothing.
 */
const DISCONNECT_REASONS: Readonly<Record<string, EndReason | undefined>> = {
  UNKNOWN_REASON: undefined,
  CLIENT_INITIATED: 'caller_hangup',
  DUPLICATE_IDENTITY: 'failed',
  SERVER_SHUTDOWN: 'failed',
  PARTICIPANT_REMOVED: 'agent_hangup',
  ROOM_DELETED: 'agent_hangup',
  STATE_MISMATCH: 'failed',
  JOIN_FAILURE: 'failed',
  MIGRATION: undefined,
  SIGNAL_CLOSE: 'failed',
  ROOM_CLOSED: undefined,
  USER_UNAVAILABLE: 'no_answer',
  // LiveKit reports busy (486) as USER_REJECTED too; the SIP status, when known, tells them apart.
  USER_REJECTED: 'declined',
  SIP_TRUNK_FAILURE: 'failed',
  CONNECTION_TIMEOUT: 'failed',
  MEDIA_FAILURE: 'failed',
  AGENT_ERROR: 'agent_error',
};

/** The names endReasonFromDisconnect knows (the test compares them with the installed enum). */
export const KNOWN_DISCONNECT_REASONS: readonly string[] = Object.keys(DISCONNECT_REASONS);

export function endReasonFromDisconnect(name: string): EndReason | undefined {
  return Object.hasOwn(DISCONNECT_REASONS, name) ? DISCONNECT_REASONS[name] : undefined;
}

/**
 * agents-js `voice.CloseReason` (its string value) → end reason. `user_initiated` is our own code
 * closing the session (the hangup tool); `job_shutdown` follows the job's end and decides nothing;
 * `task_completed` (newer agents releases) is the agent finishing its task. A close that carries an
 * error is the agent's error, whatever the reason.
 */
export function endReasonFromCloseReason(reason: string, options: { error?: boolean } = {}): EndReason | undefined {
  if (options.error === true) return 'agent_error';
  switch (reason) {
    case 'error':
      return 'agent_error';
    case 'participant_disconnected':
      return 'caller_hangup';
    case 'user_initiated':
    case 'task_completed':
      return 'agent_hangup';
    default:
      return undefined;
  }
}

/**
 * LiveKit answering-machine detection (agents-js `voice.AMD`, `AMDCategory`) → end reason. A
 * voicemail greeting (`machine-vm`) or a mailbox that cannot take a message (`machine-unavailable`)
 * means a machine answered; `human`, `machine-ivr` (a menu the agent may navigate) and `uncertain`
 * decide nothing. The generic names `machine` and `voicemail` (other AMD providers) count as voicemail.
 */
export function amdEndReason(result: string): EndReason | undefined {
  switch (result) {
    case 'machine-vm':
    case 'machine-unavailable':
    case 'machine':
    case 'voicemail':
      return 'voicemail';
    default:
      return undefined;
  }
}

/** Everything known about a call's end; every field is optional evidence except `answered`. */
export interface EndEvidence {
  answered: boolean;
  closeReason?: string;
  closeError?: boolean;
  /** The SIP participant's DisconnectReason, by name. */
  disconnectReason?: string;
  sipStatusCode?: number;
  hangupTool?: boolean;
  answerTimedOut?: boolean;
  maxDurationReached?: boolean;
  voicemail?: boolean;
  transferred?: boolean;
  workerLost?: boolean;
}

export interface EndDecision {
  endReason: EndReason;
  status: FinalStatus;
}

/** Reasons that only describe a call nobody answered; an answered call ignores them. */
const UNANSWERED_ONLY: ReadonlySet<EndReason> = new Set(['no_answer', 'busy', 'declined']);

/** The agents session (or LiveKit on its behalf) reported an error. */
function sessionFailed(evidence: EndEvidence): boolean {
  return evidence.closeError === true || evidence.closeReason === 'error' || evidence.disconnectReason === 'AGENT_ERROR';
}

function firstReason(evidence: EndEvidence): EndReason {
  const { answered } = evidence;
  // The agent's own facts: it knows what it did.
  if (evidence.hangupTool) return 'agent_hangup';
  if (evidence.voicemail) return 'voicemail';
  if (evidence.transferred) return 'transfer';
  if (evidence.maxDurationReached) return 'max_duration';
  // Errors: a session that failed did not end normally, whoever left afterwards.
  if (sessionFailed(evidence)) return 'agent_error';
  if (evidence.workerLost) return 'worker_lost';
  const usable = (reason: EndReason | undefined): reason is EndReason => reason !== undefined && !(answered && UNANSWERED_ONLY.has(reason));
  const sip = evidence.sipStatusCode === undefined ? undefined : endReasonFromSipStatus(evidence.sipStatusCode);
  if (usable(sip)) return sip;
  if (evidence.answerTimedOut && !answered) return 'no_answer';
  const disconnect = evidence.disconnectReason === undefined ? undefined : endReasonFromDisconnect(evidence.disconnectReason);
  if (usable(disconnect)) return disconnect;
  const close = evidence.closeReason === undefined ? undefined : endReasonFromCloseReason(evidence.closeReason);
  if (usable(close)) return close;
  // Nothing decisive. The SIP participant left (for a reason that names nobody): the caller went.
  // It did not leave and the call was answered: our side ended it. Otherwise nobody picked up.
  if (evidence.disconnectReason !== undefined) return 'caller_hangup';
  return answered ? 'agent_hangup' : 'no_answer';
}

/** The spec's status of a call that ended this way. */
function statusFor(endReason: EndReason, answered: boolean): FinalStatus {
  if (answered) {
    switch (endReason) {
      case 'agent_error':
      case 'failed':
        return CALL_STATUS.failed;
      case 'max_duration':
        return CALL_STATUS.limitReached;
      default:
        // worker_lost included: as render.ts does for an inferred end, the answered call stands.
        return CALL_STATUS.completed;
    }
  }
  switch (endReason) {
    case 'busy':
      return UNANSWERED.busy;
    case 'declined':
      return UNANSWERED.declined;
    case 'failed':
    case 'agent_error':
    case 'worker_lost':
      return UNANSWERED.failed;
    case 'caller_hangup':
    case 'agent_hangup':
    case 'transfer':
      // Left (hung up, or handed on) before the call became active.
      return UNANSWERED.abandoned;
    default:
      // no_answer; voicemail and max_duration cannot happen unanswered, and nobody answered them either.
      return UNANSWERED.noAnswer;
  }
}

/**
 * The end reason and status of a call, by one precedence rule: the agent's explicit facts (hangup
 * tool, voicemail, transfer, max duration), then errors (a session error also makes the status
 * `failed` whatever the reason), then a lost worker, then the SIP status, the answer timeout, the
 * SIP participant's disconnect reason, and last the session's close reason. Reasons that only describe an unanswered call
 * (busy, declined, no_answer) are ignored for an answered one.
 */
export function decideEndReason(evidence: EndEvidence): EndDecision {
  const endReason = firstReason(evidence);
  // The agent's facts name the end even when the session then failed (say, the hangup tool ran
  // and the goodbye's TTS errored), but such a call is still failed, never completed.
  const status = sessionFailed(evidence) ? CALL_STATUS.failed : statusFor(endReason, evidence.answered);
  return { endReason, status };
}
