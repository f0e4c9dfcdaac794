/**
 * The offline scripted agent (CALLDATA_AGENT_SCRIPT): a text-only agent whose replies come from
 * voice.testing.FakeLLM, for trying the worker without any model account, smoke tests and demos.
 * The value is a JSON file path or inline JSON:
 *   {"instructions"?: string, "responses": [{"input": "hello", "content": "Hi!", "toolCalls"?: [...]}]}
 */
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { ConfigError } from '../functions/config/errors.ts';

const scriptSchema = z.object({
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
export type AgentScript = z.infer<typeof scriptSchema>;

const VARIABLE = 'CALLDATA_AGENT_SCRIPT';

/** Parses the script (undefined when none is set); a bad one is a ConfigError naming the variable. */
export function loadScript(value: string | undefined): AgentScript | undefined {
  const raw = value?.trim();
  if (!raw) return undefined;
  let text = raw;
  if (!raw.startsWith('{')) {
    try {
      text = readFileSync(raw, 'utf8');
    } catch (error) {
      throw new ConfigError([{ variable: VARIABLE, message: `cannot read ${JSON.stringify(raw)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` }]);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([{ variable: VARIABLE, message: `is not valid JSON (${(error as Error).message})` }]);
  }
  const parsed = scriptSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError([{ variable: VARIABLE, message: `is not a script: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}` }]);
  }
  return parsed.data;
}
