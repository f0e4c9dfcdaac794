/**
 * One sweep (functions/sweeper/sweep.ts) with the storage, LiveKit and the fact sink as
 * recording stand-ins: what it sends, and what it does when a part is unavailable.
 * The same sweep against the real livekit-server and PostgreSQL: test/integration/sweeper-e2e.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig, resetConfigForTests } from '../../functions/config/config.ts';
import { ConfigError } from '../../functions/config/errors.ts';
import type { FactMessage } from '../../functions/contract/facts.ts';
import type { OpenCall, StorageBackend } from '../../functions/storage/backend.ts';
import { startEmbeddedSweeper, sweepIntervalMs } from '../../functions/sweeper/embedded.ts';
import { sweepScheduled } from '../../functions/sweeper/handler.ts';
import { missingLivekit, requireLivekit } from '../../functions/config/livekit.ts';
import { sweep, SweepError, type RoomLister } from '../../functions/sweeper/sweep.ts';
import type { FactSink } from '../../functions/transport/sink.ts';
import type { Pipeline } from '../../functions/wiring.ts';

const NOW = Date.UTC(2026, 10, 23, 20, 0, 0, 0);
const MINUTE = 60_000;

class Stand {
  readonly sent: FactMessage[] = [];
  readonly asked: { quietSinceMs: number; limit: number }[] = [];
  readonly roomQueries: (string[] | undefined)[] = [];
  failSendFor = new Set<string>();
  storageDown = false;
  livekitDown = false;

  readonly open: OpenCall[];
  readonly rooms: { name: string; sid: string }[];

  constructor(open: OpenCall[], rooms: { name: string; sid: string }[]) {
    this.open = open;
    this.rooms = rooms;
  }

  backend(): StorageBackend {
    return {
      name: 'stand-in',
      merge: async () => [],
      read: async () => undefined,
      queryCalls: async () => ({ calls: [] }),
      openCalls: async (quietSinceMs, limit) => {
        this.asked.push({ quietSinceMs, limit });
        if (this.storageDown) throw new Error('connection refused');
        return this.open.filter((c) => c.lastFactAtMs < quietSinceMs).slice(0, limit);
      },
      close: async () => undefined,
    };
  }

  sink(): FactSink {
    return {
      transport: 'embedded',
      send: async (message) => {
        if (this.failSendFor.has(message.callId)) throw new Error('queue unavailable');
        this.sent.push(message);
        return { transport: 'embedded', messageId: String(this.sent.length), bytes: 1, offloaded: false };
      },
    };
  }

  lister(): RoomLister {
    return {
      listRooms: async (names) => {
        this.roomQueries.push(names);
        if (this.livekitDown) throw new Error('fetch failed');
        return this.rooms.filter((r) => !names || names.length === 0 || names.includes(r.name));
      },
    };
  }

  pipeline(withPrimary = true): Pipeline {
    const backend = this.backend();
    return {
      config: loadConfig({ SAVE_METADATA: 'true', CALLDATA_SWEEP_AFTER_MS: String(10 * MINUTE) }),
      targets: async () => (withPrimary ? [{ location: 'stand-in', backend }] : []),
      primary: async () => (withPrimary ? backend : undefined),
      factSink: async () => this.sink(),
      commandSink: async () => undefined,
      persist: async () => new Map(),
    };
  }
}

function call(callId: string, roomName: string | undefined, quietMinutes: number): OpenCall {
  return { callId, ...(roomName ? { roomName } : {}), lastFactAtMs: NOW - quietMinutes * MINUTE };
}

describe('a sweep', () => {
  it('asks storage for calls quiet longer than CALLDATA_SWEEP_AFTER_MS and closes those whose rooms are gone', async () => {
    // Prepare
    const stand = new Stand([call('RM_gone', 'gone', 30), call('RM_live', 'live', 30), call('RM_reused', 'live2', 40)], [
      { name: 'live', sid: 'RM_live' },
      { name: 'live2', sid: 'RM_other' },
    ]);

    // Act
    const report = await sweep({ pipeline: stand.pipeline(), rooms: stand.lister(), now: () => NOW });

    // Assess
    expect(stand.asked).toEqual([{ quietSinceMs: NOW - 10 * MINUTE, limit: 500 }]);
    expect(stand.roomQueries).toEqual([['gone', 'live', 'live2']]);
    expect(report).toMatchObject({ open: 3, kept: 1, failed: [], purged: 0 });
    expect(report.closed.sort()).toEqual(['RM_gone', 'RM_reused']);
    expect(stand.sent.map((m) => [m.callId, m.writer, m.kind, m.facts.ended?.atMs]).sort()).toEqual([
      ['RM_gone', 'sweeper:RM_gone', 'sweeper', NOW - 30 * MINUTE],
      ['RM_reused', 'sweeper:RM_reused', 'sweeper', NOW - 40 * MINUTE],
    ]);
  });

  it('does not ask LiveKit at all when no call is open', async () => {
    // Prepare
    const stand = new Stand([call('RM_recent', 'r', 1)], []);

    // Act
    const report = await sweep({ pipeline: stand.pipeline(), rooms: stand.lister(), now: () => NOW });

    // Assess
    expect(report).toMatchObject({ open: 0, closed: [] });
    expect(stand.roomQueries).toEqual([]);
  });

  it('asks for every room when a call is known only by its room SID', async () => {
    // Prepare
    const stand = new Stand([call('RM_nameless', undefined, 30)], [{ name: 'whatever', sid: 'RM_nameless' }]);

    // Act
    const report = await sweep({ pipeline: stand.pipeline(), rooms: stand.lister(), now: () => NOW });

    // Assess
    expect(stand.roomQueries).toEqual([undefined]);
    expect(report).toMatchObject({ kept: 1, closed: [] });
  });

  it('closes nothing when LiveKit cannot be asked', async () => {
    // Prepare
    const stand = new Stand([call('RM_gone', 'gone', 30)], []);
    stand.livekitDown = true;

    // Act
    const run = sweep({ pipeline: stand.pipeline(), rooms: stand.lister(), now: () => NOW });

    // Assess
    await expect(run).rejects.toBeInstanceOf(SweepError);
    await expect(run).rejects.toThrow(/no call was closed/);
    expect(stand.sent).toEqual([]);
  });

  it('fails when storage cannot list open calls, and still purges', async () => {
    // Prepare
    const stand = new Stand([], []);
    stand.storageDown = true;
    const purged: number[] = [];

    // Act
    const run = sweep({ pipeline: stand.pipeline(), rooms: stand.lister(), now: () => NOW, purge: async (now) => (purged.push(now), 3) });

    // Assess
    await expect(run).rejects.toThrow(/open calls could not be listed/);
    expect(purged).toEqual([NOW]);
  });

  it('reports a call whose closing fact could not be sent and closes the others', async () => {
    // Prepare
    const stand = new Stand([call('RM_a', 'a', 30), call('RM_b', 'b', 30)], []);
    stand.failSendFor.add('RM_a');

    // Act
    const report = await sweep({ pipeline: stand.pipeline(), rooms: stand.lister(), now: () => NOW });

    // Assess
    expect(report.closed).toEqual(['RM_b']);
    expect(report.failed).toEqual([{ callId: 'RM_a', error: 'queue unavailable' }]);
  });

  it('closes nothing but still purges without LiveKit, and skips closing without a location', async () => {
    // Prepare
    const stand = new Stand([call('RM_a', 'a', 30)], []);

    // Act
    const noLivekit = await sweep({ pipeline: stand.pipeline(), rooms: undefined, now: () => NOW, purge: async () => 2 });
    const noLocation = await sweep({ pipeline: stand.pipeline(false), rooms: stand.lister(), now: () => NOW });
    const purgeFails = await sweep({ pipeline: stand.pipeline(), rooms: stand.lister(), now: () => NOW, purge: async () => Promise.reject(new Error('AccessDenied')) });

    // Assess
    expect(noLivekit).toMatchObject({ closed: [], purged: 2, skipped: expect.stringMatching(/LiveKit/) });
    expect(noLocation).toMatchObject({ closed: [], skipped: expect.stringMatching(/no location/) });
    expect(purgeFails).toMatchObject({ closed: ['RM_a'], purgeError: 'AccessDenied' });
  });
});

describe('the sweeper in the worker (embedded default)', () => {
  it('reads LiveKit access from the configuration and names what is missing', () => {
    // Prepare / Act / Assess: the one LiveKit check (functions/config/livekit.ts) the sweeper uses
    expect(missingLivekit(loadConfig({}).livekit)).toEqual(['LIVEKIT_URL', 'LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET']);
    expect(missingLivekit(loadConfig({ LIVEKIT_URL: 'ws://127.0.0.1:7880' }).livekit)).toEqual(['LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET']);
    expect(missingLivekit(loadConfig({ LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: 'k' }).livekit)).toEqual(['LIVEKIT_API_SECRET']);
    expect(requireLivekit(loadConfig({ LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's' }), 'sweep')).toEqual({ url: 'ws://127.0.0.1:7880', apiKey: 'k', apiSecret: 's' });
  });

  it('sweeps at the bound\'s pace, between 5 seconds and 5 minutes', () => {
    // Prepare / Act / Assess
    expect(sweepIntervalMs({ sweepAfterMs: 1_000 })).toBe(5_000);
    expect(sweepIntervalMs({ sweepAfterMs: 2 * MINUTE })).toBe(2 * MINUTE);
    expect(sweepIntervalMs({ sweepAfterMs: 10 * MINUTE })).toBe(5 * MINUTE);
  });

  it('stays off with a queue (the stack sweeps) and without LiveKit or recording', () => {
    // Prepare / Act
    const withQueue = startEmbeddedSweeper(loadConfig({ CALLDATA_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/q' }));
    const withoutLivekit = startEmbeddedSweeper(loadConfig({}));

    // Assess
    expect(withQueue.active).toBe(false);
    expect(withoutLivekit.active).toBe(false);
  });

  it('never throws when a sweep cannot run, and runs again later', async () => {
    // Prepare
    const stand = new Stand([call('RM_gone', 'gone', 30)], []);
    stand.livekitDown = true;
    const sweeper = startEmbeddedSweeper(loadConfig({ SAVE_METADATA: 'true' }), { rooms: stand.lister(), pipeline: stand.pipeline(), runAtStart: false });

    // Act
    const whileDown = [await sweeper.runOnce(), await sweeper.runOnce()];
    stand.livekitDown = false;
    const recovered = await sweeper.runOnce();
    sweeper.stop();

    // Assess
    expect(sweeper.active).toBe(true);
    expect(whileDown).toEqual([undefined, undefined]);
    expect(recovered?.closed).toEqual(['RM_gone']);
    expect(stand.sent).toHaveLength(1);
  });
});

describe('the scheduled sweeper Lambda', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    resetConfigForTests();
  });

  it('fails (so it shows in the error metric) when it has no LiveKit to ask, naming the variable', async () => {
    // Prepare
    vi.stubEnv('LIVEKIT_URL', '');
    resetConfigForTests();

    // Act
    const run = sweepScheduled({}, {} as never);

    // Assess
    await expect(run).rejects.toBeInstanceOf(ConfigError);
    await expect(run).rejects.toThrow(/LIVEKIT_URL/);
  });
});
