/**
 * A LiveKit agent of your own with calldata added: the two marked lines. It imports calldata
 * only by its package name, as any project that ran `npm install calldata` does.
 *
 *   node agent.js dev      (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, SAVE_METADATA=true, ...)
 *
 * For tests and demos it is a scripted, text-only agent: replies come from
 * voice.testing.FakeLLM (EXAMPLE_AGENT_SCRIPT: {"instructions"?, "responses": [{"input", "content"}]}),
 * no speech-to-text or text-to-speech, text over the `lk.chat` topic. A real agent passes its
 * llm, stt and tts to the AgentSession instead.
 */
import { fileURLToPath } from 'node:url';
import { cli, defineAgent, ServerOptions, voice } from '@livekit/agents';
import { attachCallData, END_CALL_TOOL, endCallTool } from 'calldata';

const script = JSON.parse(process.env.EXAMPLE_AGENT_SCRIPT ?? '{"responses": []}');

export default defineAgent({
  entry: async (ctx) => {
    const session = new voice.AgentSession({ llm: new voice.testing.FakeLLM(script.responses), turnHandling: { turnDetection: 'manual' } });
    // (1) call data: metadata, transcript and recording, as the environment says
    const capture = attachCallData(ctx, session);
    const agent = new voice.Agent({
      instructions: script.instructions ?? 'You are a friendly phone assistant.',
      // (2) the end-call tool
      tools: { [END_CALL_TOOL]: endCallTool({ ctx, capture }) },
    });
    await session.start({ agent, room: ctx.room, inputOptions: { audioEnabled: false }, outputOptions: { audioEnabled: false } });
    await ctx.connect();
  },
});

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  cli.runApp(
    new ServerOptions({
      agent: fileURLToPath(import.meta.url),
      agentName: process.env.LIVEKIT_AGENT_NAME ?? '',
      // Counts jobs, not the machine's CPU, as this worker's load: test machines are shared.
      loadFunc: async (server) => Math.min(1, server.activeJobs.length / 4),
      loadThreshold: 1,
    }),
  );
}
