/**
 * The scripted agent's LLM (CALLDATA_AGENT_SCRIPT): replies as voice.testing.FakeLLM does, keyed
 * by the last user message (or tool output), and in addition reports what a real model reports,
 * so a scripted call exercises the whole of call insights without a provider account:
 *
 *   usage   {"promptTokens", "completionTokens"} on a response: the token usage LiveKit's
 *           LLMMetrics (and so session.usage) count for it
 *   error   a message: the response fails with a non-retryable APIConnectionError, as an
 *           unreachable provider does (after four in a row AgentSession closes with an error)
 *
 * Its model is `scripted` from provider `calldata`, so usage and prices name it.
 */
import { APIConnectionError, llm, type APIConnectOptions } from '@livekit/agents';

export interface ScriptedResponse {
  input: string;
  content?: string;
  /** Milliseconds before the first chunk. */
  ttft?: number;
  /** Least milliseconds the whole response takes. */
  duration?: number;
  toolCalls?: { name: string; args: Record<string, unknown> }[];
  usage?: { promptTokens: number; completionTokens: number };
  error?: string;
}

type ChatParams = Parameters<llm.LLM['chat']>[0];

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ScriptedLLM extends llm.LLM {
  private readonly responses = new Map<string, ScriptedResponse>();

  constructor(responses: readonly ScriptedResponse[]) {
    super();
    for (const response of responses) this.responses.set(response.input, response);
  }

  label(): string {
    return 'scripted-llm';
  }

  override get model(): string {
    return 'scripted';
  }

  override get provider(): string {
    return 'calldata';
  }

  lookup(input: string): ScriptedResponse | undefined {
    return this.responses.get(input);
  }

  chat({ chatCtx, toolCtx, connOptions }: ChatParams): llm.LLMStream {
    return new ScriptedStream(this, { chatCtx, toolCtx, connOptions: connOptions ?? ({ maxRetry: 0, retryIntervalMs: 0, timeoutMs: 10_000 } as APIConnectOptions) });
  }
}

class ScriptedStream extends llm.LLMStream {
  private readonly scripted: ScriptedLLM;

  constructor(scripted: ScriptedLLM, params: ConstructorParameters<typeof llm.LLMStream>[1]) {
    super(scripted, params);
    this.scripted = scripted;
  }

  /** What the reply answers: the last user message, or the output of the tool that just ran. */
  private input(): string | undefined {
    const last = this.chatCtx.items.at(-1);
    if (!last) return undefined;
    if (last.type === 'message') return last.role === 'user' ? (last.textContent ?? '') : undefined;
    if (last.type === 'function_call_output') return last.output;
    return undefined;
  }

  protected async run(): Promise<void> {
    const input = this.input();
    const response = input === undefined ? undefined : this.scripted.lookup(input);
    if (!response) return;
    const startedAt = Date.now();
    if ((response.ttft ?? 0) > 0) await delay(response.ttft ?? 0);
    if (response.error !== undefined) throw new APIConnectionError({ message: response.error, options: { retryable: false } });
    const content = response.content ?? '';
    for (let i = 0; i < content.length; i += 3) this.queue.put({ id: 'scripted', delta: { role: 'assistant', content: content.slice(i, i + 3) } });
    if (response.toolCalls && response.toolCalls.length > 0) {
      const toolCalls = response.toolCalls.map((call, index) => llm.FunctionCall.create({ callId: `scripted_call_${index}`, name: call.name, args: JSON.stringify(call.args) }));
      this.queue.put({ id: 'scripted', delta: { role: 'assistant', toolCalls } });
    }
    if (response.usage) {
      const { promptTokens, completionTokens } = response.usage;
      this.queue.put({ id: 'scripted', usage: { promptTokens, completionTokens, promptCachedTokens: 0, totalTokens: promptTokens + completionTokens } });
    }
    const rest = (response.duration ?? 0) - (Date.now() - startedAt);
    if (rest > 0) await delay(rest);
  }
}
