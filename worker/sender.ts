/**
 * The coalescing sender: snapshots leave the worker asynchronously, at most one in flight
 * per call, built only when they are about to be sent, so capture costs the agent nothing
 * but marking the call dirty.
 *
 * - `touch()`   something changed: send a snapshot no sooner than `minIntervalMs` after the last
 * - `urgent()`  something important changed (answered, started): send as soon as possible
 * - failures keep the call dirty and retry with capped exponential back-off; while the queue
 *   is unreachable only the newest state is kept (snapshots are whole state, never deltas)
 * - `close(deadline)` sends the final snapshot, retrying until the deadline
 */
import type { Snapshot } from '../functions/contract/snapshot.ts';
import type { SendReceipt, SnapshotSink } from '../functions/transport/sink.ts';

export interface SenderOptions {
  sink: SnapshotSink | (() => Promise<SnapshotSink>);
  /** Builds the newest snapshot; called once per send. */
  build: () => Snapshot;
  minIntervalMs: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  onSent?: (snapshot: Snapshot, receipt: SendReceipt) => void;
  onFailed?: (snapshot: Snapshot, error: unknown, failures: number) => void;
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
  private sink: SnapshotSink | undefined;
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

  /** Something changed; a snapshot follows within `minIntervalMs`. Cheap: no allocation when already scheduled. */
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

  private async resolveSink(): Promise<SnapshotSink> {
    if (!this.sink) this.sink = typeof this.options.sink === 'function' ? await this.options.sink() : this.options.sink;
    return this.sink;
  }

  /** One attempt to send the newest snapshot. Resolves true when sent. */
  private sendNow(): Promise<boolean> {
    if (this.inFlight) return this.inFlight;
    if (!this.dirty) return Promise.resolve(true);
    this.dirty = false;
    const attempt = (async () => {
      let snapshot: Snapshot | undefined;
      try {
        snapshot = this.options.build();
        const receipt = await (await this.resolveSink()).send(snapshot);
        this.sent++;
        this.failures = 0;
        this.lastSentAt = this.now();
        this.options.onSent?.(snapshot, receipt);
        return true;
      } catch (error) {
        this.failed++;
        this.failures++;
        this.dirty = true;
        if (snapshot) this.options.onFailed?.(snapshot, error, this.failures);
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

  /** True while a snapshot is waiting or being sent. */
  get busy(): boolean {
    return this.dirty || this.inFlight !== undefined;
  }

  /**
   * Stops scheduling and sends the newest (final) snapshot, retrying until `deadlineMs`
   * (epoch ms). Resolves true once a snapshot built after close() was accepted (or, without
   * `force`, when nothing was left to send).
   */
  async close(deadlineMs: number, force = true): Promise<boolean> {
    this.closed = true;
    this.cancelTimer();
    if (this.inFlight) await this.inFlight;
    // Without `force`, only a snapshot still waiting (or failed) is sent.
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
