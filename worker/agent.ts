/**
 * The default agent the runnable worker serves: a phone assistant with call-data capture and
 * the end-call tool. Your own agent only needs the two marked lines.
 *
 * Models come from the environment (LiveKit Inference model strings):
 *   AGENT_LLM (default openai/gpt-4.1-mini), AGENT_STT (deepgram/nova-3), AGENT_TTS (cartesia/sonic-2),
 *   AGENT_INSTRUCTIONS.
 * CALLDATA_AGENT_SCRIPT switches to a scripted, text-only agent (no STT/TTS; replies from
 * voice.testing.FakeLLM; text over the `lk.chat` topic) for smoke tests and demos. Its value is
 * a JSON file path or inline JSON: {"instructions"?: string, "responses": [{"input", "content", "toolCalls"?}]}.
 * CALLDATA_PROGRESS_INTERVAL_MS tunes the least time between progress messages (default 2000).
 */
import { readFileSync } from 'node:fs';
import { defineAgent, voice, type JobContext } from '@livekit/agents';
import { z } from 'zod';
import { getConfig } from '../functions/config/config.ts';
import { logger } from '../functions/shared/logger.ts';
import { attachCallData } from './capture.ts';
import { parseJobMetadata } from './call-info.ts';
import { END_CALL_TOOL, endCallTool } from './hangup.ts';
import { dialIfOutbound } from './outbound.ts';

const scriptSchema = z.object({
  instructions: z.string().optional(),
  responses: z.array(
    z.object({
      input: z.string(),
      content: z.string().optional(),
      ttft: z.number().optional(),
      duration: z.number().optional(),
      toolCalls: z.array(z.object({ name: z.string(), args: z.record(z.string(), z.unknown()) })).optional(),
    }),
  ),
});
export type AgentScript = z.infer<typeof scriptSchema>;

export function loadScript(value: string | undefined): AgentScript | undefined {
  const raw = value?.trim();
  if (!raw) return undefined;
  const text = raw.startsWith('{') ? raw : readFileSync(raw, 'utf8');
  return scriptSchema.parse(JSON.parse(text));
}

const DEFAULT_INSTRUCTIONS =
  'You are a friendly phone assistant. Keep answers short. When the caller is done, say goodbye and call the end_call tool.';

function positiveInt(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}

export default defineAgent({
  entry: async (ctx: JobContext) => {
    const config = getConfig();
    const script = loadScript(process.env.CALLDATA_AGENT_SCRIPT);
    const env = process.env;

    const session = script
      ? new voice.AgentSession({ llm: new voice.testing.FakeLLM(script.responses), turnHandling: { turnDetection: 'manual' } })
      : new voice.AgentSession({
          llm: (env.AGENT_LLM ?? 'openai/gpt-4.1-mini') as never,
          stt: (env.AGENT_STT ?? 'deepgram/nova-3') as never,
          tts: (env.AGENT_TTS ?? 'cartesia/sonic-2') as never,
        });

    // (1) capture call data for this job
    const capture = attachCallData(ctx, session, {
      config,
      progressIntervalMs: positiveInt(env.CALLDATA_PROGRESS_INTERVAL_MS, 2_000),
    });

    const agent = new voice.Agent({
      instructions: script?.instructions ?? env.AGENT_INSTRUCTIONS ?? DEFAULT_INSTRUCTIONS,
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
