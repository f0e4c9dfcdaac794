/**
 * What the default worker checks before it registers with LiveKit: that it can reach LiveKit
 * at all (URL, API key and secret), and that its agent can answer — through LiveKit Inference,
 * which needs the credentials of a LiveKit Cloud project, or as the offline scripted agent
 * (CALLDATA_AGENT_SCRIPT). Each problem is one line saying what is missing and how to fix it.
 */
import type { Config, LivekitSettings } from '../functions/config/config.ts';
import { missingLivekit, type LivekitVariable } from '../functions/config/livekit.ts';

/** The LiveKit CLI's own options override the configuration (`--url`, `--api-key`, `--api-secret`). */
export function livekitFromArgs(livekit: LivekitSettings, argv: readonly string[]): LivekitSettings {
  const option = (name: string): string | undefined => {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i] ?? '';
      if (arg === name) return argv[i + 1];
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    }
    return undefined;
  };
  return { ...livekit, url: option('--url') ?? livekit.url, apiKey: option('--api-key') ?? livekit.apiKey, apiSecret: option('--api-secret') ?? livekit.apiSecret };
}

/** True for a LiveKit Cloud project's URL, whose credentials also open LiveKit Inference. */
export function isLivekitCloud(url: string | undefined): boolean {
  if (!url || !URL.canParse(url)) return false;
  return /(^|\.)livekit\.cloud$/i.test(new URL(url).hostname);
}

/** How to set each LiveKit variable the worker lacks. */
const LIVEKIT_HOW: Readonly<Record<LivekitVariable, string>> = {
  LIVEKIT_URL: 'set it to your LiveKit server (ws://127.0.0.1:7880 for a local livekit-server, wss://<project>.livekit.cloud for LiveKit Cloud)',
  LIVEKIT_API_KEY: "set it to the server's API key (livekit-server --dev uses devkey; LiveKit Cloud: project settings → API keys)",
  LIVEKIT_API_SECRET: "set it to the API key's secret (livekit-server --dev uses secret)",
};

const OFFLINE_HINT = 'or set CALLDATA_AGENT_SCRIPT to a script file to run the offline scripted agent (README: "Try the worker without any account")';

/** The problems that keep the worker from working, one line each; empty when it can start. */
export function startProblems(config: Pick<Config, 'livekit' | 'worker'>): string[] {
  const { livekit, worker } = config;
  const problems = missingLivekit(livekit).map((variable) => `${variable} is not set: ${LIVEKIT_HOW[variable]}`);
  // The script was parsed and validated with the configuration; it needs no model account.
  if (worker.agentScript) return problems;

  const inference = (livekit.inferenceApiKey && livekit.inferenceApiSecret) || (isLivekitCloud(livekit.url) && livekit.apiKey && livekit.apiSecret);
  if (!inference && livekit.url) {
    problems.push(
      `no model access: the default agent's models (${worker.llm}, ${worker.stt}, ${worker.tts}) run on LiveKit Inference, which needs a LiveKit Cloud project, and ${livekit.url} is not one: ` +
        `use a wss://<project>.livekit.cloud URL with its key and secret, set LIVEKIT_INFERENCE_API_KEY and LIVEKIT_INFERENCE_API_SECRET of a Cloud project, ${OFFLINE_HINT}`,
    );
  }
  return problems;
}
