/**
 * One list of variables (functions/config/variables.ts): the code reads nothing else, and
 * `.env.example` and the README's table say exactly what the list says.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { LIBRARY_VARIABLES, SDK_VARIABLES, VARIABLE_NAMES, VARIABLES, type Variable } from '../../functions/config/variables.ts';

const ROOT = join(import.meta.dirname, '../..');
const example = readFileSync(join(ROOT, '.env.example'), 'utf8');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Every variable name the runtime code names: `env.X`, `process.env.X`, or a quoted variable-like name. */
function variablesNamedBy(folders: string[]): Set<string> {
  const names = new Set<string>();
  for (const folder of folders) {
    for (const file of readdirSync(join(ROOT, folder), { recursive: true }).map(String)) {
      if (!file.endsWith('.ts') || file.endsWith('config/variables.ts') || file.includes('/web/')) continue;
      const text = readFileSync(join(ROOT, folder, file), 'utf8');
      for (const m of text.matchAll(/env\.([A-Z][A-Z0-9_]+)|'((?:CALL|SAVE|HANGUP|CALLDATA|LIVEKIT|METADATA|TRANSCRIPTION|AWS_S3|MINIO|TIMEZONE)[A-Z0-9_]*|AGENT_(?:LLM|STT|TTS|INSTRUCTIONS))'/g)) {
        names.add(m[1] ?? m[2] ?? '');
      }
    }
  }
  names.delete('');
  return names;
}

/** `NAME=value` lines of .env.example, commented out (`# NAME=value`) or not. */
function documented(): Map<string, string> {
  return new Map([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1] ?? '', (m[2] ?? '').replace(/\s+#.*$/, '').trim()]));
}

/** The README table row of a variable, as the list renders it. */
function row(v: Variable): string {
  return `| \`${v.name}\` | ${v.default === '' ? '—' : `\`${v.default}\``} | ${v.description} |`;
}

describe('the variable list', () => {
  it('names every variable the worker and the functions read, and nothing they do not', () => {
    // Prepare
    const named = variablesNamedBy(['functions', 'worker']);
    const isSecretReference = (name: string) => name.endsWith('_SECRET_ARN');

    // Act
    const unlisted = [...named].filter((v) => !VARIABLE_NAMES.has(v) && !LIBRARY_VARIABLES.has(v) && !isSecretReference(v));
    const unread = [...VARIABLE_NAMES].filter((v) => !named.has(v));

    // Assess
    expect(unlisted).toEqual([]);
    expect(unread).toEqual([]);
  });

  it('holds each variable once, with a description and at least one reader', () => {
    expect(VARIABLE_NAMES.size).toBe(VARIABLES.length);
    for (const v of VARIABLES) {
      expect(v.description.length, v.name).toBeGreaterThan(3);
      expect(v.readers.length, v.name).toBeGreaterThan(0);
    }
  });

  it('reads back its own defaults: a configuration of only the written defaults equals the empty one', () => {
    // Prepare
    const defaults = Object.fromEntries(VARIABLES.filter((v) => v.default !== '').map((v) => [v.name, v.default]));

    // Act
    const { warnings: _a, ...fromDefaults } = loadConfig(defaults);
    const { warnings: _b, ...fromNothing } = loadConfig({});

    // Assess
    expect(fromDefaults).toEqual(fromNothing);
  });

  it("says who reads each variable: the capture's own settings are the worker's alone", () => {
    // Prepare: the configuration fields only the worker's capture and agent use
    const workerOnly = { SAVE_TOOL_CALLS: 'saveToolCalls', HANGUP_CALL: 'hangupCall', CALLDATA_ANSWER_TIMEOUT_MS: 'answerTimeoutMs' } as const;
    const code = (folder: string) =>
      readdirSync(join(ROOT, folder), { recursive: true })
        .map(String)
        .filter((file) => file.endsWith('.ts') && !file.startsWith('config/'))
        .map((file) => readFileSync(join(ROOT, folder, file), 'utf8'))
        .join('\n');
    const functions = code('functions');
    const worker = code('worker');

    // Act / Assess
    for (const [name, field] of Object.entries(workerOnly)) {
      expect(VARIABLES.find((v) => v.name === name)?.readers, name).toEqual(['worker']);
      expect(worker, name).toMatch(new RegExp(`\\.${field}\\b`));
      expect(functions, name).not.toMatch(new RegExp(`\\.${field}\\b`));
    }
  });
});

describe('.env.example', () => {
  it('is a valid configuration as written', () => {
    const env = parseEnv(example);
    expect(loadConfig(env)).toMatchObject({ callRecording: false, saveMetadata: false, saveTranscription: false, hangupCall: true, metadataLocation: 'Call_Metadata', transcriptionLocation: 'Transcriptions' });
  });

  it("lists exactly the variables of the list, each with its default, and the AWS SDK's own (an example value each)", () => {
    // Prepare
    const lines = documented();

    // Act
    const extra = [...lines.keys()].filter((name) => !VARIABLE_NAMES.has(name) && !LIBRARY_VARIABLES.has(name));
    const missing = [...VARIABLES, ...SDK_VARIABLES].filter((v) => !lines.has(v.name)).map((v) => v.name);
    const wrongDefault = VARIABLES.filter((v) => lines.has(v.name) && lines.get(v.name) !== v.default).map((v) => `${v.name}=${lines.get(v.name)} (list: ${JSON.stringify(v.default)})`);

    // Assess
    expect(extra).toEqual([]);
    expect(missing).toEqual([]);
    expect(wrongDefault).toEqual([]);
  });
});

describe("the README's configuration table", () => {
  it("is the list, row for row, then the AWS SDK's variables .env.example names", () => {
    // Prepare
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
    const table = section.split('\n').filter((line) => line.startsWith('| `'));

    // Act / Assess
    expect(table).toEqual([...VARIABLES, ...SDK_VARIABLES].map(row));
  });
});
