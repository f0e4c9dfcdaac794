import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FactMessage } from '../../functions/contract/facts.ts';
import type { FactSink, SendReceipt } from '../../functions/transport/sink.ts';
import { CoalescingSender } from '../../worker/sender.ts';
import { buildMessage } from '../support/snapshots.ts';

class ScriptedSink implements FactSink {
  readonly transport = 'sqs' as const;
  readonly sent: FactMessage[] = [];
  failuresLeft = 0;
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  async send(message: FactMessage): Promise<SendReceipt> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.failuresLeft > 0) {
        this.failuresLeft--;
        throw new Error('queue unreachable');
      }
      this.sent.push(message);
      return { transport: 'sqs', messageId: String(this.sent.length), bytes: 1, offloaded: false };
    } finally {
      this.inFlight--;
    }
  }
}

function senderWith(sink: ScriptedSink, minIntervalMs = 1_000) {
  let version = 0;
  const sender = new CoalescingSender({
    sink,
    build: () => buildMessage({ callId: 'call-1', seq: ++version, turns: version }),
    minIntervalMs,
    retryBaseMs: 100,
    retryMaxMs: 1_000,
  });
  return { sender, builds: () => version };
}

describe('coalescing sender', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends one message for many changes inside the interval, built from the newest state', async () => {
    // Prepare
    const sink = new ScriptedSink();
    const { sender, builds } = senderWith(sink);
    // Act: a first send, then 50 changes within one interval
    sender.touch();
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 50; i++) sender.touch();
    await vi.advanceTimersByTimeAsync(999);
    // Assess: nothing more before the interval is over
    expect(sink.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.sent).toHaveLength(2);
    expect(builds()).toBe(2);
  });

  it('never has more than one send in flight', async () => {
    const sink = new ScriptedSink();
    sink.delayMs = 500;
    const { sender } = senderWith(sink, 0);
    for (let i = 0; i < 20; i++) {
      sender.urgent();
      await vi.advanceTimersByTimeAsync(50);
    }
    await vi.advanceTimersByTimeAsync(2_000);
    expect(sink.maxInFlight).toBe(1);
    expect(sink.sent.length).toBeLessThanOrEqual(4);
    expect(sender.busy).toBe(false);
  });

  it('sends an urgent change at once even inside the progress interval', async () => {
    const sink = new ScriptedSink();
    const { sender } = senderWith(sink, 10_000);
    sender.touch();
    await vi.advanceTimersByTimeAsync(0);
    sender.touch();
    await vi.advanceTimersByTimeAsync(100);
    expect(sink.sent).toHaveLength(1);
    sender.urgent();
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.sent).toHaveLength(2);
  });

  it('keeps retrying while the queue is unreachable and then delivers only the newest state', async () => {
    // Prepare: the queue is down
    const sink = new ScriptedSink();
    sink.failuresLeft = Number.POSITIVE_INFINITY;
    const { sender, builds } = senderWith(sink);
    // Act: changes keep coming during the outage, then the queue recovers
    sender.urgent();
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(1_000);
      sender.touch();
    }
    const failedDuringOutage = sender.failed;
    sink.failuresLeft = 0;
    await vi.advanceTimersByTimeAsync(1_000);
    // Assess: it kept trying, and one message - the newest - went out, not a backlog
    expect(failedDuringOutage).toBeGreaterThanOrEqual(5);
    expect(sink.sent).toHaveLength(1);
    expect(sink.sent[0]?.seq).toBe(builds());
  });

  it('delivers the final message at close, retrying until it gets through', async () => {
    const sink = new ScriptedSink();
    const { sender } = senderWith(sink);
    sink.failuresLeft = 3;
    const closing = sender.close(Date.now() + 10_000);
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(closing).resolves.toBe(true);
    expect(sink.sent).toHaveLength(1);
  });

  it('gives up at the deadline when the queue stays unreachable', async () => {
    const sink = new ScriptedSink();
    sink.failuresLeft = 1_000;
    const { sender } = senderWith(sink);
    const closing = sender.close(Date.now() + 3_000);
    await vi.advanceTimersByTimeAsync(4_000);
    await expect(closing).resolves.toBe(false);
  });

  it('sends nothing at close without force when everything was already delivered', async () => {
    const sink = new ScriptedSink();
    const { sender } = senderWith(sink);
    sender.urgent();
    await vi.advanceTimersByTimeAsync(0);
    await expect(sender.close(Date.now() + 1_000, false)).resolves.toBe(true);
    expect(sink.sent).toHaveLength(1);
    sender.touch();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sink.sent).toHaveLength(1);
  });
});
