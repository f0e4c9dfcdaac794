/**
 * The closed vocabularies of the call record, in one place: statuses, unanswered reasons,
 * who may say a call ended, the recording's progression and the kinds of model usage. Everything that compares or
 * ranks these values imports them from here.
 */

/** The spec's metadata statuses of a call that was answered. */
export const CALL_STATUS = {
  inProgress: 'in_progress',
  completed: 'completed',
  failed: 'failed',
  aborted: 'aborted',
  limitReached: 'limit_reached',
} as const;

/** Metadata statuses of calls that were never answered (the spec's "unanswered reasons"). */
export const UNANSWERED = {
  noAnswer: 'no_answer',
  busy: 'busy',
  declined: 'declined',
  failed: 'failed',
  /** The caller (or callee) hung up before the call became active. */
  abandoned: 'abandoned',
} as const;
export type UnansweredReason = (typeof UNANSWERED)[keyof typeof UNANSWERED];

export const FINAL_STATUSES = [
  CALL_STATUS.completed,
  CALL_STATUS.failed,
  CALL_STATUS.aborted,
  CALL_STATUS.limitReached,
  UNANSWERED.noAnswer,
  UNANSWERED.busy,
  UNANSWERED.declined,
  UNANSWERED.abandoned,
] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];
export type CallStatus = FinalStatus | typeof CALL_STATUS.inProgress;

const UNANSWERED_SET: ReadonlySet<string> = new Set(Object.values(UNANSWERED));
/** True for statuses that mean "nobody answered" (`failed` counts only when the call was not answered). */
export function isUnansweredStatus(status: string): boolean {
  return UNANSWERED_SET.has(status) && status !== UNANSWERED.failed;
}

/**
 * Who reports an end, strongest first. The worker saw the call itself; LiveKit's
 * `participant_left` names the SIP participant's departure; `room_finished` is the room's close
 * (20-30 s after the last participant left); the sweeper only knows when the last fact came.
 */
export const END_SOURCES = ['worker', 'participant_left', 'room_finished', 'sweeper'] as const;
export type EndSource = (typeof END_SOURCES)[number];

/** Who reports the outcome (the final status), strongest first: seen beats inferred. */
export const OUTCOME_SOURCES = ['worker', 'webhook', 'sweeper'] as const;
export type OutcomeSource = (typeof OUTCOME_SOURCES)[number];

/** Why a call ended: one small taxonomy, derived from LiveKit's CloseReason, the SIP participant's
 * disconnect reason, SIP status codes, the hangup tool and the answer timeout (functions/domain/insights/end-reason.ts). */
export const END_REASONS = ['caller_hangup', 'agent_hangup', 'no_answer', 'busy', 'declined', 'failed', 'voicemail', 'max_duration', 'agent_error', 'worker_lost', 'transfer'] as const;
export type EndReason = (typeof END_REASONS)[number];

/** endReason of a call its worker never closed. */
export const WORKER_LOST = {
  webhook: 'worker lost: the room finished without a final report from the agent',
  sweeper: 'worker lost: the room no longer exists and the agent stopped reporting',
} as const;

/**
 * Egress's own progression (LiveKit EgressStatus: STARTING 0, ACTIVE 1, ENDING 2, COMPLETE 3,
 * FAILED 4, ABORTED 5, LIMIT_REACHED 6), in the words the metadata uses.
 */
export const EGRESS_STATUSES = ['starting', 'active', 'ending', 'complete', 'failed', 'aborted', 'limit_reached'] as const;
export type EgressStatus = (typeof EGRESS_STATUSES)[number];
export const TERMINAL_EGRESS_STATUSES: ReadonlySet<EgressStatus> = new Set(['complete', 'failed', 'aborted', 'limit_reached']);

/** The metadata's `recording_status`: the egress status, or `discarded` for a never-answered call. */
export type RecordingStatus = EgressStatus | 'discarded';

/** The call status of an answered call whose recording ended this way (the spec's completed / failed / aborted / limit_reached). */
export function callStatusForEgress(status: EgressStatus): FinalStatus | undefined {
  switch (status) {
    case 'complete':
      return CALL_STATUS.completed;
    case 'failed':
      return CALL_STATUS.failed;
    case 'aborted':
      return CALL_STATUS.aborted;
    case 'limit_reached':
      return CALL_STATUS.limitReached;
    default:
      return undefined;
  }
}

/** Kinds of a worker's message: the first, the ones in between, and its final word. */
export const WORKER_MESSAGE_KINDS = ['started', 'progress', 'ended', 'unanswered'] as const;
export type WorkerMessageKind = (typeof WORKER_MESSAGE_KINDS)[number];

/** The kinds of model usage a call reports (LiveKit's LLM, TTS and STT ModelUsage). */
export const USAGE_KINDS = ['llm', 'tts', 'stt'] as const;
export type UsageKind = (typeof USAGE_KINDS)[number];

/** The counted quantities of a usage entry (names as in agents-js LLMMetrics; audio in ms). */
export const USAGE_QUANTITIES = ['promptTokens', 'completionTokens', 'promptCachedTokens', 'characters', 'audioMs'] as const;
export type UsageQuantity = (typeof USAGE_QUANTITIES)[number];

/** What the recording function is asked to do (see domain/recording-plan.ts for when). */
export const RECORDING_ACTIONS = ['start', 'finish', 'discard', 'restore'] as const;
export type RecordingAction = (typeof RECORDING_ACTIONS)[number];
