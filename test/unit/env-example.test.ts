import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { loadRecordingSettings } from '../../functions/recording/settings.ts';

const ROOT = join(import.meta.dirname, '../..');
const example = readFileSync(join(ROOT, '.env.example'), 'utf8');

/** Every variable name the runtime code reads from the environment. */
function variablesReadBy(folders: string[]): Set<string> {
  const names = new Set<string>();
  for (const folder of folders) {
    for (const file of readdirSync(join(ROOT, folder), { recursive: true }).map(String)) {
      if (!file.endsWith('.ts')) continue;
      const text = readFileSync(join(ROOT, folder, file), 'utf8');
      for (const m of text.matchAll(/env\.([A-Z][A-Z0-9_]+)|'((?:CALL|SAVE|HANGUP|CALLDATA|LIVEKIT|METADATA|TRANSCRIPTION|AWS_S3|MINIO)[A-Z0-9_]*)'/g)) names.add(m[1] ?? m[2] ?? '');
    }
  }
  return names;
}

describe('.env.example', () => {
  it('is a valid configuration as written', () => {
    const env = parseEnv(example);
    expect(() => loadConfig(env)).not.toThrow();
    expect(loadConfig(env)).toMatchObject({ callRecording: false, saveMetadata: false, saveTranscription: false, hangupCall: true, metadataLocation: 'Call_Metadata', transcriptionLocation: 'Transcriptions' });
  });

  it('documents every variable the worker and the functions read at run time', () => {
    const documented = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    // Comments name the alternatives (MINIO_*), and the stack's deploy-time settings live in docs/deploy.md.
    for (const m of example.matchAll(/\b(MINIO_[A-Z_]+|AWS_S3_[A-Z_]+)\b/g)) documented.add(m[1]);
    const internal = new Set(['CALLDATA_AGENT_SCRIPT', 'CALLDATA_LAMBDA_NODE', 'POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_SERVICE_NAME', 'AWS_REGION']);
    const missing = [...variablesReadBy(['functions', 'worker'])].filter((v) => v && !documented.has(v) && !internal.has(v) && !v.endsWith('_SECRET_ARN'));
    expect(missing).toEqual([]);
  });

  it('gives the recording function valid settings', () => {
    const env = { ...parseEnv(example), LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: 'devkey', LIVEKIT_API_SECRET: 'secret' };
    expect(() => loadRecordingSettings(env)).not.toThrow();
  });
});
