/**
 * The record-model failures of the first version, each as a scenario through the real persist
 * step (functions/wiring.ts) on real servers: PostgreSQL and a local folder. The recording
 * scenarios (discard, restore, lag) are in record-recording-scenarios.test.ts; the killed
 * worker's call closed by the sweeper in sweeper-e2e.test.ts; re-dispatch end to end in
 * worker-e2e.test.ts.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { MESSAGE_VERSION, type CallFacts, type FactMessage } from '../../functions/contract/facts.ts';
import { WORKER_LOST } from '../../functions/contract/vocabulary.ts';
import { recordingKey } from '../../functions/domain/render.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { pipelineFor, type Pipeline } from '../../functions/wiring.ts';
import { requireServer } from '../support/servers.ts';

const START = Date.UTC(2026, 10, 24, 0, 48, 38, 120);

function worker(callId: string, job: string, seq: number, facts: CallFacts, kind: FactMessage['kind'] = 'progress'): FactMessage {
  return { v: MESSAGE_VERSION, kind, callId, writer: `job:${job}`, seq, cumulative: true, sentAtMs: START + seq * 1_000, facts: { roomName: 'support-line', startedAtMs: START, direction: { value: 'inbound', atMs: START }, ...facts } };
}

function fact(callId: string, writer: string, kind: FactMessage['kind'], sentAtMs: number, facts: CallFacts): FactMessage {
  return { v: MESSAGE_VERSION, kind, callId, writer, seq: 1, cumulative: false, sentAtMs, facts };
}

const items = (prefix: string, from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    id: `${prefix}${from + i}`,
    role: (from + i) % 2 === 0 ? ('user' as const) : ('assistant' as const),
    content: `${prefix} line ${from + i}`,
    interrupted: false,
    timestampMs: START + 2_000 + (from + i) * 1_000,
  }));

const LOCATIONS = {
  postgres: async () => requireServer('postgres'),
  'local folder': async () => mkdtemp(join(tmpdir(), 'calldata-scenarios-')),
};

for (const [name, location] of Object.entries(LOCATIONS)) {
  describe(`record scenarios on ${name}`, () => {
    let pipeline: Pipeline;
    let where: string;

    beforeAll(async () => {
      where = await location();
      pipeline = pipelineFor(
        loadConfig({ SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'true', METADATA_LOCATION: where, TRANSCRIPTION_LOCATION: where, TIMEZONE: 'Asia/Kolkata' }),
      );
    });
    afterAll(async () => {
      await closeAllBackends();
      if (!where.includes('://')) await rm(where, { recursive: true, force: true });
    });

    async function stored(callId: string) {
      const backend = await pipeline.primary();
      const record = await backend?.read(callId);
      if (!record) throw new Error(`no stored record of ${callId}`);
      return record;
    }

    it('1. a re-dispatched job adds to the transcript: nothing said before the kill is lost', async () => {
      // Prepare: the first job heard three lines, then died; the second job starts empty
      const callId = `RM_redispatch${randomUUID().slice(0, 8)}`;
      const first = [1, 2, 3].map((seq) => worker(callId, 'AJ_first', seq, { answeredAtMs: START + 500, conversation: items('a', 0, seq) }, seq === 1 ? 'started' : 'progress'));
      const second = [
        worker(callId, 'AJ_second', 1, { answeredAtMs: START + 40_000, conversation: [] }, 'started'),
        worker(callId, 'AJ_second', 2, { answeredAtMs: START + 40_000, conversation: items('b', 0, 2) }),
        worker(
          callId,
          'AJ_second',
          3,
          {
            answeredAtMs: START + 40_000,
            conversation: items('b', 0, 2),
            ended: { atMs: START + 90_000, source: 'worker', reason: 'caller hung up' },
            outcome: { source: 'worker', atMs: START + 90_000, status: 'completed' },
          },
          'ended',
        ),
      ];
      // Act
      for (const message of [...first, ...second]) await pipeline.persist([message]);
      // Assess
      const record = await stored(callId);
      const lines = record.documents.transcription?.conversation.map((i) => i.content);
      expect(lines).toEqual(['a line 0', 'b line 0', 'a line 1', 'b line 1', 'a line 2']);
      expect(record.documents.metadata).toMatchObject({ answered: true, status: 'completed', end_reason_detail: 'caller hung up' });
      // The earliest answer stays the answer.
      expect(record.state.answeredAtMs).toBe(START + 500);
    });

    it("3. a call closed by room_finished ends when the caller hung up, not when the room closed", async () => {
      // Prepare: the worker died mid-call; LiveKit reports the SIP participant leaving, then the room 25 s later
      const callId = `RM_roomclose${randomUUID().slice(0, 8)}`;
      const hangUpAt = START + 18_000;
      // Act: the webhook's facts arrive in the worse order (room first)
      await pipeline.persist([worker(callId, 'AJ_dead', 1, { answeredAtMs: START + 500, conversation: items('a', 0, 2) }, 'started')]);
      await pipeline.persist([
        fact(callId, 'webhook:EV_room', 'webhook', hangUpAt + 25_000, {
          roomName: 'support-line',
          startedAtMs: START,
          ended: { atMs: hangUpAt + 25_000, source: 'room_finished' },
          outcome: { source: 'webhook', atMs: hangUpAt + 25_000, reason: WORKER_LOST.webhook },
        }),
      ]);
      await pipeline.persist([fact(callId, 'webhook:EV_left', 'webhook', hangUpAt, { ended: { atMs: hangUpAt, source: 'participant_left', reason: 'sip participant left' } })]);
      // Assess
      const metadata = (await stored(callId)).documents.metadata;
      expect(metadata?.duration).toBe(18);
      expect(metadata?.end_time).toBe('2026-11-24T06:18:56.120+05:30');
      expect(metadata).toMatchObject({ status: 'completed', answered: true, end_reason: 'worker_lost', end_reason_detail: WORKER_LOST.webhook });
    });

    it('6. no late or clock-skewed message reopens a closed call, and the webhook never wins over the worker', async () => {
      // Prepare: the worker's final word, the webhook's inference, a progress message sent in the room's last second
      const callId = `RM_order${randomUUID().slice(0, 8)}`;
      const final = worker(
        callId,
        'AJ_w',
        5,
        {
          answeredAtMs: START + 500,
          conversation: items('a', 0, 4),
          ended: { atMs: START + 60_000, source: 'worker', reason: 'agent ended the call' },
          outcome: { source: 'worker', atMs: START + 60_000, status: 'completed' },
        },
        'ended',
      );
      const lateProgress = { ...worker(callId, 'AJ_w', 4, { answeredAtMs: START + 500, conversation: items('a', 0, 3) }), sentAtMs: START + 10 * 60_000 };
      const roomFinished = fact(callId, 'webhook:EV_rf', 'webhook', START + 85_000, {
        ended: { atMs: START + 85_000, source: 'room_finished' },
        outcome: { source: 'webhook', atMs: START + 85_000, reason: WORKER_LOST.webhook },
      });
      // Act: the webhook first, then the final, then the delayed progress (from a clock running ten minutes ahead)
      await pipeline.persist([worker(callId, 'AJ_w', 1, { answeredAtMs: START + 500 }, 'started')]);
      await pipeline.persist([roomFinished]);
      await pipeline.persist([final]);
      await pipeline.persist([lateProgress]);
      // Assess
      const record = await stored(callId);
      expect(record.documents.metadata).toMatchObject({ status: 'completed', end_reason_detail: 'agent ended the call', duration: 60 });
      expect(record.documents.transcription?.conversation).toHaveLength(4);
    });

    it('a room no agent ever reported (LiveKit finishes every room) keeps no documents', async () => {
      const callId = `RM_noagent${randomUUID().slice(0, 8)}`;
      await pipeline.persist([
        fact(callId, 'webhook:EV_lonely', 'webhook', START + 5_000, {
          roomName: 'web-room',
          startedAtMs: START,
          ended: { atMs: START + 5_000, source: 'room_finished' },
          outcome: { source: 'webhook', atMs: START + 5_000, reason: WORKER_LOST.webhook },
        }),
      ]);
      const record = await stored(callId);
      expect(record.documents).toEqual({});
      expect(record.state.outcome?.source).toBe('webhook');
    });

    it('7. two calls of one room starting in the same millisecond never share a folder or a file', async () => {
      const tail = randomUUID().replace(/-/g, '').slice(0, 8);
      const ids = [`RM_x${tail}`, `RM_y${tail}`];
      for (const callId of ids) await pipeline.persist([worker(callId, `AJ_${callId}`, 1, { answeredAtMs: START + 1 }, 'started')]);
      const [a, b] = await Promise.all(ids.map((id) => stored(id)));
      if (!a || !b) throw new Error('both calls must be stored');
      expect(a.folder).not.toBe(b.folder);
      expect(a.documents.metadata?.call_id).toBe(ids[0]);
      expect(b.documents.metadata?.call_id).toBe(ids[1]);
      if (!where.includes('://')) {
        const file = (folder: string) => join(where, folder, `call_metadata_${folder.replace('/', '_')}.json`);
        expect(JSON.parse(await readFile(file(a.folder), 'utf8')).call_id).toBe(ids[0]);
        expect(JSON.parse(await readFile(file(b.folder), 'utf8')).call_id).toBe(ids[1]);
      }
    });

    it('8. one folder for everything: the recording command names the folder the documents are stored in', async () => {
      // Prepare: a recording worker (the persist step, not the worker, chooses the folder)
      const callId = `RM_folder${randomUUID().slice(0, 8)}`;
      const started = worker(callId, 'AJ_rec', 1, { recording: { requested: true, bucket: 'recordings' } }, 'started');
      // Act
      const outcomes = await pipeline.persist([started]);
      // Assess: the folder is chosen once, from TIMEZONE, and carried by the stored record
      const record = await stored(callId);
      expect(outcomes.get(callId)?.merged?.folder).toBe(record.folder);
      expect(record.folder).toBe(`support-line/20261124T061838.120_${callId}`);
      expect(recordingKey(record.folder)).toBe(`support-line/20261124T061838.120_${callId}/call_support-line_20261124T061838.120_${callId}.ogg`);
      // No time in the worker's message is formatted: everything travels as epoch milliseconds.
      expect(JSON.stringify(started)).not.toMatch(/\d{4}-\d\d-\d\dT/);
    });
  });
}
