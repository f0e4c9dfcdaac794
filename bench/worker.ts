/**
 * `npm run bench:worker`: what call-data capture costs the agent.
 *
 * 1. Per session event, on the agent's event loop: the time AgentSession's emit takes with the
 *    capture attached, against a baseline listener that does nothing, measured in the same run
 *    (p50 / p99 / max over 10,000 events): `conversation_item_added` (chat messages carrying their
 *    per-turn metrics), and the insight events (`metrics_collected`, `session_usage_updated`,
 *    `function_tools_executed` with SAVE_TOOL_CALLS=true) in the mix a real turn produces.
 * 2. Per fact message actually sent (at most one every progress interval): building the
 *    message (the job's whole view) and validating/encoding it as the sinks do, by transcript length.
 * 3. Memory, as heap retained after forced garbage collection (node --expose-gc; the bench
 *    re-runs itself with it): the heap one idle call costs, and the heap MEMORY_EVENTS events add
 *    to a call beside a baseline measured in the same process run: the same transcript items held
 *    in a plain array. Each round is a fresh process (earlier rounds' garbage and JIT state stay
 *    out) that warms up, then measures baseline and capture in alternating order; figures are
 *    medians. A difference within the rounds' own noise is reported as such, never as a negative size.
 *
 * Target: capture ≤ 20 µs per event at p99, and (close to) no memory beyond the transcript.
 * Needs no servers: LiveKit is faked at the SDK edge and the sink does the SQS sink's encoding only.
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { llm, metrics, voice, type JobContext } from '@livekit/agents';
import { ParticipantKind } from '@livekit/rtc-node';
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

const config = loadConfig({
  SAVE_METADATA: 'true',
  SAVE_TRANSCRIPTION: 'true',
  SAVE_TOOL_CALLS: 'true',
  CALL_RECORDING: 'true',
  AWS_S3_BUCKET: 'recordings',
  TIMEZONE: 'UTC',
  CALLDATA_QUEUE_URL: 'http://127.0.0.1:1/q',
  CALLDATA_RECORDING_QUEUE_URL: 'http://127.0.0.1:1/r',
});

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

/** What AgentSession emits: a ChatMessage (with its `item_...` id and per-turn metrics, in seconds) in a conversation_item_added event. */
function itemEvent(i: number) {
  const role = i % 2 === 0 ? 'user' : 'assistant';
  const text = role === 'user' ? `caller turn ${i}: could you tell me the delivery window for order ${i}?` : `agent turn ${i}: your order ships tomorrow between nine and noon.`;
  const id = `item_${i.toString(36).padStart(12, '0')}`;
  const turnMetrics = role === 'user' ? { transcriptionDelay: 0.21, endOfTurnDelay: 0.48 } : { llmNodeTtft: 0.35, ttsNodeTtfb: 0.12, e2eLatency: 1.02 };
  return {
    type: 'conversation_item_added',
    item: { id, type: 'message', role, content: [text], interrupted: false, createdAt: Date.now(), textContent: text, metrics: turnMetrics },
    createdAt: Date.now(),
  };
}

/**
 * The other events a turn produces, built with the SDK's own constructors: LLM and TTS metrics,
 * each followed by the session's cumulative usage, and a tool call every tenth turn.
 */
function insightEvents(count: number): { name: string; event: unknown }[] {
  const collector = new metrics.ModelUsageCollector();
  const events: { name: string; event: unknown }[] = [];
  for (let i = 0; events.length < count; i++) {
    const m: metrics.AgentMetrics =
      i % 2 === 0
        ? { type: 'llm_metrics', label: 'llm', requestId: `r${i}`, timestamp: Date.now(), durationMs: 800, ttftMs: 300, cancelled: false, completionTokens: 20, promptTokens: 300, promptCachedTokens: 0, totalTokens: 320, tokensPerSecond: 25, metadata: { modelProvider: 'openai', modelName: 'gpt-4.1-mini' } }
        : { type: 'tts_metrics', label: 'tts', requestId: `r${i}`, timestamp: Date.now(), ttfbMs: 120, durationMs: 400, audioDurationMs: 2_000, cancelled: false, charactersCount: 60, streamed: true, metadata: { modelProvider: 'cartesia', modelName: 'sonic-2' } };
    collector.collect(m);
    events.push({ name: 'metrics_collected', event: voice.createMetricsCollectedEvent({ metrics: m }) });
    events.push({ name: 'session_usage_updated', event: voice.createSessionUsageUpdatedEvent({ usage: { modelUsage: collector.flatten().map((u) => metrics.filterZeroValues(u)) } }) });
    if (i % 10 === 9) {
      events.push({
        name: 'function_tools_executed',
        event: voice.createFunctionToolsExecutedEvent({
          functionCalls: [llm.FunctionCall.create({ callId: `call_${i}`, name: 'lookup_order', args: `{"order":${i}}` })],
          functionCallOutputs: [llm.FunctionCallOutput.create({ callId: `call_${i}`, output: 'ships tomorrow', isError: false })],
        }),
      });
    }
  }
  return events.slice(0, count);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Times each emit; yields to the loop every 100 events so the sender's timers run as they would. */
async function timeEmits(session: EventEmitter, events: readonly { name: string; event: unknown }[]): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < events.length; i++) {
    const { name, event } = events[i] as { name: string; event: unknown };
    const start = process.hrtime.bigint();
    session.emit(name, event);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  return samples.sort((a, b) => a - b);
}

const SESSION_EVENTS = ['conversation_item_added', 'metrics_collected', 'session_usage_updated', 'function_tools_executed', 'close'];

/** A session whose every event has a listener that does nothing: the baseline emit cost. */
function baselineSession(): EventEmitter {
  const session = new EventEmitter();
  for (const name of SESSION_EVENTS) session.on(name, () => undefined);
  return session;
}

async function eventCost(events: readonly { name: string; event: unknown }[]): Promise<{ baseline: number[]; capture: number[]; sends: number }> {
  // Warm-up both paths (JIT), then measure each on a fresh session.
  for (let round = 0; round < 2; round++) {
    await timeEmits(baselineSession(), events.slice(0, 2_000));
    const warmCapture = new EventEmitter();
    attach(warmCapture, new BenchSink());
    await timeEmits(warmCapture, events.slice(0, 2_000));
  }
  const baseline = await timeEmits(baselineSession(), events);
  const session = new EventEmitter();
  const sink = new BenchSink();
  attach(session, sink);
  const capture = await timeEmits(session, events);
  return { baseline, capture, sends: sink.sends };
}

const itemEvents = (count: number) => Array.from({ length: count }, (_, i) => ({ name: 'conversation_item_added', event: itemEvent(i) }));

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
 * What one memory round measures, in a process of its own (so no earlier round's garbage, JIT
 * state or timers land in it), after a warm-up of both paths:
 *   idle        heap retained per call by 1,000 attached captures with no events
 *   transcript  heap retained by MEMORY_EVENTS transcript items held in a plain array (the baseline)
 *   capture     heap retained by a call after MEMORY_EVENTS conversation_item_added events
 * Baseline and capture are measured in the same run, in the order the round names, each as the
 * retained heap after forced GC with its objects kept alive. The events are prepared before the
 * measurement: they belong to the agent, and both the plain array and the capture keep the
 * items' text by reference to the events' strings.
 */
type Measure = 'idle' | 'transcript' | 'capture';
const PROBE_ENV = 'CALLDATA_BENCH_PROBE';

function measureOnce(what: Measure): { bytes: number; keep: unknown } {
  if (what === 'idle') {
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
  if (what === 'capture') for (const event of events) session.emit('conversation_item_added', event);
  else for (const event of events) plain.push(conversationItem(event.item, event.createdAt) as CapturedItem);
  const bytes = heapUsed() - before;
  if ((what === 'capture' ? capture.conversationLength : plain.length) !== MEMORY_EVENTS) throw new Error('bench lost its objects');
  return { bytes, keep: [events, capture, plain] };
}

async function settleHeap(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  heapUsed();
}

/** One round: warm both paths up, then measure each in the given order; prints the figures as JSON. */
async function runRound(order: readonly Measure[]): Promise<void> {
  for (let i = 0; i < 2; i++) for (const what of order) measureOnce(what);
  const figures: Partial<Record<Measure, number>> = {};
  const kept: unknown[] = [];
  for (const what of order) {
    await settleHeap();
    const { bytes, keep } = measureOnce(what);
    figures[what] = bytes;
    kept.push(keep);
  }
  process.stdout.write(`${JSON.stringify({ ...figures, kept: kept.length })}\n`);
}

function roundInChild(order: readonly Measure[]): Partial<Record<Measure, number>> {
  const result = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
    encoding: 'utf8',
    env: { ...process.env, [PROBE_ENV]: order.join(','), POWERTOOLS_LOG_LEVEL: 'WARN' },
  });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.status !== 0 || !line.startsWith('{')) throw new Error(`memory round ${order.join(',')} failed: ${result.stderr}`);
  return JSON.parse(line) as Partial<Record<Measure, number>>;
}

interface MemoryFigures {
  perIdleCall: number;
  captureGrowth: number;
  transcriptItself: number;
  /** Median per-round difference capture − baseline (may be noise around 0). */
  beyond: number;
  /** Half the spread of the per-round differences: how much of `beyond` is noise. */
  noise: number;
}

function memory(): MemoryFigures {
  const perIdleCall = median(Array.from({ length: 3 }, () => roundInChild(['idle']).idle ?? Number.NaN));
  // Alternate the order so neither side always gets the fresher heap.
  const rounds = Array.from({ length: MEMORY_ROUNDS }, (_, i) => roundInChild(i % 2 === 0 ? ['transcript', 'capture'] : ['capture', 'transcript']));
  const differences = rounds.map((r) => (r.capture ?? Number.NaN) - (r.transcript ?? Number.NaN));
  return {
    perIdleCall,
    captureGrowth: median(rounds.map((r) => r.capture ?? Number.NaN)),
    transcriptItself: median(rounds.map((r) => r.transcript ?? Number.NaN)),
    beyond: median(differences),
    noise: (Math.max(...differences) - Math.min(...differences)) / 2,
  };
}

const fmt = (us: number) => `${us.toFixed(2).padStart(8)} µs`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

function printEventCost(title: string, { baseline, capture, sends }: { baseline: number[]; capture: number[]; sends: number }): number {
  const p99 = percentile(capture, 99);
  console.log(`${title} (${EVENTS.toLocaleString('en')} events)`);
  console.log(`                          p50          p99          max`);
  console.log(`  baseline (no-op)  ${fmt(percentile(baseline, 50))} ${fmt(percentile(baseline, 99))} ${fmt(baseline.at(-1) ?? 0)}`);
  console.log(`  with capture      ${fmt(percentile(capture, 50))} ${fmt(p99)} ${fmt(capture.at(-1) ?? 0)}`);
  console.log(`  capture overhead  ${fmt(percentile(capture, 50) - percentile(baseline, 50))} ${fmt(p99 - percentile(baseline, 99))}`);
  console.log(`  messages sent during the run: ${sends} (progress interval 2 s)`);
  console.log('');
  return p99;
}

async function main(): Promise<void> {
  const items = printEventCost('call-data capture: cost per conversation_item_added event (chat messages with per-turn metrics)', await eventCost(itemEvents(EVENTS)));
  const insights = printEventCost('call-data capture: cost per insight event (metrics_collected, session_usage_updated, function_tools_executed)', await eventCost(insightEvents(EVENTS)));
  const p99 = Math.max(items, insights);
  console.log('per message sent (build + validate + encode, on the event loop, at most once per interval):');
  for (const items of [10, 100, 1_000, 10_000]) console.log(`  ${String(items).padStart(6)} transcript items  ${fmt(messageCost(items))}`);
  console.log('');
  const mem = memory();
  const perEvent = (bytes: number) => `${(bytes / MEMORY_EVENTS).toFixed(1)} B/event`;
  console.log(`memory (retained heap after forced GC; median of ${MEMORY_ROUNDS} rounds of ${MEMORY_EVENTS.toLocaleString('en')} events, baseline and capture in the same run):`);
  console.log(`  per idle call (capture, detector, sender)     ${kib(Math.max(0, mem.perIdleCall))}`);
  console.log(`  a call after the events                       ${kib(Math.max(0, mem.captureGrowth))} (${perEvent(Math.max(0, mem.captureGrowth))})`);
  console.log(`  baseline: the same items in a plain array     ${kib(Math.max(0, mem.transcriptItself))} (${perEvent(Math.max(0, mem.transcriptItself))})`);
  // Retained memory is never negative: a difference inside the rounds' noise is reported as such.
  const beyond = mem.beyond > mem.noise ? mem.beyond : 0;
  const ratio = mem.transcriptItself > 0 ? mem.captureGrowth / mem.transcriptItself : Number.NaN;
  console.log(
    `  capture beyond the baseline                   ${beyond > 0 ? `${kib(beyond)} (${perEvent(beyond)})` : `none measurable (within ±${kib(mem.noise)} of noise)`}; capture / baseline = ${ratio.toFixed(3)}`,
  );
  console.log('');
  const met = p99 <= TARGET_P99_US;
  console.log(`target p99 ≤ ${TARGET_P99_US} µs per event: ${met ? 'met' : 'NOT met'} (${p99.toFixed(2)} µs)`);
  if (!met && process.env.BENCH_STRICT === '1') process.exit(1);
}

const round = process.env[PROBE_ENV];
if (round) await runRound(round.split(',') as Measure[]);
else await main();
