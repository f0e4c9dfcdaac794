/**
 * The package's main entry (`calldata`): call data for your own LiveKit agent.
 *
 *   import { attachCallData, endCallTool } from 'calldata';
 *
 *   entry: async (ctx) => {
 *     const session = new voice.AgentSession({ ... });
 *     const capture = attachCallData(ctx, session);          // metadata, transcript, recording
 *     const agent = new voice.Agent({ instructions, tools: { end_call: endCallTool({ ctx, capture }) } });
 *     await session.start({ agent, room: ctx.room });
 *     await ctx.connect();
 *   }
 *
 * @livekit/agents and @livekit/rtc-node are the agent's own (peer dependencies): capture
 * listens to the very session and room objects the agent created.
 */
export { attachCallData, CallDataCapture, callIdFor, writerFor, type CallDataOptions } from './capture.ts';
export { endCallTool, endCall, END_CALL_TOOL, HANGUP_DISABLED_REPLY } from './hangup.ts';
export { dialIfOutbound, type DialResult } from './outbound.ts';
export { parseJobMetadata, callParties, sipDetails } from './call-info.ts';
export { reasonForSipStatus, reasonForDisconnect, UNANSWERED, type UnansweredReason } from './sip.ts';
export { getConfig, loadConfig, type Config } from '../functions/config/config.ts';
export { CallDataError, isRetryable } from '../functions/errors.ts';
