/**
 * The coalescing sender: fact messages leave the worker asynchronously, at most one in flight
 * per call, built only when they are about to be sent, so capture costs the agent nothing
 * but marking the call dirty.
 *
 * - `touch()`   something changed: send a message no sooner than `minIntervalMs` after the last
 * - `urgent()`  something important changed (answered, started): send as soon as possible
 * - failures keep the call dirty and retry with capped exponential back-off; while the queue
 *   is unreachable only the newest view is kept (the worker's messages are cumulative: each
 *   holds the job's whole view, so a lost one is covered by the next)
 * - `close(deadline)` sends the final message, retrying until the deadline
 */
import type { FactMessage } from '../functions/contract/facts.ts';
import type { FactSink, SendReceipt } from '../functions/transport/sink.ts';

export interface SenderOptions {
  sink: FactSink | (() => Promise<FactSink>);
  /** Builds the newest message; called once per send. */
  build: () => FactMessage;
  minIntervalMs: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  onSent?: (message: FactMessage, receipt: SendReceipt) => void;
  onFailed?: (message: FactMessage, error: unknown, failures: number) => void;
}

const defaultTimer = (fn: () => void, ms: number) => {
  const handle = setTimeout(fn, ms);
  handle.unref?.();
  return { cancel: () => clearTimeout(handle) };
};

export class CoalescingSender {
  private readonly options: SenderOptions;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => { cancel(): void };
  private sink: FactSink | undefined;
  private dirty = false;
  private inFlight: Promise<boolean> | undefined;
  private timer: { cancel(): void; at: number } | undefined;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private failures = 0;
  private closed = false;
  /** Sends that succeeded / failed, for tests and the benchmark. */
  sent = 0;
  failed = 0;

  constructor(options: SenderOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? defaultTimer;
  }

  /** Something changed; a message follows within `minIntervalMs`. Cheap: no allocation when already scheduled. */
  touch(): void {
    if (this.closed) return;
    this.dirty = true;
    if (this.inFlight || this.timer) return;
    this.schedule(Math.max(0, this.lastSentAt + this.options.minIntervalMs - this.now()));
  }

  /** Something important changed; send as soon as the current send (if any) is done. */
  urgent(): void {
    if (this.closed) return;
    this.dirty = true;
    if (this.inFlight) return;
    if (this.timer && this.failures === 0) this.cancelTimer();
    if (!this.timer) this.schedule(0);
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    const at = this.now() + delayMs;
    const handle = this.setTimer(() => {
      this.timer = undefined;
      void this.sendNow();
    }, delayMs);
    this.timer = { cancel: () => handle.cancel(), at };
  }

  private async resolveSink(): Promise<FactSink> {
    if (!this.sink) this.sink = typeof this.options.sink === 'function' ? await this.options.sink() : this.options.sink;
    return this.sink;
  }

  /** One attempt to send the newest message. Resolves true when sent. */
  private sendNow(): Promise<boolean> {
    if (this.inFlight) return this.inFlight;
    if (!this.dirty) return Promise.resolve(true);
    this.dirty = false;
    const attempt = (async () => {
      let message: FactMessage | undefined;
      try {
        message = this.options.build();
        const receipt = await (await this.resolveSink()).send(message);
        this.sent++;
        this.failures = 0;
        this.lastSentAt = this.now();
        this.options.onSent?.(message, receipt);
        return true;
      } catch (error) {
        this.failed++;
        this.failures++;
        this.dirty = true;
        if (message) this.options.onFailed?.(message, error, this.failures);
        return false;
      }
    })();
    this.inFlight = attempt;
    void attempt.then((ok) => {
      this.inFlight = undefined;
      if (this.closed) return;
      if (!ok) this.schedule(this.backoff());
      else if (this.dirty) this.schedule(Math.max(0, this.lastSentAt + this.options.minIntervalMs - this.now()));
    });
    return attempt;
  }

  private backoff(): number {
    const base = this.options.retryBaseMs ?? 500;
    const max = this.options.retryMaxMs ?? 10_000;
    const exp = Math.min(max, base * 2 ** Math.min(this.failures - 1, 20));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  /** True while a message is waiting or being sent. */
  get busy(): boolean {
    return this.dirty || this.inFlight !== undefined;
  }

  /**
   * Stops scheduling and sends the newest (final) message, retrying until `deadlineMs`
   * (epoch ms). Resolves true once a message built after close() was accepted (or, without
   * `force`, when nothing was left to send).
   */
  async close(deadlineMs: number, force = true): Promise<boolean> {
    this.closed = true;
    this.cancelTimer();
    if (this.inFlight) await this.inFlight;
    // Without `force`, only a message still waiting (or failed) is sent.
    if (force) this.dirty = true;
    let wait = this.options.retryBaseMs ?? 500;
    for (;;) {
      const ok = await this.sendNow();
      if (ok) return true;
      const left = deadlineMs - this.now();
      if (left <= 0) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, left)));
      wait = Math.min(wait * 2, this.options.retryMaxMs ?? 10_000);
    }
  }
}
