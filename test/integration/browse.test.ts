/**
 * `calldata browse` in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * calls stored through the real persist path on a local folder and on PostgreSQL, the server
 * started in-process, the recording a real small OGG in LocalStack S3. The list, its filters,
 * paging and search; a call's page with its conversation and a playable recording; the
 * overview; a hostile room name that must stay text; the security headers; and the token a
 * bind beyond loopback asks for. Writes docs/screenshots/list.png and call.png.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { startBrowseServer, type BrowseServer } from '../../functions/cli/browse/server.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { createBucket, localstackEndpoint } from '../support/localstack.ts';
import { HOSTILE_LINE, HOSTILE_ROOM, NUMBERS, OGG, seedCalls, seedLocations, type Seed } from './calls-seed.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(import.meta.dirname, '../../docs/screenshots');
const TIMEZONE = 'Europe/Berlin';
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' https: http://127.0.0.1:* http://localhost:*; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

let dir: string;
let endpoint: string;
let bucket: string;
let context: BrowserContext;
/** Every dialog any page opened (an alert() would be an injection that ran). */
const dialogs: string[] = [];
/** Console errors and uncaught exceptions of every page (a CSP violation shows up here). */
const pageErrors: string[] = [];

/** What the test reads of an <audio> element (this file is type-checked without the DOM library). */
interface AudioLike {
  canPlayType(type: string): string;
  readyState: number;
  duration: number;
  error: unknown;
  currentSrc: string;
  addEventListener(type: string, listener: () => void, options: { once: boolean }): void;
}

function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}. Install it with \`apt-get update && apt-get install -y --no-install-recommends chromium\` ` +
        '(as root), or run `npm run servers -- install`, which installs it with the other test servers.',
    );
  }
}

async function newPage(): Promise<Page> {
  const page = await context.newPage();
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // The API's 4xx answers (an unknown call, a bad date) are shown on the page; anything else is a failure.
    if (message.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) pageErrors.push(message.text());
  });
  return page;
}

/** Opens a page of the server and waits until its script has rendered it. */
async function open(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('body[data-state="ready"]');
}

async function rowIds(page: Page): Promise<string[]> {
  return page.locator('tr[data-call-id]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-call-id') ?? ''));
}

beforeAll(async () => {
  requireChromium();
  dir = await mkdtemp(join(tmpdir(), 'calldata-browse-'));
  endpoint = await localstackEndpoint();
  bucket = await createBucket(endpoint, 'calldata-browse');
  context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
  });
});

afterAll(async () => {
  await context?.close();
  await closeAllBackends();
  if (dir) await rm(dir, { recursive: true, force: true });
});


for (const [name, where] of Object.entries(seedLocations(() => join(dir, 'calls')))) {
  describe(`calldata browse on ${name}`, () => {
    let seed: Seed;
    let server: BrowseServer;
    let page: Page;
    /** `since` / `until` of the run's window, as query parameters (empty on the folder of its own). */
    let scope: URLSearchParams;
    const local = name === 'local folder';
    const at = (path: string, params: Record<string, string> = {}) => {
      const query = new URLSearchParams({ ...Object.fromEntries(scope), ...params });
      return `${server.url.replace(/\/$/, '')}${path}${query.size > 0 ? `?${query}` : ''}`;
    };

    beforeAll(async () => {
      const { location, anchorMs, shared } = await where();
      seed = await seedCalls({ location, anchorMs, endpoint, bucket, timezone: TIMEZONE, shared });
      scope = shared ? new URLSearchParams({ since: new Date(seed.sinceMs).toISOString(), until: new Date(seed.untilMs).toISOString() }) : new URLSearchParams();
      // Reading needs no SAVE_* flag: the locations and the bucket are enough.
      server = await startBrowseServer(loadConfig(seed.env));
      page = await newPage();
      dialogs.length = 0;
      pageErrors.length = 0;
    });
    afterAll(async () => {
      await page?.close();
      await server?.close();
    });

    it('binds to 127.0.0.1 on a free port and needs no token there', () => {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(server.port).toBeGreaterThan(0);
      expect(server.token).toBeUndefined();
      expect(server.openUrl).toBe(server.url);
    });

    it('lists every call newest first, times in TIMEZONE', async () => {
      // Act
      await open(page, at('/'));
      // Assess
      expect(await rowIds(page)).toEqual(seed.newestFirst.map((c) => c.callId));
      const support = seed.call('support');
      const cells = await page.locator(`tr[data-call-id="${support.callId}"] td`).allInnerTexts();
      const time = new Intl.DateTimeFormat('sv-SE', { timeZone: TIMEZONE, dateStyle: 'short', timeStyle: 'medium' }).format(support.startedAtMs);
      expect(cells.map((c) => c.trim())).toEqual([time, support.roomName, 'inbound', NUMBERS.caller, NUMBERS.agent, '0:45', 'yes', 'completed', 'yes']);
      await expect.poll(() => page.locator('p.hint').first().innerText()).toContain('Times in Europe/Berlin');
      if (local) {
        await mkdir(SCREENSHOTS, { recursive: true });
        await page.screenshot({ path: join(SCREENSHOTS, 'list.png'), fullPage: true });
      }
    });

    it('filters with the form: answered, room, and a time window', async () => {
      // Act: unanswered calls only
      await open(page, at('/'));
      await page.selectOption('select[name="answered"]', 'unanswered');
      await Promise.all([page.waitForURL(/answered=unanswered/), page.click('form.filters button[type="submit"]')]);
      await page.waitForSelector('body[data-state="ready"]');
      // Assess
      expect(await rowIds(page)).toEqual(seed.newestFirst.filter((c) => !c.answered).map((c) => c.callId));
      expect(await page.locator('select[name="answered"]').inputValue()).toBe('unanswered');
      // Act: a room, typed in the form
      await page.selectOption('select[name="answered"]', '');
      await page.fill('input[name="room"]', seed.call('sales').roomName);
      await Promise.all([page.waitForURL(/room=/), page.click('form.filters button[type="submit"]')]);
      await page.waitForSelector('body[data-state="ready"]');
      expect(await rowIds(page)).toEqual(seed.newestFirst.filter((c) => c.roomName === seed.call('sales').roomName).map((c) => c.callId));
      // A bad date is one plain line on the page.
      await open(page, at('/', { since: 'someday' }));
      await expect.poll(() => page.locator('p.error').innerText()).toMatch(/^since "someday" is not a date/);
    });

    it('pages with the cursor: every call once, in order', async () => {
      // Prepare
      await open(page, at('/', { limit: '3' }));
      const seen: string[] = [];
      let pages = 0;
      // Act
      for (;;) {
        pages++;
        const ids = await rowIds(page);
        expect(ids.length).toBeLessThanOrEqual(3);
        seen.push(...ids);
        const next = page.locator('[data-role="next-page"]');
        if ((await next.count()) === 0 || pages > 10) break;
        const href = (await next.getAttribute('href')) ?? '';
        await Promise.all([page.waitForURL((url) => `${url.pathname}${url.search}` === href), next.click()]);
        await page.waitForSelector('body[data-state="ready"]');
        expect(await page.locator('[data-role="first-page"]').count()).toBe(1);
      }
      // Assess
      expect(seen).toEqual(seed.newestFirst.map((c) => c.callId));
      expect(pages).toBe(Math.ceil(seed.calls.length / 3));
    });

    it('searches: a call id opens the call, a number and a room filter the list', async () => {
      const search = async (text: string) => {
        await open(page, at('/'));
        await page.fill('form.search input[name="q"]', text);
        await Promise.all([page.waitForNavigation(), page.press('form.search input[name="q"]', 'Enter')]);
        await page.waitForSelector('body[data-state="ready"]');
      };
      await search(seed.call('followup').callId);
      expect(new URL(page.url()).pathname).toBe(`/calls/${seed.call('followup').callId}`);
      expect(await page.locator('h1').innerText()).toBe(seed.call('followup').roomName);

      await search('+91 98765 43210');
      expect(new URL(page.url()).searchParams.get('number')).toBe(NUMBERS.other);
      if (local) expect(await rowIds(page)).toEqual(seed.newestFirst.filter((c) => c.userNumber === NUMBERS.other).map((c) => c.callId));
      // A shared store holds other runs' calls of this number too (newer ones may fill the page):
      // every row shown must be a call of that number.
      const rows = page.locator('tbody tr');
      expect(await rows.count()).toBeGreaterThan(0);
      for (const numbers of await rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td.number')].map((td) => td.textContent)))) {
        expect(numbers).toContain(NUMBERS.other);
      }

      await search(seed.call('support').roomName);
      expect(new URL(page.url()).searchParams.get('room')).toBe(seed.call('support').roomName);
      const inRoom = seed.newestFirst.filter((c) => c.roomName === seed.call('support').roomName).map((c) => c.callId);
      // A shared store also holds other runs' calls of this room: there only the room is checked.
      if (local) expect(await rowIds(page)).toEqual(inRoom);
      expect(new Set(await page.locator('tbody tr td.room').allInnerTexts())).toEqual(new Set([seed.call('support').roomName]));
    });

    it("opens a call: metadata, the conversation with times and the interruption, a playable recording, the raw JSON", async () => {
      // Act: from the list, as a person would
      const support = seed.call('support');
      await open(page, at('/'));
      await Promise.all([page.waitForURL(/\/calls\//), page.click(`tr[data-call-id="${support.callId}"] td.room a`)]);
      await page.waitForSelector('body[data-state="ready"]');
      // Assess: metadata
      expect(await page.locator('h1').innerText()).toBe(support.roomName);
      expect(await page.locator('dd[data-field="call_id"]').innerText()).toBe(support.callId);
      expect(await page.locator('dd[data-field="status"]').innerText()).toBe('completed');
      expect(await page.locator('dd[data-field="recording_location"]').innerText()).toBe(`s3://${bucket}/${seed.recordingKey}`);
      // The insights, in the words `calls show` prints; their raw objects are not repeated in the metadata list
      const insights = page.locator('dl[data-role="insights"]');
      expect(await insights.locator('dt').allInnerTexts()).toEqual(['Ended', 'Latency', 'Usage', 'Estimated cost']);
      expect(await insights.locator('dd[data-kind="end_reason"]').innerText()).toBe('caller_hangup — caller hung up');
      expect(await insights.locator('dd[data-kind="latency"] .insight-line').allInnerTexts()).toEqual([
        'end of utterance: p50 400 ms · p90 400 ms · max 400 ms (3 turns)',
        'LLM first token: p50 500 ms · p90 700 ms · max 700 ms (3 turns)',
        'end to end: p50 1500 ms · p90 2000 ms · max 2000 ms (3 turns)',
      ]);
      expect(await insights.locator('dd[data-kind="usage"] .insight-line').allInnerTexts()).toEqual([
        'LLM openai/gpt-4.1-mini: 1,200 input tokens, 150 output tokens',
        'TTS cartesia/sonic-2: 420 characters, 21 s of audio',
      ]);
      expect(await insights.locator('dd[data-kind="estimated_cost"] .insight-line').first().innerText()).toBe('0.00072 USD in total');
      expect(await page.locator('dl[data-role="metadata"] dd[data-field="latency"]').count()).toBe(0);
      expect(await page.locator('dd[data-field="end_reason"]').innerText()).toBe('caller_hangup');
      // The conversation, each line with its time in TIMEZONE, the interrupted one marked
      const turns = page.locator('li[data-role="turn"]');
      expect(await turns.locator('p.content').allInnerTexts()).toEqual(support.conversation.map((c) => c.content));
      expect(await turns.locator('.speaker').allTextContents()).toEqual(support.conversation.map((c) => (c.role === 'assistant' ? 'agent' : 'user')));
      const firstAt = support.startedAtMs + 5_000;
      expect(await turns.first().locator('time').innerText()).toBe(new Intl.DateTimeFormat('en-GB', { timeZone: TIMEZONE, timeStyle: 'medium' }).format(firstAt));
      const marked = await turns.evaluateAll((items) => items.map((li) => li.querySelector('.interrupted-mark') !== null));
      expect(marked).toEqual(support.conversation.map((c) => c.interrupted));
      expect(await page.locator('.interrupted-mark').innerText()).toBe('interrupted');
      // The recording: an <audio> element whose source the browser can play, and does load
      const audio = page.locator('audio');
      expect(await audio.getAttribute('src')).toBe(`/api/calls/${support.callId}/recording`);
      expect(await audio.evaluate((a) => (a as unknown as AudioLike).canPlayType('audio/ogg'))).toMatch(/^(maybe|probably)$/);
      // Loaded: the browser fetched the recording (through the redirect) and decoded its header.
      await audio.evaluate((a) => {
        const media = a as unknown as AudioLike;
        if (media.readyState >= 1 && media.duration > 0) return undefined;
        return new Promise<void>((resolve) => {
          media.addEventListener('loadedmetadata', () => resolve(), { once: true });
          media.addEventListener('error', () => resolve(), { once: true });
        });
      });
      const loaded = await audio.evaluate((a) => {
        const media = a as unknown as AudioLike;
        return { error: media.error, duration: Math.round(media.duration), current: media.currentSrc };
      });
      expect(loaded).toMatchObject({
        error: null,
        duration: 3,
        current: expect.stringContaining(`/api/calls/${support.callId}/recording`),
      });
      // The src answers 200 with audio/ogg (through the redirect to a presigned URL)
      const response = await fetch(new URL(`/api/calls/${support.callId}/recording`, server.url));
      expect(response.status).toBe(200);
      expect(response.url).toMatch(new RegExp(`^${endpoint}/${bucket}/.+X-Amz-Expires=900`));
      expect(response.headers.get('content-type')).toBe('audio/ogg');
      expect(Buffer.from(await response.arrayBuffer()).equals(OGG)).toBe(true);
      // The raw JSON links
      expect(await page.locator('a[data-role="metadata-json"]').getAttribute('href')).toBe(`/api/calls/${support.callId}/metadata.json`);
      expect(await page.locator('a[data-role="transcription-json"]').getAttribute('href')).toBe(`/api/calls/${support.callId}/transcription.json`);
      const metadata = (await (await fetch(new URL(`/api/calls/${support.callId}/metadata.json`, server.url))).json()) as Record<string, unknown>;
      expect(Object.keys(metadata).slice(0, 3)).toEqual(['call_id', 'room_name', 'call_direction']);
      expect(metadata).toMatchObject({ call_id: support.callId, room_name: support.roomName, answered: true, timezone: TIMEZONE });
      const transcription = (await (await fetch(new URL(`/api/calls/${support.callId}/transcription.json`, server.url))).json()) as { conversation: unknown[] };
      expect(transcription.conversation).toHaveLength(support.conversation.length);
      if (local) await page.screenshot({ path: join(SCREENSHOTS, 'call.png'), fullPage: true });
    });

    it('a call without a recording or a transcript says so; a busy one shows its SIP status', async () => {
      await open(page, at(`/calls/${seed.call('busy').callId}`));
      expect(await page.locator('dl[data-role="insights"] dd[data-kind="sip_status"]').innerText()).toBe('486 Busy Here');
      expect(await page.locator('dl[data-role="insights"] dd[data-kind="latency"]').count()).toBe(0);
      await open(page, at(`/calls/${seed.call('missed').callId}`));
      expect(await page.locator('audio').count()).toBe(0);
      expect(await page.locator('section.recording').innerText()).toContain('No recording for this call.');
      expect(await page.locator('section.transcript').innerText()).toContain('No transcript stored for this call.');
      expect(await page.locator('a[data-role="transcription-json"]').count()).toBe(0);
      const unknown = await fetch(new URL(`/api/calls/RM_unknown${seed.run}`, server.url));
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toEqual({ error: expect.stringMatching(new RegExp(`^no call RM_unknown${seed.run} in `)) });
      await open(page, at(`/calls/RM_unknown${seed.run}`));
      expect(await page.locator('p.error').innerText()).toMatch(/^no call RM_unknown/);
    });

    it('shows a hostile room name and transcript as text and runs nothing', async () => {
      // Act: the list with the hostile call, and its page
      await open(page, at('/', { room: HOSTILE_ROOM }));
      const hostile = seed.call('hostile');
      // Assess: the list
      expect(await rowIds(page)).toEqual([hostile.callId]);
      expect(await page.locator(`tr[data-call-id="${hostile.callId}"] td.room`).innerText()).toBe(HOSTILE_ROOM);
      expect(await page.locator('img').count()).toBe(0);
      await open(page, at(`/calls/${hostile.callId}`));
      expect(await page.locator('h1').innerText()).toBe(HOSTILE_ROOM);
      expect(await page.locator('dd[data-field="room_name"]').innerText()).toBe(HOSTILE_ROOM);
      expect(await page.locator('li[data-role="turn"] p.content').first().innerText()).toBe(HOSTILE_LINE);
      expect(await page.title()).toBe(`calldata: ${HOSTILE_ROOM}`);
      // No element was made from the text: no <img>, no script but the page's own module.
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.locator('script').evaluateAll((scripts) => scripts.map((s) => s.getAttribute('src')))).toEqual(['/static/app.js']);
      // The search box with the hostile text is a room filter, and still text.
      await page.fill('form.search input[name="q"]', HOSTILE_ROOM);
      await Promise.all([page.waitForNavigation(), page.press('form.search input[name="q"]', 'Enter')]);
      await page.waitForSelector('body[data-state="ready"]');
      expect(new URL(page.url()).searchParams.get('room')).toBe(HOSTILE_ROOM);
      expect(await page.locator('img').count()).toBe(0);
      await page.waitForTimeout(300);
      expect(dialogs).toEqual([]);
      // Nothing on any page broke the policy (a violation is a console error).
      expect(pageErrors).toEqual([]);
    });

    it('shows the overview: calls per day, answer rate and median duration as SVG charts, saying its bound', async () => {
      await open(page, at('/overview'));
      expect(await page.locator('svg.chart').count()).toBe(3);
      expect(await page.locator('svg.chart').evaluateAll((charts) => charts.map((c) => c.getAttribute('aria-label')))).toEqual(['Calls per day', 'Answer rate per day', 'Median duration per day']);
      expect(await page.locator('[data-role="bound"]').innerText()).toMatch(/at most 1000 calls are read/);
      if (local) {
        // Seven calls in the last 30 days, four answered, the answered ones 45, 21, 21 and 21 s.
        expect(await page.locator('[data-field="calls"]').innerText()).toBe('7');
        expect(await page.locator('[data-field="answer-rate"]').innerText()).toBe('57%');
        expect(await page.locator('[data-field="median-duration"]').innerText()).toBe('21s');
        const bars = await page.locator('svg.chart-calls rect.bar:not(.secondary)').evaluateAll((rects) => rects.filter((r) => Number(r.getAttribute('height')) > 0).length);
        expect(bars).toBe(new Set(seed.calls.map((c) => new Intl.DateTimeFormat('sv-SE', { timeZone: TIMEZONE }).format(c.startedAtMs))).size);
      }
      expect(pageErrors).toEqual([]);
    });

    it('sends a strict Content-Security-Policy and nosniff with every response, and is read-only', async () => {
      const support = seed.call('support');
      for (const path of ['/', '/static/app.js', '/static/style.css', '/api/calls', `/api/calls/${support.callId}`, `/calls/${support.callId}`, '/overview', '/no-such-page']) {
        const response = await fetch(new URL(path, server.url), { redirect: 'manual' });
        expect(response.headers.get('content-security-policy'), path).toBe(CSP);
        expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      }
      const app = await fetch(new URL('/static/app.js', server.url));
      expect(app.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      const shell = await (await fetch(server.url)).text();
      // No inline script: only module files of this server.
      expect(shell).not.toMatch(/<script(?![^>]*\bsrc=)/);
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const response = await fetch(new URL('/api/calls', server.url), { method });
        expect(response.status, method).toBe(405);
        expect(response.headers.get('allow')).toBe('GET, HEAD');
      }
      // Loopback only answers loopback names (no DNS rebinding).
      const rebound = await new Promise<number>((resolve, reject) => {
        import('node:http').then(({ request }) => {
          const req = request({ host: '127.0.0.1', port: server.port, path: '/api/calls', headers: { Host: 'attacker.example' } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        }, reject);
      });
      expect(rebound).toBe(421);
    });
  });
}

describe('calldata browse beyond loopback', () => {
  let server: BrowseServer;

  beforeAll(async () => {
    server = await startBrowseServer(loadConfig({ METADATA_LOCATION: join(dir, 'calls'), TRANSCRIPTION_LOCATION: join(dir, 'calls'), TIMEZONE }), { host: '0.0.0.0' });
  });
  afterAll(async () => {
    await server?.close();
    await context.clearCookies();
  });

  it('asks for the token it printed: 401 without it, then a cookie that is HttpOnly and SameSite=Strict', async () => {
    // Prepare
    const base = `http://127.0.0.1:${server.port}`;
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(server.openUrl).toBe(`${server.url}?token=${server.token}`);
    // Act + Assess: no token, a wrong token
    for (const path of ['/', '/api/calls', '/static/app.js', `/?token=wrong${server.token}`]) {
      const response = await fetch(`${base}${path}`, { redirect: 'manual' });
      expect(response.status, path).toBe(401);
      expect(response.headers.get('content-security-policy')).toBe(CSP);
    }
    // The token once: a cookie, and the address without it
    const first = await fetch(`${base}/?token=${server.token}`, { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    const cookie = first.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^calldata_token=[A-Za-z0-9_-]+; HttpOnly; SameSite=Strict; Path=\/$/);
    const withCookie = await fetch(`${base}/api/calls`, { headers: { Cookie: cookie.split(';')[0] ?? '' } });
    expect(withCookie.status).toBe(200);
    // In the browser: the printed address opens the list, and the token leaves the address bar.
    const page = await newPage();
    await open(page, `${base}/?token=${server.token}`);
    expect(page.url()).toBe(`${base}/`);
    expect(await page.locator('h1').innerText()).toBe('Calls');
    expect(await page.locator('p.error').count()).toBe(0);
    const [stored] = (await context.cookies(base)).filter((c) => c.name === 'calldata_token');
    expect(stored).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await page.close();
  });
});
