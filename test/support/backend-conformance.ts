/**
 * The behaviour every storage backend must show, run against the real server by each backend's
 * own test file: `describeBackendConformance({ ... })`.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MESSAGE_VERSION, type FactMessage } from '../../functions/contract/facts.ts';
import type { CallState } from '../../functions/contract/record.ts';
import { mergeAll, sameState, stateOf } from '../../functions/domain/merge.ts';
import { recordModel } from '../../functions/domain/model.ts';
import { deltasOf } from '../../functions/domain/persist.ts';
import { renderDocuments } from '../../functions/domain/render.ts';
import type { BackendOptions, StorageBackend } from '../../functions/storage/backend.ts';
import { StorageError } from '../../functions/storage/errors.ts';
import { deliveryArb, scenarioArb } from './fact-arbitraries.ts';
import { HOSTILE_ROOM_NAMES, longConversation } from './snapshots.ts';
import { TcpProxy } from './tcp-proxy.ts';

export interface ConformanceOptions {
  name: string;
  /** Creates a backend for the location (connects lazily or eagerly, its choice). */
  create: (location: string, options: BackendOptions) => StorageBackend | Promise<StorageBackend>;
  /** The real location, after requireServer succeeded. */
  location: () => Promise<string>;
  /** The same location routed through a loopback port (for the outage test); omit for local folders. */
  viaPort?: (location: string, port: number) => string;
  /** The real server's port, for the proxy. */
  serverPort?: number;
  /** Generated cases of the property test (a few hundred; fewer where the server is slow). */
  propertyRuns?: number;
}

export const TZ = 'Asia/Kolkata';
export const MODEL = recordModel(TZ);
export const BOTH: BackendOptions = { documents: ['metadata', 'transcription'], model: MODEL };

const START = Date.UTC(2026, 10, 23, 19, 18, 38, 120);

/** A worker's cumulative message of a call (seq n holds n turns). */
export function workerMessage(callId: string, seq: number, options: { roomName?: string; final?: boolean; writer?: string; items?: FactMessage['facts']['conversation'] } = {}): FactMessage {
  const items =
    options.items ??
    Array.from({ length: seq * 2 }, (_, i) => ({ id: `${options.writer ?? 'w'}-${i}`, role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content: `line ${i}`, interrupted: false, timestampMs: START + 1_000 + i * 1_000 }));
  return {
    v: MESSAGE_VERSION,
    kind: seq === 1 ? 'started' : options.final ? 'ended' : 'progress',
    callId,
    writer: options.writer ?? 'job:AJ_worker',
    seq,
    cumulative: true,
    sentAtMs: START + seq * 2_000,
    facts: {
      roomName: options.roomName ?? 'sip-room-1',
      startedAtMs: START,
      direction: { value: 'inbound', atMs: START },
      inboundTrunkId: { value: 'ST_inbound123', atMs: START },
      agentNumber: { value: '+14155550100', atMs: START },
      userNumber: { value: '+919876543210', atMs: START },
      answeredAtMs: START + 500,
      ...(options.final ? { ended: { atMs: START + seq * 2_000, source: 'worker' as const, reason: 'caller hung up' }, outcome: { source: 'worker' as const, atMs: START + seq * 2_000, status: 'completed' as const } } : {}),
      conversation: items,
    },
  };
}

export function describeBackendConformance(options: ConformanceOptions): void {
  describe(`${options.name} backend`, () => {
    let backend: StorageBackend;
    let location: string;

    beforeAll(async () => {
      location = await options.location();
      backend = await options.create(location, BOTH);
    });
    afterAll(async () => {
      await backend?.close();
    });

    async function expectStored(callId: string, expected: CallState): Promise<void> {
      const stored = await backend.read(callId);
      expect(stored, `record of ${callId}`).toBeDefined();
      if (!stored) return;
      expect(sameState(stored.state, expected), `stored record equals the merge of all facts:\n${JSON.stringify(stored.state)}\n${JSON.stringify(expected)}`).toBe(true);
      if (stored.folder) expect(stored.documents).toEqual(renderDocuments(expected, stored.folder, BOTH.documents, TZ));
    }

    it('stores the record and its documents, and reads back exactly what was written', async () => {
      // Prepare
      const callId = `RM_${randomUUID().slice(0, 12)}`;
      const message = workerMessage(callId, 3, { final: true });
      // Act
      const [outcome] = await backend.merge(deltasOf([message]));
      // Assess
      expect(outcome?.changed).toBe(true);
      expect(outcome?.location).not.toMatch(/password|secret/i);
      await expectStored(callId, stateOf(message));
      const stored = await backend.read(callId);
      expect(stored?.documents.metadata?.start_time).toMatch(/\+05:30$/);
      expect(stored?.documents.metadata?.status).toBe('completed');
      expect(stored?.documents.transcription?.conversation).toHaveLength(6);
      expect(stored?.folder).toContain(callId);
    });

    it('one writer: each newer message replaces the record; older ones and duplicates change nothing', async () => {
      const callId = `RM_${randomUUID().slice(0, 12)}`;
      const messages = [1, 2, 3, 4].map((seq) => workerMessage(callId, seq, { final: seq === 4 }));
      for (const message of messages) expect((await backend.merge(deltasOf([message])))[0]?.changed).toBe(true);
      // Redelivered and reordered: nothing changes.
      expect((await backend.merge(deltasOf([messages[1] as FactMessage])))[0]?.changed).toBe(false);
      expect((await backend.merge(deltasOf([messages[3] as FactMessage])))[0]?.changed).toBe(false);
      await expectStored(callId, mergeAll(messages.map(stateOf)));
    });

    it('a re-dispatched job adds to the transcript instead of replacing it', async () => {
      const callId = `RM_${randomUUID().slice(0, 12)}`;
      const first = workerMessage(callId, 2, { writer: 'job:AJ_first' });
      const second = workerMessage(callId, 3, { writer: 'job:AJ_second', final: true });
      await backend.merge(deltasOf([first]));
      await backend.merge(deltasOf([second]));
      const stored = await backend.read(callId);
      expect(stored?.documents.transcription?.conversation).toHaveLength(4 + 6);
      await expectStored(callId, mergeAll([first, second].map(stateOf)));
    });

    it('property: any interleaving, duplication and batching of five parties stores the merge of all facts', async () => {
      await fc.assert(
        fc.asyncProperty(
          scenarioArb(`RM_${randomUUID().slice(0, 8)}`).chain((scenario) => deliveryArb(scenario).map((batches) => ({ scenario, batches }))),
          fc.boolean(),
          async ({ scenario, batches }, concurrent) => {
            // Prepare: a fresh call id per case, so cases never see each other's rows
            const callId = `RM_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
            const rename = (m: FactMessage): FactMessage => ({ ...m, callId });
            const expected = mergeAll(scenario.messages.map(rename).map(stateOf));
            // Act: batches one after another, or all at once (concurrent writers race on one row)
            if (concurrent) await Promise.all(batches.map((batch) => backend.merge(deltasOf(batch.map(rename)))));
            else for (const batch of batches) await backend.merge(deltasOf(batch.map(rename)));
            // Assess
            await expectStored(callId, expected);
          },
        ),
        { numRuns: options.propertyRuns ?? 200 },
      );
    });

    it('stores hostile room names verbatim and keeps each call in its own folder', async () => {
      const folders = new Set<string>();
      for (const roomName of HOSTILE_ROOM_NAMES) {
        const callId = `RM_${randomUUID().slice(0, 12)}`;
        const message = workerMessage(callId, 1, { roomName });
        await backend.merge(deltasOf([message]));
        const stored = await backend.read(callId);
        expect(stored?.documents.metadata?.room_name).toBe(roomName);
        expect(stored?.state.roomName).toBe(roomName);
        expect(stored?.folder.startsWith('-')).toBe(false);
        folders.add(stored?.folder ?? '');
      }
      expect(folders.size).toBe(HOSTILE_ROOM_NAMES.length);
    });

    it('two calls in one room starting in the same millisecond get their own folders and documents', async () => {
      // Call ids that share their last eight letters and digits (the old folder suffix).
      const tail = randomUUID().replace(/-/g, '').slice(0, 8);
      const ids = [`RM_A${tail}`, `RM_B${tail}`];
      for (const callId of ids) await backend.merge(deltasOf([workerMessage(callId, 2)]));
      const [a, b] = await Promise.all(ids.map((id) => backend.read(id)));
      expect(a?.folder).not.toBe(b?.folder);
      expect(a?.documents.metadata?.call_id).toBe(ids[0]);
      expect(b?.documents.metadata?.call_id).toBe(ids[1]);
    });

    it('round-trips a 2 MB transcript', async () => {
      const callId = `RM_${randomUUID().slice(0, 12)}`;
      const items = longConversation(4 * 60 * 60 * 1000, 2 * 1024 * 1024).map((item, i) => ({ ...item, id: `long-${i}` }));
      const message = workerMessage(callId, 2, { final: true, items });
      await backend.merge(deltasOf([message]));
      const stored = await backend.read(callId);
      expect(stored?.state.conversation).toHaveLength(items.length);
      expect(JSON.stringify(stored?.documents.transcription).length).toBeGreaterThan(2 * 1024 * 1024);
    });

    it('lists open calls whose last fact is older than the bound, oldest first, and never closed ones', async () => {
      const open = `RM_open${randomUUID().slice(0, 8)}`;
      const closed = `RM_closed${randomUUID().slice(0, 8)}`;
      await backend.merge(deltasOf([workerMessage(open, 1), workerMessage(closed, 2, { final: true })]));
      const listed = await backend.openCalls(START + 60_000, 10_000);
      const ids = listed.map((c) => c.callId);
      expect(ids).toContain(open);
      expect(ids).not.toContain(closed);
      expect(listed.find((c) => c.callId === open)?.lastFactAtMs).toBe(START + 2_000);
      expect(await backend.openCalls(START, 10_000)).not.toContainEqual(expect.objectContaining({ callId: open }));
    });

    it('a reader of the stored row never sees facts of another call', async () => {
      const callId = `RM_${randomUUID().slice(0, 12)}`;
      expect(await backend.read(callId)).toBeUndefined();
    });

    if (options.viaPort && options.serverPort) {
      it('fails with a retryable error while the server is unreachable, and stores the record once it is back', async () => {
        // Prepare: a backend that reaches the real server only through a proxy we can stop
        const proxy = new TcpProxy(options.serverPort as number);
        const port = await proxy.start();
        const proxied = await options.create((options.viaPort as (l: string, p: number) => string)(location, port), BOTH);
        const callId = `RM_${randomUUID().slice(0, 12)}`;
        const message = workerMessage(callId, 2);
        try {
          await proxy.down();
          // Act + Assess: down
          const error = await proxied.merge(deltasOf([message])).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(StorageError);
          expect((error as StorageError).retryable).toBe(true);
          // Back
          await proxy.up();
          let stored = false;
          for (let attempt = 0; attempt < 40 && !stored; attempt++) {
            try {
              await proxied.merge(deltasOf([message]));
              stored = true;
            } catch {
              await new Promise((resolve) => setTimeout(resolve, 250));
            }
          }
          expect(stored).toBe(true);
          await expectStored(callId, stateOf(message));
        } finally {
          await proxied.close();
          await proxy.down();
        }
      });
    }
  });
}
