/**
 * Egress outcomes in the words the metadata uses, and how they become the call's status.
 * LiveKit's EgressStatus numbers: STARTING 0, ACTIVE 1, ENDING 2, COMPLETE 3, FAILED 4,
 * ABORTED 5, LIMIT_REACHED 6.
 */
export type RecordingStatus = 'starting' | 'active' | 'ending' | 'complete' | 'failed' | 'aborted' | 'limit_reached' | 'discarded';

const BY_NUMBER: readonly RecordingStatus[] = ['starting', 'active', 'ending', 'complete', 'failed', 'aborted', 'limit_reached'];

export const TERMINAL_RECORDING_STATUSES: ReadonlySet<string> = new Set(['complete', 'failed', 'aborted', 'limit_reached', 'discarded']);

export function recordingStatusOf(egressStatus: number | string | undefined): RecordingStatus | undefined {
  if (typeof egressStatus === 'number') return BY_NUMBER[egressStatus];
  if (typeof egressStatus === 'string') {
    const name = egressStatus.replace(/^EGRESS_/, '').toLowerCase();
    return (BY_NUMBER as readonly string[]).includes(name) ? (name as RecordingStatus) : undefined;
  }
  return undefined;
}

export function isTerminal(status: string | undefined): boolean {
  return status !== undefined && TERMINAL_RECORDING_STATUSES.has(status);
}

/** True once the egress has stopped producing and uploading (its file, if any, is final). */
export function egressEnded(egressStatus: number | undefined): boolean {
  return egressStatus !== undefined && egressStatus >= 3;
}

/**
 * The spec's metadata status of an answered call that was recorded: the egress result
 * (completed, failed, aborted, limit_reached). Unanswered calls keep their unanswered reason.
 */
export function callStatusForRecording(status: string): string | undefined {
  switch (status) {
    case 'complete':
      return 'completed';
    case 'failed':
    case 'aborted':
    case 'limit_reached':
      return status;
    default:
      return undefined;
  }
}
