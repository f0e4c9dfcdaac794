/**
 * `calldata browse`: a read-only web page of your calls, served by node:http on this machine.
 *
 * - Pages: `/` (the list, with filters, paging and a search box), `/calls/<id>` (one call: its
 *   metadata, the transcript as a conversation, the recording), `/overview` (calls per day,
 *   answer rate, median duration, from a bounded number of recent calls). Each is the same small
 *   shell (web/index.html) whose ES modules (web/*.js, no build step) fetch the JSON API:
 *   `/api/calls`, `/api/calls/<id>`, `/api/calls/<id>/metadata.json`,
 *   `/api/calls/<id>/transcription.json`, `/api/calls/<id>/recording` (a redirect to a presigned
 *   URL) and `/api/overview`. `/search?q=` redirects: a call id to its page, a number or a room
 *   to the filtered list.
 * - Read-only: GET and HEAD only, 405 for anything else.
 * - Bound to 127.0.0.1 by default (and then only answers requests addressed to a loopback name,
 *   so a web page cannot reach it through DNS rebinding). Bound to any other host it asks for a
 *   random token, given once as `?token=` and then kept in an HttpOnly SameSite=Strict cookie.
 * - Untrusted data (room names, numbers, transcripts) reaches the page only as JSON and is put in
 *   the document with textContent / safe attributes; every response carries a strict
 *   Content-Security-Policy (no inline script, no framing) and nosniff.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { extname, join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { callRow, CallsInputError, classifySearch, conversationLines, isCallId, parseFilters, zoneLabel } from '../../domain/calls.ts';
import { insightLines } from '../../domain/call-insights.ts';
import { InvalidQueryError } from '../../storage/errors.ts';
import { CallNotFoundError, CallReader, NoRecordingError } from '../../query/reader.ts';
import { describeError } from '../errors.ts';
import { CallDataError } from '../../errors.ts';

export interface BrowseOptions {
  /** Default 127.0.0.1. Any non-loopback host requires the token. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** The token for non-loopback hosts; a random one when absent. */
  token?: string;
  /** The most calls the overview reads (default 1000). */
  overviewBound?: number;
}

export interface BrowseServer {
  /** The server's base URL, e.g. http://127.0.0.1:43121/ */
  url: string;
  /** What to open in a browser: the URL, with `?token=` when a token is required. */
  openUrl: string;
  /** Set when the bind is not loopback. */
  token: string | undefined;
  host: string;
  port: number;
  close(): Promise<void>;
}

export const OVERVIEW_BOUND = 1000;
export const OVERVIEW_DAYS = 30;
const TOKEN_COOKIE = 'calldata_token';
const WEB = join(import.meta.dirname, 'web');
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const BASE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "media-src 'self' https: http://127.0.0.1:* http://localhost:*",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
];

/** The policy; a plain-http S3 endpoint (MinIO on another host) is added to media-src so its recordings play. */
export function contentSecurityPolicy(config: Config): string {
  const directives = [...BASE_CSP];
  const endpoint = config.s3.endpoint ? safeOrigin(config.s3.endpoint) : undefined;
  if (endpoint?.startsWith('http://') && !/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/.test(endpoint)) {
    directives[4] = `${directives[4]} ${endpoint}`;
  }
  return directives.join('; ');
}

function safeOrigin(url: string): string | undefined {
  try {
    const origin = new URL(url).origin;
    return /^https?:\/\/[A-Za-z0-9.[\]:-]+$/.test(origin) ? origin : undefined;
  } catch {
    return undefined;
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The front end's files, read once. */
function loadStatic(): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of readdirSync(WEB)) {
    const type = TYPES[extname(name)];
    if (type && /^[a-z0-9-]+\.[a-z]+$/.test(name)) files.set(name, { body: readFileSync(join(WEB, name)), type });
  }
  return files;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return undefined;
}

class HttpError extends CallDataError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function startBrowseServer(config: Config, options: BrowseOptions = {}): Promise<BrowseServer> {
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  const token = loopback ? undefined : (options.token ?? randomBytes(24).toString('base64url'));
  const tokenDigest = token ? digest(token) : undefined;
  const bound = options.overviewBound ?? OVERVIEW_BOUND;
  const files = loadStatic();
  const reader = new CallReader(config);
  const csp = contentSecurityPolicy(config);
  const timezone = zoneLabel(config.timezone);

  const securityHeaders = {
    'Content-Security-Policy': csp,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };

  function send(res: ServerResponse, status: number, body: string | Buffer, type: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { ...securityHeaders, 'Content-Type': type, 'Cache-Control': 'no-store', ...extra });
    res.end(body);
  }
  const json = (res: ServerResponse, status: number, value: unknown) => send(res, status, `${JSON.stringify(value, null, 2)}\n`, 'application/json; charset=utf-8');
  const redirect = (res: ServerResponse, location: string, status = 303) => send(res, status, '', 'text/plain; charset=utf-8', { Location: location });

  function tokenMatches(candidate: string | undefined | null): boolean {
    if (!tokenDigest || !candidate) return false;
    return timingSafeEqual(digest(candidate), tokenDigest);
  }

  /** Only what a call's page needs, every time already in TIMEZONE. */
  async function callJson(callId: string) {
    const details = await reader.show(callId);
    const base = `/api/calls/${encodeURIComponent(callId)}`;
    return {
      callId,
      timezone,
      location: details.location,
      row: details.summary ? callRow(details.summary, config.timezone) : null,
      metadata: details.metadata ?? null,
      // The same words `calls show` prints (functions/domain/call-insights.ts).
      insights: insightLines(details.metadata),
      hasTranscript: details.transcription !== undefined,
      conversation: conversationLines(details.transcription, config.timezone),
      recording: details.recording ? { src: `${base}/recording` } : null,
      links: {
        metadata: details.metadata ? `${base}/metadata.json` : null,
        transcription: details.transcription ? `${base}/transcription.json` : null,
      },
      notes: details.notes,
    };
  }

  async function api(path: string, params: URLSearchParams, res: ServerResponse): Promise<void> {
    if (path === '/api/calls') {
      const query = parseFilters(Object.fromEntries(params), config.timezone);
      const page = await reader.list(query);
      return json(res, 200, { timezone, location: reader.where, calls: page.calls.map((c) => callRow(c, config.timezone)), cursor: page.cursor ?? null });
    }
    if (path === '/api/overview') {
      const days = Number(params.get('days') ?? OVERVIEW_DAYS);
      if (!Number.isInteger(days) || days < 1 || days > 366) throw new CallsInputError('days must be an integer from 1 to 366');
      return json(res, 200, await reader.overview({ days, bound }));
    }
    const match = /^\/api\/calls\/([^/]+)(\/metadata\.json|\/transcription\.json|\/recording)?$/.exec(path);
    const callId = match ? safeDecode(match[1] ?? '') : undefined;
    if (!match || callId === undefined) throw new HttpError(404, 'no such endpoint');
    if (!isCallId(callId)) throw new HttpError(404, 'not a call id');
    switch (match[2]) {
      case undefined:
        return json(res, 200, await callJson(callId));
      case '/metadata.json': {
        const details = await reader.show(callId);
        if (!details.metadata) throw new HttpError(404, `call ${callId} has no metadata document`);
        return json(res, 200, details.metadata);
      }
      case '/transcription.json': {
        const details = await reader.show(callId);
        if (!details.transcription) throw new HttpError(404, `call ${callId} has no transcript`);
        return json(res, 200, details.transcription);
      }
      default: {
        const link = await reader.recordingLink(await reader.show(callId));
        return redirect(res, link.url, 302);
      }
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      req.resume();
      return send(res, 405, 'read-only: GET only\n', 'text/plain; charset=utf-8', { Allow: 'GET, HEAD' });
    }
    const url = new URL(req.url ?? '/', 'http://browse.invalid');
    const path = url.pathname;

    if (loopback) {
      // DNS rebinding: a page on another site could point its own name at 127.0.0.1.
      const name = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
      if (!isLoopback(name)) return send(res, 421, 'this server answers requests for 127.0.0.1 and localhost only\n', 'text/plain; charset=utf-8');
    } else {
      const given = url.searchParams.get('token');
      if (tokenMatches(given)) {
        const cookie = `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
        url.searchParams.delete('token');
        const clean = `${url.pathname}${url.search}`;
        // A page: set the cookie and drop the token from the address bar (and from history).
        if (!path.startsWith('/api/') && !path.startsWith('/static/')) return send(res, 303, '', 'text/plain; charset=utf-8', { Location: clean, 'Set-Cookie': cookie });
        res.setHeader('Set-Cookie', cookie);
      } else if (!tokenMatches(cookieValue(req.headers.cookie, TOKEN_COOKIE))) {
        return send(res, 401, 'calldata browse: open the address with ?token=… that `calldata browse` printed\n', 'text/plain; charset=utf-8');
      }
    }

    try {
      if (path === '/' || path === '/overview' || /^\/calls\/[^/]+$/.test(path)) {
        const page = files.get('index.html');
        if (!page) throw new HttpError(500, 'the front end is missing');
        return send(res, 200, page.body, page.type);
      }
      if (path.startsWith('/static/')) {
        const file = files.get(path.slice('/static/'.length));
        if (!file) throw new HttpError(404, 'no such file');
        return send(res, 200, file.body, file.type, { 'Cache-Control': 'no-cache' });
      }
      if (path === '/favicon.ico') return redirect(res, '/static/icon.svg', 301);
      if (path === '/search') {
        const intent = await classifySearch(url.searchParams.get('q') ?? '', (id) => reader.exists(id).catch(() => false));
        switch (intent.kind) {
          case 'call':
            return redirect(res, `/calls/${encodeURIComponent(intent.callId)}`);
          case 'number':
            return redirect(res, `/?${new URLSearchParams({ number: intent.number })}`);
          case 'room':
            return redirect(res, `/?${new URLSearchParams({ room: intent.room })}`);
          default:
            return redirect(res, '/');
        }
      }
      if (path.startsWith('/api/')) return await api(path, url.searchParams, res);
      throw new HttpError(404, 'no such page');
    } catch (error) {
      const [status, message] =
        error instanceof HttpError
          ? [error.status, error.message]
          : error instanceof CallsInputError || error instanceof InvalidQueryError
            ? [400, error.message]
            : error instanceof CallNotFoundError || error instanceof NoRecordingError
              ? [404, error.message]
              : [502, `could not read the calls: ${describeError(error)}`];
      if (path.startsWith('/api/')) return json(res, status, { error: message });
      return send(res, status, `${message}\n`, 'text/plain; charset=utf-8');
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, `calldata browse: ${describeError(error)}\n`, 'text/plain; charset=utf-8');
      else res.destroy();
    });
  });
  // Keep-alive sockets would hold close() open.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
  const base = `http://${shownHost}:${address.port}/`;
  return {
    url: base,
    openUrl: token ? `${base}?token=${token}` : base,
    token,
    host,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
