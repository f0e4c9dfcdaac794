/**
 * `calldata calls list | show | recording` as users run them: the real bin in a child process
 * on Node 24, reading calls stored through the real persist path on a local folder and on
 * PostgreSQL, with the recording in LocalStack S3. The child gets no SAVE_* flag: reading
 * never needs the write flags.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { createBucket, localstackEndpoint } from '../support/localstack.ts';
import { requireServer } from '../support/servers.ts';
import { HOSTILE_LINE, HOSTILE_ROOM, isolatedAnchor, NUMBERS, OGG, seedCalls, seedLocations, type Seed } from './calls-seed.ts';
import { runCommand, type Ran } from '../support/commands.ts';

const BIN = join(import.meta.dirname, '../../bin/calldata.js');
const NODE = join(import.meta.dirname, '../../node_modules/.bin/node');
const TIMEZONE = 'Asia/Kolkata';

let dir: string;
let endpoint: string;
let bucket: string;

async function calldata(args: string[], env: Record<string, string>): Promise<Ran> {
  return runCommand(NODE, [BIN, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 60_000 });
}

interface ListJson {
  timezone: string;
  calls: { callId: string; roomName: string; startTime: string; time: string; direction: string; from: string | null; to: string | null; answered: boolean; status: string; recording: boolean; durationS: number | null }[];
  cursor?: string;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'calldata-cli-calls-'));
  endpoint = await localstackEndpoint();
  bucket = await createBucket(endpoint, 'calldata-cli-calls');
});
afterAll(async () => {
  await closeAllBackends();
  await rm(dir, { recursive: true, force: true });
});

describe('calldata calls --help', () => {
  it.each([
    [['calls', 'list', '--help'], /^Usage: calldata calls list \[filters\]/],
    [['calls', 'show', '--help'], /^Usage: calldata calls show <call-id> \[--json\]/],
    [['calls', 'recording', '--help'], /^Usage: calldata calls recording <call-id>/],
    [['calls', '--help'], /^Usage: calldata calls <list \| show \| recording>/],
    [['browse', '--help'], /^Usage: calldata browse \[--port P\] \[--host H\] \[--open\]/],
    [['simulate', '--help'], /^Usage: calldata simulate --room <name>/],
    [['--help'], /^Usage: calldata <command> \[options\]\n[\s\S]*calls list[\s\S]*browse/],
  ])('%j prints its usage and exits 0', async (args, usage) => {
    const { code, stdout, stderr } = await calldata(args, {});
    expect(code).toBe(0);
    expect(stdout).toMatch(usage);
    expect(stderr).toBe('');
  });
});


for (const [name, where] of Object.entries(seedLocations(() => join(dir, 'calls')))) {
  describe(`calldata calls on ${name}`, () => {
    let seed: Seed;
    /** The seeded window, in the form users type it (ISO with an offset). */
    let window: string[];

    beforeAll(async () => {
      const { location, anchorMs, shared } = await where();
      seed = await seedCalls({ location, anchorMs, endpoint, bucket, timezone: TIMEZONE, shared });
      window = ['--since', new Date(seed.sinceMs).toISOString(), '--until', new Date(seed.untilMs).toISOString()];
    });

    const list = async (...args: string[]) => {
      const result = await calldata(['calls', 'list', ...window, ...args], seed.env);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      return result;
    };
    const listJson = async (...args: string[]) => JSON.parse((await list(...args, '--json')).stdout) as ListJson;

    it('lists every call newest first as a table, times in TIMEZONE', async () => {
      // Act
      const { stdout } = await list();
      // Assess
      const [header, ...rows] = stdout.trimEnd().split('\n');
      expect(header).toMatch(/^TIME \(Asia\/Kolkata\) +ROOM +DIRECTION +FROM +TO +DURATION +ANSWERED +STATUS +RECORDING +CALL ID$/);
      expect(rows.map((row) => row.split(/\s+/).at(-1))).toEqual(seed.newestFirst.map((c) => c.callId));
      const support = rows.find((row) => row.endsWith(seed.call('support').callId)) ?? '';
      const start = new Intl.DateTimeFormat('sv-SE', { timeZone: TIMEZONE, dateStyle: 'short', timeStyle: 'medium' }).format(seed.calls[0]?.startedAtMs);
      expect(support.startsWith(start)).toBe(true);
      expect(support).toMatch(new RegExp(`${seed.call('support').roomName} +inbound +\\${NUMBERS.caller} +\\${NUMBERS.agent} +0:45 +yes +completed +yes`));
      const missed = rows.find((row) => row.endsWith(seed.call('missed').callId)) ?? '';
      expect(missed).toMatch(new RegExp(`${seed.call('sales').roomName} +outbound +\\${NUMBERS.agent} +\\${NUMBERS.other} +0:25 +no +no_answer +no`));
      // The hostile room name is printed as the text it is.
      expect(stdout).toContain(HOSTILE_ROOM);
      expect(stdout).not.toMatch(/Next page/);
    });

    it('prints --json with every field and the time in TIMEZONE', async () => {
      const page = await listJson();
      expect(page.timezone).toBe(TIMEZONE);
      expect(page.cursor).toBeUndefined();
      expect(page.calls.map((c) => c.callId)).toEqual(seed.newestFirst.map((c) => c.callId));
      const support = page.calls.find((c) => c.callId === seed.call('support').callId);
      expect(support).toMatchObject({ roomName: seed.call('support').roomName, direction: 'inbound', from: NUMBERS.caller, to: NUMBERS.agent, answered: true, status: 'completed', recording: true, durationS: 45 });
      expect(support?.startTime).toMatch(/\+05:30$/);
      expect(Date.parse(support?.startTime ?? '')).toBe(seed.calls[0]?.startedAtMs);
    });

    it('prints --csv with a header, quoting and no formula cells', async () => {
      const { stdout } = await list('--csv');
      const lines = stdout.split('\r\n').filter(Boolean);
      expect(lines[0]).toBe('call_id,start_time,room_name,direction,from,to,agent_number,user_number,duration_s,answered,status,recording');
      expect(lines).toHaveLength(seed.calls.length + 1);
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^RM_support${seed.run},[^,]+\\+05:30,${seed.call('support').roomName},inbound,\\+14155550100,\\+15550100000,\\+15550100000,\\+14155550100,45,true,completed,true$`)));
      expect(lines).toContainEqual(expect.stringContaining(`,${HOSTILE_ROOM},`));
    });

    it('filters by room, number, answered, status, direction and time', async () => {
      const ids = async (...args: string[]) => (await listJson(...args)).calls.map((c) => c.callId);
      const expected = (pick: (c: Seed['calls'][number]) => boolean) => seed.newestFirst.filter(pick).map((c) => c.callId);
      expect(await ids('--room', seed.call('support').roomName)).toEqual(expected((c) => c.roomName === seed.call('support').roomName));
      expect(await ids('--room', HOSTILE_ROOM)).toEqual(expected((c) => c.roomName === HOSTILE_ROOM));
      // A number as people type it; the agent's number matches every call.
      expect(await ids('--number', '+1 (415) 555-0100')).toEqual(expected((c) => c.userNumber === NUMBERS.caller));
      expect(await ids('--number', NUMBERS.agent)).toEqual(expected(() => true));
      expect(await ids('--unanswered')).toEqual(expected((c) => !c.answered));
      expect(await ids('--answered', '--direction', 'outbound')).toEqual(expected((c) => c.answered && c.direction === 'outbound'));
      expect(await ids('--status', 'busy')).toEqual(expected((c) => c.status === 'busy'));
      // --since / --until as a date-time in TIMEZONE (no offset): the last 24 hours of the window.
      const since = new Intl.DateTimeFormat('sv-SE', { timeZone: TIMEZONE, dateStyle: 'short', timeStyle: 'medium' }).format(seed.untilMs - 24 * 3_600_000).replace(' ', 'T');
      const recent = await calldata(['calls', 'list', '--since', since, '--until', new Date(seed.untilMs).toISOString(), '--json'], seed.env);
      expect((JSON.parse(recent.stdout) as ListJson).calls.map((c) => c.callId)).toEqual(expected((c) => c.startedAtMs >= seed.untilMs - 24 * 3_600_000));
    });

    it('pages with --limit and the printed --cursor, with no call twice and none left out', async () => {
      // Prepare
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      // Act
      do {
        const { stdout } = await list('--limit', '3', ...(cursor ? ['--cursor', cursor] : []));
        const rows = stdout.split('\n').filter((line) => /^\d{4}-\d\d-\d\d /.test(line));
        seen.push(...rows.map((row) => row.split(/\s+/).at(-1) ?? ''));
        cursor = /^Next page: --cursor (\S+)$/m.exec(stdout)?.[1];
        pages++;
        expect(rows.length).toBeLessThanOrEqual(3);
      } while (cursor && pages < 10);
      // Assess
      expect(seen).toEqual(seed.newestFirst.map((c) => c.callId));
      expect(pages).toBe(Math.ceil(seed.calls.length / 3));
      // With --json the cursor is a field.
      const first = await listJson('--limit', '2');
      expect(first.cursor).toEqual(expect.any(String));
      const second = await listJson('--limit', '2', '--cursor', first.cursor ?? '');
      expect(second.calls.map((c) => c.callId)).toEqual(seed.newestFirst.slice(2, 4).map((c) => c.callId));
    });

    it('shows a call: metadata, then the transcript as a conversation with the interruption marked', async () => {
      // Act
      const { code, stdout, stderr } = await calldata(['calls', 'show', seed.call('support').callId], seed.env);
      // Assess
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^Call RM_support${seed.run}\n  stored at  `));
      // In the spec's order, whatever order the store keeps JSON keys in.
      expect(stdout).toMatch(new RegExp(`\nMetadata\n {2}call_id +RM_support${seed.run}\n {2}room_name +${seed.call('support').roomName}\n {2}call_direction +inbound\n`));
      expect(stdout).toMatch(/\n {2}answered +true\n {2}status +completed\n/);
      expect(stdout).toMatch(new RegExp(`\n {2}recording_location +s3://${bucket}/${seed.call('support').roomName}/`));
      expect(stdout).toMatch(/\n {2}duration +45 s \(0:45\)\n/);
      expect(stdout).toContain('Transcript (6 turns, times in Asia/Kolkata)');
      const turns = stdout.split('Transcript')[1]?.split('\n').filter((line) => /^ {2}\d\d:\d\d:\d\d /.test(line)) ?? [];
      expect(turns).toHaveLength(6);
      expect(turns[0]).toMatch(/^ {2}\d\d:\d\d:\d\d {2}agent {2}Thank you for calling Acme support/);
      expect(turns[1]).toMatch(/^ {2}\d\d:\d\d:\d\d {2}user {3}Hi, my order 4419/);
      expect(turns[2]).toMatch(/one moment while I {2}\[interrupted\]$/);
      expect(turns.filter((t) => t.includes('[interrupted]'))).toHaveLength(1);
      // The first line's time is its timestamp in TIMEZONE.
      const answeredAt = (seed.calls[0]?.startedAtMs ?? 0) + 5_000;
      expect(turns[0]?.slice(2, 10)).toBe(new Intl.DateTimeFormat('en-GB', { timeZone: TIMEZONE, timeStyle: 'medium' }).format(answeredAt));
    });

    it('shows a call’s insights in words: why it ended, latency, usage and the estimated cost from CALLDATA_PRICE_TABLE', async () => {
      // Act
      const { code, stdout } = await calldata(['calls', 'show', seed.call('support').callId], seed.env);
      const busy = await calldata(['calls', 'show', seed.call('busy').callId], seed.env);
      // Assess: an Insights section between the metadata and the transcript, and no raw objects in the metadata
      expect(code).toBe(0);
      const insights = stdout.split('\nInsights\n')[1]?.split('\n\n')[0] ?? '';
      expect(insights.split('\n')).toEqual([
        '  Ended           caller_hangup — caller hung up',
        '  Latency         end of utterance: p50 400 ms · p90 400 ms · max 400 ms (3 turns)',
        '                  LLM first token: p50 500 ms · p90 700 ms · max 700 ms (3 turns)',
        '                  end to end: p50 1500 ms · p90 2000 ms · max 2000 ms (3 turns)',
        '  Usage           LLM openai/gpt-4.1-mini: 1,200 input tokens, 150 output tokens',
        '                  TTS cartesia/sonic-2: 420 characters, 21 s of audio',
        '  Estimated cost  0.00072 USD in total',
        '                  openai/gpt-4.1-mini (llm): 0.00072 USD',
        '                  not priced: cartesia/sonic-2',
      ]);
      expect(stdout.indexOf('\nInsights\n')).toBeLessThan(stdout.indexOf('\nTranscript'));
      expect(stdout).not.toContain('[object Object]');
      expect(stdout).not.toMatch(/\n {2}(latency|usage|estimated_cost) /);
      expect(busy.stdout).toMatch(/\nInsights\n {2}Ended +busy — callee busy\n {2}SIP status +486 Busy Here\n/);
    });

    it('shows the documents themselves with --json', async () => {
      const { code, stdout } = await calldata(['calls', 'show', seed.call('hostile').callId, '--json'], seed.env);
      expect(code).toBe(0);
      const documents = JSON.parse(stdout) as { metadata: Record<string, unknown>; transcription: { conversation: { content: string }[] } };
      expect(documents.metadata).toMatchObject({ call_id: seed.call('hostile').callId, room_name: HOSTILE_ROOM, answered: true, user_number: NUMBERS.other, timezone: TIMEZONE });
      expect(documents.transcription.conversation.map((c) => c.content)).toEqual([HOSTILE_LINE, 'I only see text here.']);
      // An unanswered call has metadata and no transcript.
      const missed = JSON.parse((await calldata(['calls', 'show', seed.call('missed').callId, '--json'], seed.env)).stdout) as { metadata: Record<string, unknown>; transcription: unknown };
      expect(missed.metadata).toMatchObject({ answered: false, status: 'no_answer' });
      expect(missed.transcription).toBeNull();
    });

    it('prints a presigned link that downloads the recording from S3', async () => {
      // Act
      const { code, stdout, stderr } = await calldata(['calls', 'recording', seed.call('support').callId], seed.env);
      // Assess
      expect(code).toBe(0);
      const url = stdout.trim();
      expect(url).toMatch(new RegExp(`^${endpoint}/${bucket}/${seed.call('support').roomName}/.+\\.ogg\\?.*X-Amz-Expires=900`));
      expect(stderr).toMatch(/link valid for 15 minutes/);
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('audio/ogg');
      expect(Buffer.from(await response.arrayBuffer()).equals(OGG)).toBe(true);
    });

    it('says in one line when a call has no recording', async () => {
      const { code, stdout, stderr } = await calldata(['calls', 'recording', seed.call('missed').callId], seed.env);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toBe(`calldata: call RM_missed${seed.run} has no recording (it was not answered)\n`);
      const sales = await calldata(['calls', 'recording', seed.call('sales').callId], seed.env);
      expect(sales.stderr).toBe(`calldata: call RM_sales${seed.run} has no recording (no recording was made)\n`);
    });

    it('fails in one line for an unknown call id', async () => {
      for (const sub of ['show', 'recording']) {
        const { code, stdout, stderr } = await calldata(['calls', sub, `RM_unknown${seed.run}`], seed.env);
        expect(code).toBe(1);
        expect(stdout).toBe('');
        expect(stderr).toMatch(new RegExp(`^calldata: no call RM_unknown${seed.run} in \\S+\n$`));
      }
    });
  });
}

describe('calldata calls with metadata in PostgreSQL and transcripts in a local folder', () => {
  let seed: Seed;

  beforeAll(async () => {
    const postgres = await requireServer('postgres');
    seed = await seedCalls({ location: postgres, transcriptionLocation: join(dir, 'transcripts'), anchorMs: isolatedAnchor(), endpoint, bucket, timezone: TIMEZONE, shared: true });
  });

  it('lists from METADATA_LOCATION and reads the transcript from TRANSCRIPTION_LOCATION', async () => {
    // Act
    const listed = await calldata(['calls', 'list', '--since', new Date(seed.sinceMs).toISOString(), '--until', new Date(seed.untilMs).toISOString(), '--json'], seed.env);
    const shown = await calldata(['calls', 'show', seed.call('sales').callId], seed.env);
    const raw = await calldata(['calls', 'show', seed.call('sales').callId, '--json'], seed.env);
    // Assess
    expect((JSON.parse(listed.stdout) as ListJson).calls.map((c) => c.callId)).toEqual(seed.newestFirst.map((c) => c.callId));
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/\n {2}stored at {2}postgres:\/\/calldata@127\.0\.0\.1:\d+\/calldata table call_records call_id=RM_sales/);
    expect(shown.stdout).toContain(`\n  transcript ${join(dir, 'transcripts', seed.call('sales').roomName)}/`);
    expect(shown.stdout).toMatch(/Transcript \(2 turns, times in Asia\/Kolkata\)\n {2}\d\d:\d\d:\d\d {2}agent {2}Hello, this is Ava from Acme calling about your renewal\.\n {2}\d\d:\d\d:\d\d {2}user {3}Sure, go ahead\.\n$/);
    const documents = JSON.parse(raw.stdout) as { metadata: { call_id: string }; transcription: { conversation: { content: string }[] } };
    expect(documents.metadata.call_id).toBe(seed.call('sales').callId);
    expect(documents.transcription.conversation.map((c) => c.content)).toEqual(seed.call('sales').conversation.map((c) => c.content));
  });

  it('renders the metadata of a location that keeps only transcripts with the estimated cost of CALLDATA_PRICE_TABLE', async () => {
    // Prepare: only SAVE_TRANSCRIPTION is on, so calls are read from TRANSCRIPTION_LOCATION, which keeps no metadata document
    const env = { ...seed.env, SAVE_METADATA: 'false', SAVE_TRANSCRIPTION: 'true' };
    // Act
    const raw = await calldata(['calls', 'show', seed.call('sales').callId, '--json'], env);
    const shown = await calldata(['calls', 'show', seed.call('sales').callId], env);
    // Assess: the reader rendered the metadata from the record with the price table
    expect(raw.code).toBe(0);
    const documents = JSON.parse(raw.stdout) as { metadata: { estimated_cost?: unknown; latency?: unknown } };
    expect(documents.metadata.estimated_cost).toEqual({ currency: 'USD', total: 0.00072, lines: [{ model: 'openai/gpt-4.1-mini', kind: 'llm', cost: 0.00072 }], unpriced: ['cartesia/sonic-2'] });
    expect(documents.metadata.latency).toMatchObject({ llm_ttft: { p50_ms: 300, max_ms: 300, count: 1 } });
    expect(shown.stdout).toMatch(/\n {2}stored at {2}.*transcripts/);
    expect(shown.stdout).toContain('  Estimated cost  0.00072 USD in total\n');
  });
});

describe('calldata browse as a command', () => {
  /** Starts `calldata browse`, waits for the address it prints, and returns it with the process. */
  async function startBrowse(args: string[], env: Record<string, string>) {
    const child = spawn(NODE, [BIN, 'browse', ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`browse printed no address: ${stdout} ${stderr}`)), 20_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        if (/Ctrl\+C/.test(stdout)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', () => reject(new Error(`browse exited: ${stderr}`)));
    });
    return { child, stdout: () => stdout, stderr: () => stderr, exited };
  }

  it('serves the page on 127.0.0.1 and a free port, prints the address, and stops on SIGINT with exit code 0', async () => {
    // Act
    const browse = await startBrowse([], { METADATA_LOCATION: join(dir, 'calls'), TIMEZONE });
    // Assess
    const url = /^ {2}(http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(browse.stdout())?.[1] ?? '';
    expect(browse.stdout()).toContain(`calldata browse: calls from ${join(dir, 'calls')}`);
    expect(url).not.toBe('');
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/static/app.js"></script>');
    const calls = (await (await fetch(new URL('/api/calls', url))).json()) as { calls: unknown[] };
    expect(Array.isArray(calls.calls)).toBe(true);
    browse.child.kill('SIGINT');
    expect(await browse.exited).toBe(0);
    expect(browse.stderr()).toBe('');
  });

  it('bound beyond loopback, prints the token and the address that carries it', async () => {
    const browse = await startBrowse(['--host', '0.0.0.0', '--port', '0'], { METADATA_LOCATION: join(dir, 'calls'), TIMEZONE });
    const token = /the page asks for this token once: ([A-Za-z0-9_-]+)$/m.exec(browse.stdout())?.[1] ?? '';
    const port = /:(\d+)\/\?token=/.exec(browse.stdout())?.[1] ?? '';
    expect(token).toHaveLength(32);
    expect(browse.stdout()).toContain(`/?token=${token}`);
    expect((await fetch(`http://127.0.0.1:${port}/api/calls`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/api/calls?token=${token}`)).status).toBe(200);
    browse.child.kill('SIGTERM');
    expect(await browse.exited).toBe(0);
  });

  it('refuses a bad port in one line', async () => {
    const { code, stderr } = await calldata(['browse', '--port', '99999'], {});
    expect(code).toBe(2);
    expect(stderr).toBe('calldata: --port must be an integer from 0 to 65535\n');
  });
});

describe('calldata calls: expected failures are one line, no stack trace', () => {
  const oneLine = (result: Ran, code: number, pattern: RegExp) => {
    expect(result.code).toBe(code);
    expect(result.stdout).toBe('');
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(pattern);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  };

  it('a backend that is down', async () => {
    oneLine(await calldata(['calls', 'list'], { METADATA_LOCATION: 'postgres://calldata@127.0.0.1:1/calldata' }), 1, /^calldata: listing calls failed: postgres: .*ECONNREFUSED/);
    oneLine(await calldata(['calls', 'show', 'RM_x'], { METADATA_LOCATION: 'postgres://calldata@127.0.0.1:1/calldata' }), 1, /^calldata: reading the call failed: postgres: .*ECONNREFUSED/);
  });

  it('a bad variable', async () => {
    oneLine(await calldata(['calls', 'list'], { TIMEZONE: 'UTC', AWS_S3_FORCE_PATH_STYLE: 'sometimes' }), 2, /^calldata: AWS_S3_FORCE_PATH_STYLE: expected true\/false/);
  });

  it('bad filters and options', async () => {
    const env = { METADATA_LOCATION: join(dir, 'empty') };
    oneLine(await calldata(['calls', 'list', '--since', 'last tuesday'], env), 2, /^calldata: since "last tuesday" is not a date \(2026-11-01\) or a date-time/);
    oneLine(await calldata(['calls', 'list', '--direction', 'sideways'], env), 2, /^calldata: direction must be inbound or outbound/);
    oneLine(await calldata(['calls', 'list', '--status', 'happy'], env), 2, /^calldata: status "happy" is not one of in_progress, completed/);
    oneLine(await calldata(['calls', 'list', '--limit', '0'], env), 2, /^calldata: limit must be an integer from 1 to 1000/);
    oneLine(await calldata(['calls', 'list', '--answered', '--unanswered'], env), 2, /^calldata: choose one of --answered and --unanswered/);
    oneLine(await calldata(['calls', 'list', '--cursor', 'bm90LWEtY3Vyc29y'], env), 2, /^calldata: the cursor is not one this store returned/);
    const missing = await calldata(['calls', 'show'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^calldata: a call id is required\n\nUsage: calldata calls show/);
    const unknown = await calldata(['calls', 'list', '--colour'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^calldata: Unknown option '--colour'/);
  });

  it('an empty location lists nothing, saying where it looked', async () => {
    const { code, stdout } = await calldata(['calls', 'list'], { METADATA_LOCATION: join(dir, 'nothing-here') });
    expect(code).toBe(0);
    expect(stdout).toBe(`No calls match in ${join(dir, 'nothing-here')}.\n`);
  });
});
