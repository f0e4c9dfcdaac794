/**
 * The end reason an unanswered (or failed) status stands for when nothing more is known: the
 * agent's own `markUnanswered`, or an older worker's outcome that named no end reason. One table,
 * used by the worker and by rendering.
 */
import { CALL_STATUS, UNANSWERED, type EndReason } from '../contract/vocabulary.ts';

const END_REASON_OF_STATUS: Readonly<Record<string, EndReason>> = {
  [UNANSWERED.noAnswer]: 'no_answer',
  [UNANSWERED.busy]: 'busy',
  [UNANSWERED.declined]: 'declined',
  [UNANSWERED.abandoned]: 'caller_hangup',
  [CALL_STATUS.failed]: 'failed',
};

export function endReasonOfStatus(status: string | undefined): EndReason | undefined {
  return status !== undefined && Object.hasOwn(END_REASON_OF_STATUS, status) ? END_REASON_OF_STATUS[status] : undefined;
}
