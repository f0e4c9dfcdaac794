/**
 * The behaviour every storage backend must show, run against the real server by each
 * backend's own test file: `describeBackendConformance({ ... })`.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageBackend } from '../../functions/storage/backend.ts';
import { metadataRecord, transcriptionRecord } from '../../functions/storage/documents.ts';
import { StorageError } from '../../functions/storage/errors.ts';
import { buildSnapshot, HOSTILE_ROOM_NAMES, longConversation } from './snapshots.ts';
import { TcpProxy } from './tcp-proxy.ts';

export interface ConformanceOptions {
  name: string;
  /** Creates a backend for the location (connects lazily or eagerly, its choice). */
  create: (location: string) => StorageBackend | Promise<StorageBackend>;
  /** The real location, after requireServer succeeded. */
  location: () => Promise<string>;
  /** The same location routed through a loopback port (for the outage test); omit for local folders. */
  viaPort?: (location: string, port: number) => string;
  /** The real server's port, for the proxy. */
  serverPort?: number;
}

const TZ = 'Asia/Kolkata';

export function describeBackendConformance(options: ConformanceOptions): void {
  describe(`${options.name} backend`, () => {
    let backend: StorageBackend;
    let location: string;

    beforeAll(async () => {
      location = await options.location();
      backend = await options.create(location);
    });
    afterAll(async () => {
      await backend?.close();
    });

    it('stores metadata and transcription and reads back exactly what was written', async () => {
      // Prepare
      const snapshot = buildSnapshot({ kind: 'ended', turns: 3 });
      const meta = metadataRecord(snapshot, TZ);
      const transcript = transcriptionRecord(snapshot, TZ);
      // Act
      const outcomes = await backend.write([meta, transcript]);
      // Assess
      expect(outcomes.map((o) => o.applied)).toEqual([true, true]);
      expect(outcomes[0]?.location).not.toMatch(/password|secret/i);
      const storedMeta = await backend.read('metadata', snapshot.callId);
      const storedTranscript = await backend.read('transcription', snapshot.callId);
      expect(storedMeta?.document).toEqual(meta.document);
      expect(storedMeta?.seq).toBe(snapshot.seq);
      expect(storedTranscript?.document).toEqual(transcript.document);
      expect((storedMeta?.document as { start_time: string }).start_time).toMatch(/\+05:30$/);
    });

    it('keeps the newest sequence whatever order and however often snapshots arrive', async () => {
      // Prepare: five versions of one call, delivered shuffled and duplicated
      const callId = `order-${randomUUID()}`;
      const versions = [1, 2, 3, 4, 5].map((n) => buildSnapshot({ callId, seq: 1_000 + n, turns: n, kind: n === 5 ? 'ended' : 'progress' }));
      const deliveries = [versions[2], versions[4], versions[0], versions[4], versions[1], versions[3], versions[2]];
      // Act: some in one batch (same call twice in a batch), some one at a time
      await backend.write(deliveries.slice(0, 4).map((s) => metadataRecord(s!, TZ)));
      for (const s of deliveries.slice(4)) await backend.write([metadataRecord(s!, TZ), transcriptionRecord(s!, TZ)]);
      await backend.write(deliveries.slice(0, 4).map((s) => transcriptionRecord(s!, TZ)));
      // Assess
      const meta = await backend.read('metadata', callId);
      const transcript = await backend.read('transcription', callId);
      expect(meta?.seq).toBe(1_005);
      expect((meta?.document as { status: string }).status).toBe('completed');
      expect((transcript?.document as { conversation: unknown[] }).conversation).toHaveLength(10);
      const stale = await backend.write([metadataRecord(versions[0]!, TZ)]);
      expect(stale[0]?.applied).toBe(false);
    });

    it('reports an older snapshot in the same batch as not applied', async () => {
      const callId = `batch-${randomUUID()}`;
      const older = buildSnapshot({ callId, seq: 10 });
      const newer = buildSnapshot({ callId, seq: 20 });
      const outcomes = await backend.write([metadataRecord(newer, TZ), metadataRecord(older, TZ)]);
      expect(outcomes.map((o) => o.applied)).toEqual([true, false]);
      expect((await backend.read('metadata', callId))?.seq).toBe(20);
    });

    it('keeps two calls in the same room in the same minute apart', async () => {
      const startedAtMs = Date.now();
      const a = buildSnapshot({ roomName: 'same-room', startedAtMs });
      const b = buildSnapshot({ roomName: 'same-room', startedAtMs });
      const outcomes = await backend.write([metadataRecord(a, TZ), metadataRecord(b, TZ)]);
      expect(outcomes[0]?.location).not.toBe(outcomes[1]?.location);
      expect((await backend.read('metadata', a.callId))?.document).toMatchObject({ call_id: a.callId });
      expect((await backend.read('metadata', b.callId))?.document).toMatchObject({ call_id: b.callId });
    });

    it.each(HOSTILE_ROOM_NAMES.map((name) => [JSON.stringify(name).slice(0, 60), name]))(
      'stores hostile room name %s verbatim without escaping its location',
      async (_label, roomName) => {
        const snapshot = buildSnapshot({ roomName, turns: 1 });
        const outcomes = await backend.write([metadataRecord(snapshot, TZ), transcriptionRecord(snapshot, TZ)]);
        expect(outcomes.every((o) => o.applied)).toBe(true);
        const meta = await backend.read('metadata', snapshot.callId);
        expect((meta?.document as { room_name: string }).room_name).toBe(roomName);
        for (const outcome of outcomes) {
          expect(outcome.location).not.toContain('\0');
          expect(outcome.location).not.toMatch(/(^|\/)\.\.(\/|$)/);
        }
      },
    );

    it('stores a 4-hour call whose transcript is over 2 MB', async () => {
      const snapshot = buildSnapshot({ kind: 'ended', conversation: longConversation(4 * 60 * 60 * 1000, 2.2 * 1024 * 1024) });
      const record = transcriptionRecord(snapshot, TZ);
      expect(Buffer.byteLength(JSON.stringify(record.document))).toBeGreaterThan(2 * 1024 * 1024);
      const [outcome] = await backend.write([record]);
      expect(outcome?.applied).toBe(true);
      const stored = await backend.read('transcription', snapshot.callId);
      expect(stored?.document).toEqual(record.document);
    });

    if (options.viaPort && options.serverPort) {
      it('fails with a retryable error while the server is down and writes after it recovers', async () => {
        // Prepare: a backend that reaches the server through a proxy we can cut
        const proxy = new TcpProxy(options.serverPort!);
        const port = await proxy.start();
        const flaky = await options.create(options.viaPort!(location, port));
        try {
          const warmup = buildSnapshot({});
          await flaky.write([metadataRecord(warmup, TZ)]);
          const snapshot = buildSnapshot({ kind: 'ended', turns: 2 });
          // Act: the server goes away
          await proxy.down();
          const failure = await flaky.write([metadataRecord(snapshot, TZ)]).then(
            () => undefined,
            (error: unknown) => error,
          );
          // Assess: a retryable storage error, so the queue keeps the record
          expect(failure).toBeInstanceOf(StorageError);
          expect((failure as StorageError).retryable).toBe(true);
          // Act: the server comes back and the redelivery is written
          await proxy.up();
          let outcome;
          for (let attempt = 0; attempt < 20 && !outcome; attempt++) {
            outcome = await flaky.write([metadataRecord(snapshot, TZ)]).catch(async () => {
              await new Promise((r) => setTimeout(r, 250));
              return undefined;
            });
          }
          expect(outcome?.[0]?.applied).toBe(true);
          expect((await backend.read('metadata', snapshot.callId))?.seq).toBe(snapshot.seq);
        } finally {
          await flaky.close();
          await proxy.down();
        }
      });
    }
  });
}
