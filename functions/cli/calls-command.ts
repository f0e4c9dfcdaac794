/**
 * `calldata calls list | show | recording`: your calls from the terminal, read from the
 * configured location (functions/query/reader.ts). Untrusted text (room names, numbers,
 * transcripts) is printed with its control characters escaped, so a call cannot drive the terminal.
 */
import type { Config } from '../config/config.ts';
import {
  callRow,
  CallsInputError,
  conversationLines,
  CSV_COLUMNS,
  csvLine,
  DEFAULT_PAGE,
  displayDuration,
  KNOWN_STATUSES,
  MAX_PAGE,
  parseFilters,
  terminalSafe,
  zoneLabel,
  type CallRow,
} from '../domain/calls.ts';
import { insightLines } from '../domain/call-insights.ts';
import { cliConfig, fail, parseOptions, printUsage, wantsHelp } from './common.ts';
import { reportFailure } from './errors.ts';
import type { CallDetails, CallReader } from '../query/reader.ts';

const FILTERS = `Filters (all optional; times in TIMEZONE):
  --since DATE             calls that started at or after DATE (2026-11-01 or 2026-11-01T09:30)
  --until DATE             calls that started before DATE (a date alone includes that whole day)
  --room NAME              exact room name
  --number NUMBER          the caller's or the agent's number (+14155550100)
  --answered | --unanswered
  --status STATUS          ${KNOWN_STATUSES.join(', ')}
  --direction inbound|outbound`;

export const LIST_USAGE = `Usage: calldata calls list [filters] [--limit N] [--cursor C] [--json | --csv]

Lists calls newest first: start time (in TIMEZONE), room, direction, numbers, duration,
answered, status, whether there is a recording, and the call id. When more calls follow,
the last line gives the --cursor for the next page (with --csv it goes to stderr).

${FILTERS}
  --limit N                calls per page, 1-${MAX_PAGE} (default ${DEFAULT_PAGE})
  --cursor C               the next page, as printed by the previous one
  --json                   {"calls": [...], "cursor": ...}
  --csv                    one line per call, with a header

Reads METADATA_LOCATION (TRANSCRIPTION_LOCATION when only SAVE_TRANSCRIPTION is on) with the
environment and ./.env.`;

export const SHOW_USAGE = `Usage: calldata calls show <call-id> [--json]

Prints a call's metadata, then its transcript as a conversation (times in TIMEZONE,
interrupted turns marked). The transcript is read from TRANSCRIPTION_LOCATION when that is
another location. --json prints the documents themselves: {"metadata": …, "transcription": …}.`;

export const RECORDING_USAGE = `Usage: calldata calls recording <call-id> [--json]

Prints a presigned HTTPS link to the call's recording in S3/MinIO, valid for 15 minutes
(download it with curl or open it in a browser). --json adds the bucket, key and expiry.
A call without a recording (unanswered, discarded, failed or not uploaded yet) prints why.`;

export const CALLS_USAGE = `Usage: calldata calls <list | show | recording> …

  calls list [filters] [--json|--csv]   your calls, newest first
  calls show <call-id> [--json]         a call's metadata and transcript
  calls recording <call-id>             a 15-minute link to the call's recording

Run \`calldata calls <subcommand> --help\` for its options.`;

export async function callsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list':
      return list(rest);
    case 'show':
      return show(rest);
    case 'recording':
      return recording(rest);
    case undefined:
      process.stderr.write(`${CALLS_USAGE}\n`);
      return 2;
    case '--help':
    case '-h':
    case 'help':
      return printUsage(CALLS_USAGE);
    default:
      fail(`unknown subcommand calls ${JSON.stringify(sub)}\n\n${CALLS_USAGE}`);
  }
}

/** Runs `work` with a reader, turning expected failures into one line and exit code 1. */
async function withReader(action: string, work: (reader: CallReader, config: Config) => Promise<number>): Promise<number> {
  const config = await cliConfig();
  const { CallReader } = await import('../query/reader.ts');
  const { closeAllBackends } = await import('../storage/select.ts');
  const reader = new CallReader(config);
  try {
    return await work(reader, config);
  } catch (error) {
    const { InvalidQueryError } = await import('../storage/errors.ts');
    if (error instanceof CallsInputError || error instanceof InvalidQueryError) {
      process.stderr.write(`calldata: ${error.message}\n`);
      return 2;
    }
    const { CallNotFoundError, NoRecordingError } = await import('../query/reader.ts');
    if (error instanceof CallNotFoundError || error instanceof NoRecordingError) process.stderr.write(`calldata: ${terminalSafe(error.message)}\n`);
    else reportFailure(`${action} failed`, error, terminalSafe);
    return 1;
  } finally {
    await closeAllBackends();
  }
}

async function list(args: string[]): Promise<number> {
  if (wantsHelp(args)) return printUsage(LIST_USAGE);
  const { values, positionals } = parseOptions(
    args,
    {
      since: { type: 'string' },
      until: { type: 'string' },
      room: { type: 'string' },
      number: { type: 'string' },
      answered: { type: 'boolean', default: false },
      unanswered: { type: 'boolean', default: false },
      status: { type: 'string' },
      direction: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      json: { type: 'boolean', default: false },
      csv: { type: 'boolean', default: false },
    },
    LIST_USAGE,
  );
  if (positionals.length > 0) fail(`unexpected argument ${JSON.stringify(positionals[0])}\n\n${LIST_USAGE}`);
  if (values.answered && values.unanswered) fail('choose one of --answered and --unanswered');
  if (values.json && values.csv) fail('choose one of --json and --csv');
  return withReader('listing calls', async (reader, config) => {
    const query = parseFilters(
      { ...values, answered: values.answered ? 'answered' : values.unanswered ? 'unanswered' : undefined },
      config.timezone,
    );
    const page = await reader.list(query);
    const rows = page.calls.map((call) => callRow(call, config.timezone));
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ timezone: zoneLabel(config.timezone), calls: rows, ...(page.cursor ? { cursor: page.cursor } : {}) }, null, 2)}\n`);
    } else if (values.csv) {
      process.stdout.write(`${[CSV_COLUMNS.join(','), ...rows.map(csvLine)].join('\r\n')}\r\n`);
      if (page.cursor) process.stderr.write(`next page: --cursor ${page.cursor}\n`);
    } else {
      process.stdout.write(rows.length === 0 ? `No calls match in ${reader.where}.\n` : table(rows, config.timezone));
      if (page.cursor) process.stdout.write(`\nNext page: --cursor ${page.cursor}\n`);
    }
    return 0;
  });
}

/** Longest cell text: a room name of any length must not push every column off the screen. */
const MAX_CELL = 40;

function cell(text: string | null): string {
  const safe = terminalSafe(text ?? '-');
  const chars = Array.from(safe);
  return chars.length > MAX_CELL ? `${chars.slice(0, MAX_CELL - 1).join('')}…` : safe;
}

function table(rows: CallRow[], timezone: string): string {
  const header = [`TIME (${zoneLabel(timezone)})`, 'ROOM', 'DIRECTION', 'FROM', 'TO', 'DURATION', 'ANSWERED', 'STATUS', 'RECORDING', 'CALL ID'];
  const right = new Set([5]);
  const lines = rows.map((row) => [row.time, cell(row.roomName), row.direction, cell(row.from), cell(row.to), row.duration, row.answered ? 'yes' : 'no', cell(row.status), row.recording ? 'yes' : 'no', row.callId]);
  const widths = header.map((h, i) => Math.max(Array.from(h).length, ...lines.map((l) => Array.from(l[i] ?? '').length)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => {
        const pad = ' '.repeat(Math.max(0, (widths[i] ?? 0) - Array.from(c).length));
        return i === cells.length - 1 ? c : right.has(i) ? pad + c : c + pad;
      })
      .join('  ');
  return `${[format(header), ...lines.map(format)].join('\n')}\n`;
}

function callIdArgument(positionals: string[], usage: string): string {
  if (positionals.length === 0) fail(`a call id is required\n\n${usage}`);
  if (positionals.length > 1) fail(`one call id at a time (got ${positionals.length})\n\n${usage}`);
  return positionals[0] as string;
}

async function show(args: string[]): Promise<number> {
  if (wantsHelp(args)) return printUsage(SHOW_USAGE);
  const { values, positionals } = parseOptions(args, { json: { type: 'boolean', default: false } }, SHOW_USAGE);
  const callId = callIdArgument(positionals, SHOW_USAGE);
  return withReader('reading the call', async (reader, config) => {
    const details = await reader.show(callId);
    for (const note of details.notes) process.stderr.write(`calldata: note: ${terminalSafe(note)}\n`);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ metadata: details.metadata ?? null, transcription: details.transcription ?? null }, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(readable(details, config.timezone));
    return 0;
  });
}

function readable(details: CallDetails, timezone: string): string {
  const out: string[] = [`Call ${details.callId}`, `  stored at  ${terminalSafe(details.location)}`];
  if (details.transcriptionLocation && details.transcriptionLocation !== details.location) out.push(`  transcript ${terminalSafe(details.transcriptionLocation)}`);
  out.push('', 'Metadata');
  const metadata = details.metadata as Record<string, unknown> | undefined;
  const insights = insightLines(details.metadata);
  const inInsights = new Set(insights.map((i) => i.field));
  if (!metadata) out.push('  (none stored)');
  else {
    // Latency, usage and cost are objects: the Insights section below says them in words.
    const fields = Object.entries(metadata).filter(([key, value]) => !(typeof value === 'object' && value !== null && inInsights.has(key)));
    const width = Math.max(...fields.map(([k]) => k.length));
    for (const [key, value] of fields) {
      const shown =
        value === null
          ? '-'
          : key === 'duration' && typeof value === 'number'
            ? `${value} s (${displayDuration(value * 1000)})`
            : typeof value === 'object'
              ? JSON.stringify(value)
              : String(value);
      out.push(`  ${key.padEnd(width)}  ${terminalSafe(shown)}`);
    }
  }
  if (insights.length > 0) {
    out.push('', 'Insights');
    const width = Math.max(...insights.map((i) => i.label.length));
    for (const { label, lines } of insights) lines.forEach((line, i) => out.push(`  ${(i === 0 ? label : '').padEnd(width)}  ${terminalSafe(line)}`));
  }
  out.push('');
  const lines = conversationLines(details.transcription, timezone);
  if (!details.transcription) out.push('Transcript: none stored');
  else if (lines.length === 0) out.push('Transcript: empty');
  else {
    out.push(`Transcript (${lines.length} turns, times in ${zoneLabel(timezone)})`);
    const speakerWidth = Math.max(...lines.map((l) => l.speaker.length));
    for (const line of lines) {
      const prefix = `  ${line.time}  ${line.speaker.padEnd(speakerWidth)}  `;
      const [first = '', ...more] = line.content.split(/\r?\n/).map(terminalSafe);
      out.push(`${prefix}${first}${line.interrupted && more.length === 0 ? '  [interrupted]' : ''}`);
      more.forEach((text, i) => out.push(`${' '.repeat(prefix.length)}${text}${line.interrupted && i === more.length - 1 ? '  [interrupted]' : ''}`));
    }
  }
  return `${out.join('\n')}\n`;
}

async function recording(args: string[]): Promise<number> {
  if (wantsHelp(args)) return printUsage(RECORDING_USAGE);
  const { values, positionals } = parseOptions(args, { json: { type: 'boolean', default: false } }, RECORDING_USAGE);
  const callId = callIdArgument(positionals, RECORDING_USAGE);
  return withReader('linking the recording', async (reader) => {
    const link = await reader.recordingLink(await reader.show(callId));
    if (values.json) process.stdout.write(`${JSON.stringify({ callId, ...link }, null, 2)}\n`);
    else {
      process.stdout.write(`${link.url}\n`);
      process.stderr.write(`calldata: s3://${terminalSafe(link.bucket)}/${terminalSafe(link.key)}, link valid for ${link.expiresInS / 60} minutes\n`);
    }
    return 0;
  });
}
