/**
 * The offline scripted agent (CALLDATA_AGENT_SCRIPT): a text-only agent whose replies come from
 * worker/scripted-llm.ts (voice.testing.FakeLLM's rules plus usage and errors), for trying the
 * worker without any model account, smoke tests and demos. The value is a JSON file path or
 * inline JSON, read and validated with the rest of the configuration (config.ts):
 *   {"instructions"?: string, "responses": [{"input": "hello", "content": "Hi!", "toolCalls"?: [...]}]}
 */
import * as z from 'zod';

export const agentScriptSchema = z.object({
  instructions: z.string().optional(),
  responses: z.array(
    z.object({
      input: z.string(),
      content: z.string().optional(),
      ttft: z.number().optional(),
      duration: z.number().optional(),
      toolCalls: z.array(z.object({ name: z.string(), args: z.record(z.string(), z.unknown()) })).optional(),
      /** Token usage the response reports (worker/scripted-llm.ts), so scripted calls have usage. */
      usage: z.object({ promptTokens: z.number().int().nonnegative(), completionTokens: z.number().int().nonnegative() }).optional(),
      /** The response fails with this message, as an unreachable model does. */
      error: z.string().optional(),
    }),
  ),
});
export type AgentScript = z.infer<typeof agentScriptSchema>;

/** Added to every CALLDATA_AGENT_SCRIPT problem: what a valid script looks like. */
export const AGENT_SCRIPT_HINT = 'point it at a JSON file like {"responses": [{"input": "hello", "content": "Hi!"}]}';
