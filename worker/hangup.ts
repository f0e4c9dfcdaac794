/**
 * The end-call function tool. With HANGUP_CALL=true (the default) it waits for the agent to
 * finish speaking and then ends the call by deleting the room (which hangs up the SIP leg and
 * ends the job; the final message follows from the shutdown callback). With HANGUP_CALL=false
 * the tool is still offered but does nothing and tells the model to carry on.
 */
import { llm, type JobContext } from '@livekit/agents';
import { getConfig } from '../functions/config/config.ts';
import { logger } from '../functions/shared/logger.ts';
import type { CallDataCapture } from './capture.ts';

export const END_CALL_TOOL = 'end_call';
export const HANGUP_DISABLED_REPLY = 'Hanging up is disabled for this call. Do not end the call; continue the conversation.';
export const HANGUP_DONE_REPLY = 'The call has been ended.';

export interface EndCallToolOptions {
  ctx: JobContext;
  capture?: CallDataCapture;
  /** Defaults to HANGUP_CALL from the configuration. */
  enabled?: boolean;
  description?: string;
}

/** What the tool does, separate from the SDK wrapper so it can be tested directly. */
export async function endCall(options: EndCallToolOptions, waitForPlayout: () => Promise<unknown>): Promise<string> {
  const enabled = options.enabled ?? getConfig().hangupCall;
  const callId = options.capture?.callId;
  if (!enabled) {
    logger.info('end_call requested but HANGUP_CALL=false; call continues', { callId });
    return HANGUP_DISABLED_REPLY;
  }
  // Let the goodbye be heard before the line goes dead.
  try {
    await waitForPlayout();
  } catch {
    // The speech was interrupted or the session is closing: hang up anyway.
  }
  options.capture?.agentHungUp('agent hung up (end_call tool)');
  logger.info('agent ending the call', { callId });
  await options.ctx.deleteRoom();
  return HANGUP_DONE_REPLY;
}

/** The tool object to put in an Agent's `tools` (as `{ end_call: endCallTool(...) }`). */
export function endCallTool(options: EndCallToolOptions) {
  return llm.tool({
    description:
      options.description ??
      'End the phone call. Use it when the conversation is finished or the caller asks to hang up. Say goodbye before calling it.',
    execute: async (_args, { ctx }) => endCall(options, () => ctx.waitForPlayout()),
  });
}
