/**
 * `npm run bench:worker`: what call-data capture costs the agent.
 *
 * 1. Per conversation event, on the agent's event loop: the time AgentSession's emit of
 *    `conversation_item_added` takes with the capture attached, against a baseline listener
 *    that does nothing, measured in the same run (p50 / p99 / max over 10,000 events).
 * 2. Per fact message actually sent (at most one every progress interval): building the
 *    message (the job's whole view) and validating/encoding it as the sinks do, by transcript length.
 * 3. Memory, with forced garbage collection (node --expose-gc; the bench re-runs itself with it):
 *    the heap one idle call costs, and the heap MEMORY_EVENTS events add to a call minus what the
 *    same transcript items cost on their own (held in a plain array). Each figure is measured in
 *    a fresh process after a warm-up (earlier measurements' garbage, timers and JIT state would
 *    otherwise land in it and make the difference noise, even negative), and is the median of
 *    several rounds.
 *
 * Target: capture ≤ 20 µs per event at p99, and (close to) no memory beyond the transcript.
 * Needs no servers: LiveKit is faked at the SDK edge and the sink does the SQS sink's encoding only.
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { JobContext, voice } from '@livekit/agents';
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { loadConfig } from '../functions/config/config.ts';
import { encodeMessage, type FactMessage } from '../functions/contract/facts.ts';
import type { FactSink, SendReceipt } from '../functions/transport/sink.ts';
import { attachCallData, type CallDataCapture } from '../worker/capture.ts';
import { conversationItem, type CapturedItem } from '../worker/conversation.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  // Re-run with --expose-gc so the memory figures are not noise.
  const result = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    // The capture's info logs would drown the figures.
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN' },
  });
  process.exit(result.status ?? 1);
}
const collect = gc as () => void;

const EVENTS = 10_000;
const MEMORY_EVENTS = 50_000;
const MEMORY_ROUNDS = 5;
const TARGET_P99_US = 20;

class BenchSink implements FactSink {
  readonly transport = 'sqs' as const;
  sends = 0;
  async send(message: FactMessage): Promise<SendReceipt> {
    const body = encodeMessage(message);
    this.sends++;
    return { transport: 'sqs', messageId: String(this.sends), bytes: body.length, offloaded: false };
  }
}

class FakeRoom extends EventEmitter {
  name = 'bench-room';
  isConnected = true;
  remoteParticipants = new Map<string, { identity: string; kind: ParticipantKind; attributes: Record<string, string> }>();
}

let roomCounter = 0;
function fakeJob() {
  const room = new FakeRoom();
  const sid = `RM_bench${(roomCounter++).toString().padStart(6, '0')}`;
  room.remoteParticipants.set('sip_caller', {
    identity: 'sip_caller',
    kind: ParticipantKind.SIP,
    attributes: { 'sip.callStatus': 'active', 'sip.phoneNumber': '+919876543210', 'sip.trunkPhoneNumber': '+14155550100', 'sip.trunkID': 'ST_1' },
  });
  return {
    room,
    job: { id: `AJ_${sid}`, metadata: '', room: { sid, name: 'bench-room', creationTimeMs: BigInt(Date.now()) } },
    addShutdownCallback: () => undefined,
    addParticipantEntrypoint: () => undefined,
    shutdown: () => undefined,
    deleteRoom: async () => undefined,
  };
}

const config = loadConfig({ SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', CALL_RECORDING: 'true', AWS_S3_BUCKET: 'recordings', TIMEZONE: 'UTC', CALLDATA_QUEUE_URL: 'http://127.0.0.1:1/q', CALLDATA_RECORDING_QUEUE_URL: 'http://127.0.0.1:1/r' });

function attach(session: EventEmitter, sink: FactSink): CallDataCapture {
  const capture = attachCallData(fakeJob() as unknown as JobContext, session as unknown as voice.AgentSession, {
    config,
    sink,
    progressIntervalMs: 2_000,
    answerTimeoutMs: 600_000,
  });
  capture.markAnswered();
  return capture;
}

/** What AgentSession emits: a ChatMessage (with its `item_...` id) in a conversation_item_added event. */
function itemEvent(i: number) {
  const role = i % 2 === 0 ? 'user' : 'assistant';
  const text = role === 'user' ? `caller turn ${i}: could you tell me the delivery window for order ${i}?` : `agent turn ${i}: your order ships tomorrow between nine and noon.`;
  const id = `item_${i.toString(36).padStart(12, '0')}`;
  return { type: 'conversation_item_added', item: { id, type: 'message', role, content: [text], interrupted: false, createdAt: Date.now(), textContent: text }, createdAt: Date.now() };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Times each emit; yields to the loop every 100 events so the sender's timers run as they would. */
async function timeEmits(session: EventEmitter, events: ReturnType<typeof itemEvent>[]): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < events.length; i++) {
    const start = process.hrtime.bigint();
    session.emit('conversation_item_added', events[i]);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  return samples.sort((a, b) => a - b);
}

async function eventCost(): Promise<{ baseline: number[]; capture: number[]; sends: number }> {
  const events = Array.from({ length: EVENTS }, (_, i) => itemEvent(i));
  // Warm-up both paths (JIT), then measure each on a fresh session.
  for (let round = 0; round < 2; round++) {
    const warm = new EventEmitter();
    warm.on('conversation_item_added', () => undefined);
    await timeEmits(warm, events.slice(0, 2_000));
    const warmCapture = new EventEmitter();
    attach(warmCapture, new BenchSink());
    await timeEmits(warmCapture, events.slice(0, 2_000));
  }
  const baselineSession = new EventEmitter();
  baselineSession.on('conversation_item_added', () => undefined);
  const baseline = await timeEmits(baselineSession, events);
  const session = new EventEmitter();
  const sink = new BenchSink();
  attach(session, sink);
  const capture = await timeEmits(session, events);
  return { baseline, capture, sends: sink.sends };
}

function messageCost(items: number): number {
  const session = new EventEmitter();
  const capture = attach(session, new BenchSink());
  for (let i = 0; i < items; i++) session.emit('conversation_item_added', itemEvent(i));
  const rounds = items >= 1_000 ? 20 : 200;
  // Warm-up: the contract's validator compiles itself on first use.
  for (let r = 0; r < rounds; r++) encodeMessage(capture.build());
  const start = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) encodeMessage(capture.build());
  return Number(process.hrtime.bigint() - start) / 1000 / rounds;
}

function heapUsed(): number {
  // Several passes: finalizers and weak references can keep garbage for one more cycle.
  for (let i = 0; i < 4; i++) collect();
  return process.memoryUsage().heapUsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * What one memory probe measures, in a process of its own (so no earlier measurement's garbage,
 * JIT state or timers land in it), after a warm-up on other objects:
 *   idle        heap per call of 1,000 attached captures with no events
 *   transcript  heap MEMORY_EVENTS transcript items cost held in a plain array (the transcript itself)
 *   capture     heap a call gains from MEMORY_EVENTS conversation_item_added events
 * The events are prepared before the measurement: they belong to the agent, and both the plain
 * array and the capture keep the items' text by reference to the events' strings.
 */
type Probe = 'idle' | 'transcript' | 'capture';
const PROBE_ENV = 'CALLDATA_BENCH_PROBE';

function probeOnce(probe: Probe): { bytes: number; keep: unknown } {
  if (probe === 'idle') {
    const calls = 1_000;
    const keep: CallDataCapture[] = [];
    const before = heapUsed();
    for (let i = 0; i < calls; i++) keep.push(attach(new EventEmitter(), new BenchSink()));
    return { bytes: (heapUsed() - before) / calls, keep };
  }
  const events = Array.from({ length: MEMORY_EVENTS }, (_, i) => itemEvent(i));
  const session = new EventEmitter();
  const capture = attach(session, new BenchSink());
  const plain: CapturedItem[] = [];
  const before = heapUsed();
  if (probe === 'capture') for (const event of events) session.emit('conversation_item_added', event);
  else for (const event of events) plain.push(conversationItem(event.item, event.createdAt) as CapturedItem);
  const bytes = heapUsed() - before;
  if ((probe === 'capture' ? capture.conversationLength : plain.length) !== MEMORY_EVENTS) throw new Error('bench lost its objects');
  return { bytes, keep: [events, capture, plain] };
}

async function runProbe(probe: Probe): Promise<void> {
  // Warm-up: compiles (and optimizes) the path and settles the heap's own bookkeeping, so no
  // code object lands in the measurement; then let its timers and garbage go.
  for (let i = 0; i < 2; i++) probeOnce(probe);
  await new Promise((resolve) => setTimeout(resolve, 50));
  heapUsed();
  const { bytes, keep } = probeOnce(probe);
  process.stdout.write(`${JSON.stringify({ probe, bytes, kept: keep !== undefined })}\n`);
}

function probeInChild(probe: Probe): number {
  const result = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
    encoding: 'utf8',
    env: { ...process.env, [PROBE_ENV]: probe, POWERTOOLS_LOG_LEVEL: 'WARN' },
  });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.status !== 0 || !line.startsWith('{')) throw new Error(`memory probe ${probe} failed: ${result.stderr}`);
  return (JSON.parse(line) as { bytes: number }).bytes;
}

interface MemoryFigures {
  perIdleCall: number;
  captureGrowth: number;
  transcriptItself: number;
  beyond: number;
  /** Smallest and largest per-round difference. */
  beyondSpread: [number, number];
}

function memory(): MemoryFigures {
  const perIdleCall = median(Array.from({ length: 3 }, () => probeInChild('idle')));
  const rounds = Array.from({ length: MEMORY_ROUNDS }, () => ({ capture: probeInChild('capture'), transcript: probeInChild('transcript') }));
  const beyond = rounds.map((r) => r.capture - r.transcript);
  return {
    perIdleCall,
    captureGrowth: median(rounds.map((r) => r.capture)),
    transcriptItself: median(rounds.map((r) => r.transcript)),
    beyond: median(beyond),
    beyondSpread: [Math.min(...beyond), Math.max(...beyond)],
  };
}

const fmt = (us: number) => `${us.toFixed(2).padStart(8)} µs`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

async function main(): Promise<void> {
  const { baseline, capture, sends } = await eventCost();
  const p99 = percentile(capture, 99);
  const p99Overhead = p99 - percentile(baseline, 99);
  console.log(`call-data capture: cost per conversation_item_added event (${EVENTS.toLocaleString('en')} events)`);
  console.log(`                          p50          p99          max`);
  console.log(`  baseline (no-op)  ${fmt(percentile(baseline, 50))} ${fmt(percentile(baseline, 99))} ${fmt(baseline.at(-1) ?? 0)}`);
  console.log(`  with capture      ${fmt(percentile(capture, 50))} ${fmt(p99)} ${fmt(capture.at(-1) ?? 0)}`);
  console.log(`  capture overhead  ${fmt(percentile(capture, 50) - percentile(baseline, 50))} ${fmt(p99Overhead)}`);
  console.log(`  messages sent during the run: ${sends} (progress interval 2 s)`);
  console.log('');
  console.log('per message sent (build + validate + encode, on the event loop, at most once per interval):');
  for (const items of [10, 100, 1_000, 10_000]) console.log(`  ${String(items).padStart(6)} transcript items  ${fmt(messageCost(items))}`);
  console.log('');
  const mem = memory();
  const perEvent = (bytes: number) => `${(bytes / MEMORY_EVENTS).toFixed(1)} B/event`;
  console.log(`memory (forced GC, median of ${MEMORY_ROUNDS} rounds of ${MEMORY_EVENTS.toLocaleString('en')} events):`);
  console.log(`  per idle call (capture, detector, sender)     ${kib(mem.perIdleCall)}`);
  console.log(`  a call's heap growth over the events          ${kib(mem.captureGrowth)} (${perEvent(mem.captureGrowth)})`);
  console.log(`  the same transcript items in a plain array    ${kib(mem.transcriptItself)} (${perEvent(mem.transcriptItself)})`);
  // A difference inside the rounds' spread is measurement noise, not memory: it is shown as 0.
  const beyond = Math.max(0, mem.beyond);
  console.log(
    `  beyond the transcript itself                  ${kib(beyond)} (${perEvent(beyond)}; measured ${kib(mem.beyond)}, rounds ${kib(mem.beyondSpread[0])} .. ${kib(mem.beyondSpread[1])})`,
  );
  console.log('');
  const met = p99 <= TARGET_P99_US;
  console.log(`target p99 ≤ ${TARGET_P99_US} µs per event: ${met ? 'met' : 'NOT met'} (${p99.toFixed(2)} µs)`);
  if (!met && process.env.BENCH_STRICT === '1') process.exit(1);
}

const probe = process.env[PROBE_ENV] as Probe | undefined;
if (probe) await runProbe(probe);
else await main();
