/** What the worker checks before it registers: LiveKit, and model access or the scripted agent. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { isLivekitCloud, livekitFromArgs, startProblems } from '../../worker/start-checks.ts';

const LOCAL = { LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: 'devkey', LIVEKIT_API_SECRET: 'secret' };

describe('worker start checks', () => {
  it('pass for a LiveKit Cloud project (Inference included) and for the scripted agent on any server', () => {
    // Prepare
    const script = join(mkdtempSync(join(tmpdir(), 'calldata-script-')), 'script.json');
    writeFileSync(script, JSON.stringify({ responses: [{ input: 'hello', content: 'Hi' }] }));

    // Act / Assess
    expect(startProblems(loadConfig({ LIVEKIT_URL: 'wss://demo-abc.livekit.cloud', LIVEKIT_API_KEY: 'APIx', LIVEKIT_API_SECRET: 's' }))).toEqual([]);
    expect(startProblems(loadConfig({ ...LOCAL, CALLDATA_AGENT_SCRIPT: script }))).toEqual([]);
    expect(startProblems(loadConfig({ ...LOCAL, CALLDATA_AGENT_SCRIPT: '{"responses": []}' }))).toEqual([]);
    expect(startProblems(loadConfig({ ...LOCAL, LIVEKIT_INFERENCE_API_KEY: 'APIc', LIVEKIT_INFERENCE_API_SECRET: 'c' }))).toEqual([]);
  });

  it('name each missing LiveKit variable with how to set it', () => {
    const problems = startProblems(loadConfig({ CALLDATA_AGENT_SCRIPT: '{"responses": []}' }));
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^LIVEKIT_URL is not set: set it to your LiveKit server/);
    expect(problems[1]).toMatch(/^LIVEKIT_API_KEY is not set: /);
    expect(problems[2]).toMatch(/^LIVEKIT_API_SECRET is not set: /);
  });

  it('say there is no model access on a self-hosted server without the scripted agent, and what to do', () => {
    const problems = startProblems(loadConfig(LOCAL));
    expect(problems).toEqual([expect.stringMatching(/^no model access: .*openai\/gpt-4\.1-mini.*ws:\/\/127\.0\.0\.1:7880 is not one: .*LIVEKIT_INFERENCE_API_KEY.*CALLDATA_AGENT_SCRIPT/)]);
  });

  it('use the script the configuration parsed, never the raw value (a bad script never gets this far)', () => {
    // Prepare: the configuration holds the parsed script
    const config = loadConfig({ ...LOCAL, CALLDATA_AGENT_SCRIPT: '{"instructions": "Be brief.", "responses": [{"input": "hello", "content": "Hi"}]}' });

    // Act / Assess
    expect(config.worker.agentScript).toEqual({ instructions: 'Be brief.', responses: [{ input: 'hello', content: 'Hi' }] });
    expect(startProblems(config)).toEqual([]);
    expect(() => loadConfig({ ...LOCAL, CALLDATA_AGENT_SCRIPT: '{broken' })).toThrow(/CALLDATA_AGENT_SCRIPT: is not valid JSON/);
  });

  it("take LiveKit's CLI options over the configuration", () => {
    const livekit = livekitFromArgs(loadConfig({}).livekit, ['dev', '--url', 'wss://x.livekit.cloud', '--api-key=k', '--api-secret', 's']);
    expect(livekit).toMatchObject({ url: 'wss://x.livekit.cloud', apiKey: 'k', apiSecret: 's' });
    expect(startProblems({ livekit, worker: loadConfig({}).worker })).toEqual([]);
  });

  it.each([
    ['wss://demo.livekit.cloud', true],
    ['https://demo.eu.livekit.cloud', true],
    ['ws://127.0.0.1:7880', false],
    ['wss://livekit.cloud.example.com', false],
    ['wss://evil-livekit.cloud', false],
    [undefined, false],
  ])('knows whether %s is LiveKit Cloud (%s)', (url, cloud) => {
    expect(isLivekitCloud(url)).toBe(cloud);
  });
});
