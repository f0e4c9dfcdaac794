/**
 * Pieces of the worker end-to-end tests: the real worker as a child process (`node
 * worker/main.ts dev`), a simulated SIP caller on @livekit/rtc-node, and the AWS side as Lambda
 * would run it (LocalStack queues drained into the persist and recording handlers).
 */
import { deliver, receive, type Handler } from '../support/queue-poller.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Room, type TextStreamReader } from '@livekit/rtc-node';
import { AccessToken, AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const LIVEKIT_KEY = 'devkey';
export const LIVEKIT_SECRET = 'secret';

/** Polls `check` until it returns a value (not undefined/false) or the time is up. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface WorkerProcessOptions {
  /** The text of a `.env` the worker finds in its working directory (none by default). */
  dotenv?: string;
}

/**
 * A real worker process. It runs in a fresh temporary directory, never the repository: the
 * worker reads `./.env`, and a developer's own `.env` must not leak into the tests. Every path
 * it needs is absolute (its entry file, and the test's locations and logs).
 */
export class WorkerProcess {
  readonly agentName: string;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private readonly env: Record<string, string>;
  private readonly options: WorkerProcessOptions;
  /** The worker's working directory, while it runs. */
  private cwd: string | undefined;

  constructor(agentName: string, env: Record<string, string>, logFile: string, options: WorkerProcessOptions = {}) {
    this.agentName = agentName;
    this.env = env;
    this.logFile = logFile;
    this.options = options;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  logs(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Starts the worker and resolves once it registered with LiveKit. */
  async start(): Promise<void> {
    const out = openSync(this.logFile, 'a');
    this.cwd = mkdtempSync(join(tmpdir(), 'calldata-worker-cwd-'));
    if (this.options.dotenv !== undefined) writeFileSync(join(this.cwd, '.env'), this.options.dotenv);
    this.child = spawn(process.execPath, [join(ROOT, 'worker/main.ts'), 'dev', '--log-level', 'info'], {
      cwd: this.cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...this.env, LIVEKIT_AGENT_NAME: this.agentName },
      // Its own process group, so the job processes it forks can be killed with it.
      detached: true,
      stdio: ['ignore', out, out],
    });
    const child = this.child;
    await eventually(
      () => {
        if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}:\n${this.logs().slice(-3_000)}`);
        return this.logs().includes('registered worker');
      },
      60_000,
      `worker ${this.agentName} to register`,
    );
  }

  /** SIGKILL to the worker and its job processes: a crash, no shutdown callbacks. */
  kill(): void {
    if (this.child?.pid) process.kill(-this.child.pid, 'SIGKILL');
  }

  async stop(): Promise<void> {
    await this.terminate();
    if (this.cwd) rmSync(this.cwd, { recursive: true, force: true });
    this.cwd = undefined;
  }

  private async terminate(): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 15_000);
    await exited;
    clearTimeout(timer);
  }
}

export interface CallerOptions {
  livekitUrl: string;
  room: string;
  identity?: string;
  callStatus?: string;
  attributes?: Record<string, string>;
}

/** A phone caller as LiveKit SIP would put it in the room: kind SIP, sip.* attributes, text over lk.chat. */
export class SimulatedCaller {
  readonly room = new Room();
  readonly heard: string[] = [];
  private readonly options: CallerOptions;

  constructor(options: CallerOptions) {
    this.options = options;
  }

  async join(): Promise<void> {
    const token = new AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET, {
      identity: this.options.identity ?? 'sip_+919876543210',
      attributes: {
        'sip.callStatus': this.options.callStatus ?? 'ringing',
        'sip.phoneNumber': '+919876543210',
        'sip.trunkPhoneNumber': '+14155550100',
        'sip.trunkID': 'ST_e2eInbound',
        'sip.callID': 'SCL_e2e',
        'sip.ruleID': 'SDR_e2e',
        ...this.options.attributes,
      },
    });
    token.kind = 'sip';
    token.addGrant({ roomJoin: true, room: this.options.room, canUpdateOwnMetadata: true, canPublishData: true, canSubscribe: true });
    this.room.registerTextStreamHandler('lk.transcription', (reader: TextStreamReader, info: { identity: string }) => {
      reader.readAll().then(
        (text) => {
          if (info.identity.startsWith('agent')) this.heard.push(text);
        },
        // A caller that hangs up mid-sentence cuts the stream: that is the scenario, not a failure.
        () => undefined,
      );
    });
    await this.room.connect(this.options.livekitUrl, await token.toJwt(), { autoSubscribe: true, dynacast: false });
  }

  /** Identities of the agents in the room (a dead job's agent stays listed until LiveKit drops it). */
  agents(): string[] {
    return [...this.room.remoteParticipants.values()].filter((p) => p.identity.startsWith('agent')).map((p) => p.identity);
  }

  /**
   * Waits until an agent (other than those in `besides`) is in the room and listening (its text
   * input is registered by then). Resolves its identity.
   */
  async waitForAgent(timeoutMs = 30_000, besides: ReadonlySet<string> = new Set()): Promise<string> {
    return eventually(
      () => [...this.room.remoteParticipants.values()].find((p) => p.identity.startsWith('agent') && !besides.has(p.identity) && p.attributes['lk.agent.state'] === 'listening')?.identity,
      timeoutMs,
      besides.size > 0 ? 'a new agent to join and listen' : 'the agent to join and listen',
    );
  }

  async setStatus(status: string): Promise<void> {
    await this.room.localParticipant!.setAttributes({ 'sip.callStatus': status });
  }

  /** Says something and waits until the agent answered with `reply` (when given). */
  async say(text: string, reply?: string, timeoutMs = 20_000): Promise<void> {
    const before = this.heard.length;
    await this.room.localParticipant!.sendText(text, { topic: 'lk.chat' });
    if (reply !== undefined) await eventually(() => this.heard.slice(before).includes(reply), timeoutMs, `agent reply "${reply}"`);
  }

  get connected(): boolean {
    return this.room.isConnected;
  }

  async leave(): Promise<void> {
    if (this.room.isConnected) await this.room.disconnect();
  }
}

export class LiveKitRooms {
  readonly rooms: RoomServiceClient;
  readonly dispatch: AgentDispatchClient;
  private readonly created: string[] = [];

  constructor(livekitUrl: string) {
    const http = livekitUrl.replace(/^ws/, 'http');
    this.rooms = new RoomServiceClient(http, LIVEKIT_KEY, LIVEKIT_SECRET);
    this.dispatch = new AgentDispatchClient(http, LIVEKIT_KEY, LIVEKIT_SECRET);
  }

  /** A room that closes 1 s after its last participant left, with the agent dispatched to it. */
  async callRoom(name: string, agentName: string, metadata = ''): Promise<{ name: string; sid: string }> {
    const room = await this.rooms.createRoom({ name, emptyTimeout: 30, departureTimeout: 1 });
    this.created.push(name);
    await this.dispatch.createDispatch(name, agentName, { metadata });
    return { name, sid: room.sid };
  }

  /** Dispatches the agent to the room again (LiveKit gives the new job a new id). */
  async redispatch(name: string, agentName: string, metadata = ''): Promise<void> {
    await this.dispatch.createDispatch(name, agentName, { metadata });
  }

  async exists(name: string): Promise<boolean> {
    return (await this.rooms.listRooms([name])).length > 0;
  }

  async cleanup(): Promise<void> {
    await Promise.allSettled(this.created.map((name) => this.rooms.deleteRoom(name)));
  }
}



/** A message on the fact queue, as far as the tests look at it. */
export interface QueuedMessage {
  callId: string;
  kind: string;
  writer: string;
  seq: number;
}

/**
 * Drains a queue into a handler in the background, like Lambda's event source mapping: receive
 * a batch, hand it over as an SQSEvent, delete only what the handler did not report as failed
 * (those become visible again after the visibility timeout).
 */
export class QueuePump {
  readonly bodies: string[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly sqs: SQSClient;
  private readonly queueUrl: string;
  private readonly handler: Handler;

  constructor(sqs: SQSClient, queueUrl: string, handler: Handler) {
    this.sqs = sqs;
    this.queueUrl = queueUrl;
    this.handler = handler;
  }

  static async createQueue(sqs: SQSClient, name: string): Promise<string> {
    const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '2' } }));
    return created.QueueUrl ?? '';
  }

  /** One receive (long poll of a second) and its batch; true when a batch came. */
  async pollOnce(): Promise<boolean> {
    const messages = await receive(this.sqs, this.queueUrl);
    if (messages.length === 0) return false;
    for (const message of messages) this.bodies.push(message.Body ?? '');
    await deliver(this.sqs, this.queueUrl, this.handler, messages, 'e2e');
    return true;
  }

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) await this.pollOnce().catch(() => new Promise((resolve) => setTimeout(resolve, 200)));
    })();
  }

  /** Every message delivered for the call (a message redelivered after a failure counts once). */
  messagesFor(callId: string): QueuedMessage[] {
    const seen = new Map<string, QueuedMessage>();
    for (const body of this.bodies) {
      const message = JSON.parse(body) as QueuedMessage;
      if (message.callId === callId) seen.set(`${message.writer}#${message.seq}`, message);
    }
    return [...seen.values()];
  }

  /** The kinds the worker's jobs sent for the call, in each job's order. */
  workerKinds(callId: string): string[] {
    return this.messagesFor(callId)
      .filter((m) => m.writer.startsWith('job:'))
      .sort((a, b) => (a.writer === b.writer ? a.seq - b.seq : a.writer < b.writer ? -1 : 1))
      .map((m) => m.kind);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
