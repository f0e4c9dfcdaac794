/**
 * The default agent the runnable worker serves: a phone assistant with call-data capture and
 * the end-call tool. Your own agent only needs the two marked lines.
 *
 * Everything comes from the one configuration (functions/config/config.ts), validated by
 * worker/main.ts before the worker registers, so nothing here falls back silently:
 * models are LiveKit Inference strings (AGENT_LLM, AGENT_STT, AGENT_TTS, AGENT_INSTRUCTIONS);
 * CALLDATA_AGENT_SCRIPT switches to the offline scripted, text-only agent (functions/config/agent-script.ts;
 * no STT/TTS, replies from ScriptedLLM (FakeLLM's rules plus usage and errors), text over the `lk.chat` topic).
 */
import { defineAgent, voice, type JobContext } from '@livekit/agents';
import { getConfig } from '../functions/config/config.ts';
import { logger } from '../functions/shared/logger.ts';
import { attachCallData } from './capture.ts';
import { parseJobMetadata } from './call-info.ts';
import { END_CALL_TOOL, endCallTool } from './hangup.ts';
import { dialIfOutbound } from './outbound.ts';
import { ScriptedLLM } from './scripted-llm.ts';

const DEFAULT_INSTRUCTIONS =
  'You are a friendly phone assistant. Keep answers short. When the caller is done, say goodbye and call the end_call tool.';

export default defineAgent({
  entry: async (ctx: JobContext) => {
    const config = getConfig();
    const { worker } = config;
    const script = worker.agentScript;

    const session = script
      ? new voice.AgentSession({ llm: new ScriptedLLM(script.responses), turnHandling: { turnDetection: 'manual' } })
      : new voice.AgentSession({
          llm: worker.llm as never,
          stt: worker.stt as never,
          tts: worker.tts as never,
        });

    // (1) capture call data for this job
    const capture = attachCallData(ctx, session, {
      config,
      progressIntervalMs: worker.progressIntervalMs,
    });

    const agent = new voice.Agent({
      instructions: script?.instructions ?? worker.instructions ?? DEFAULT_INSTRUCTIONS,
      // (2) offer the end-call tool (a no-op when HANGUP_CALL=false)
      tools: { [END_CALL_TOOL]: endCallTool({ ctx, capture }) },
    });

    const textOnly = script !== undefined;
    await session.start({
      agent,
      room: ctx.room,
      inputOptions: textOnly ? { audioEnabled: false } : {},
      outputOptions: textOnly ? { audioEnabled: false } : {},
    });
    await ctx.connect();

    const dial = await dialIfOutbound({ hints: parseJobMetadata(ctx.job.metadata), roomName: ctx.room.name ?? capture.roomName, capture });
    if (dial.dialed && !dial.answered) return;
    if (!textOnly) {
      session.generateReply({ instructions: 'Greet the caller and offer your help.' });
    }
    logger.info('agent ready', { callId: capture.callId, scripted: textOnly });
  },
});
