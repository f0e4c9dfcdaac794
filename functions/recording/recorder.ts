/**
 * The recording function: executes the commands the persist step issues (see
 * functions/domain/recording-plan.ts for when) and reports what happened as facts. It never
 * reads or writes a call record: the facts go through the pipeline's fact sink and the
 * persist step merges them like any other party's.
 *
 *   start    start a room composite egress (audio-only OGG, layout speaker) at the command's
 *            key; report the egress (or, after bounded retries, the start error)
 *   finish   stop the egress and report its result when it ends within the wait
 *   discard  stop the egress, wait (bounded) for its upload, move the file from its key to
 *            `_calldata-discarded/<key>`, report `discardedAtMs`. A file that lands after the
 *            wait is moved by the discard the plan issues when its egress_ended arrives
 *   restore  move the file back to its key, report `restoredAtMs`
 *
 * Commands of one call may run at the same time (two Lambdas, two background tasks); the
 * marker objects (state.ts, meanings in functions/domain/recorder.ts) make that safe:
 *
 *   - start vs discard: the start writes its egress marker and then looks for a discard
 *     marker; the discard writes its marker and then looks for an egress marker. At least one
 *     of them sees the other and the egress is stopped and its file moved out.
 *   - discard vs restore: the restore writes its marker first. A discard looks for it before
 *     copying, before deleting the key, and after deleting (then it copies the file back), so
 *     the last thing that happens to the key of an answered call is always a copy back.
 *     A restore deletes the quarantined copy only when no discard's move is in flight.
 *   - two starts: a conditional claim; the second neither starts an egress nor waits.
 */
import type { EgressInfo } from 'livekit-server-sdk';
import type { S3Settings } from '../config/config.ts';
import type { EgressFact, FactMessage, RecordingCommand } from '../contract/facts.ts';
import {
  egressFactOf,
  egressIdsFor,
  egressOver,
  egressReport,
  egressStatusOf,
  mustStayDiscarded,
  quarantineKey,
  recorderFact,
  startDecision,
  startLeaseMs,
} from '../domain/recorder.ts';
import { logger } from '../shared/logger.ts';
import { EgressRejectedError } from './errors.ts';
import { recordingOutput, RECORDING_LAYOUT, withEgressRetries, type EgressApi } from './egress.ts';
import type { RecordingObjects } from './objects.ts';
import type { RecordingSettings } from './settings.ts';
import type { EgressMarker, RecordingStateStore } from './state.ts';

export interface RecorderDeps {
  /** The function's own CALL_RECORDING: without it no egress is started (finish, discard and restore still act). */
  callRecording: boolean;
  /** The recordings bucket and how the egress uploads to it; this bucket wins over the command's. */
  s3: S3Settings;
  settings: RecordingSettings;
  /** Created on first use, so a missing LIVEKIT_URL only fails the commands that need LiveKit. */
  egress: () => EgressApi;
  state: RecordingStateStore;
  objects: RecordingObjects;
  /** Sends one fact message (the pipeline's fact sink). Throws when it was not accepted. */
  report: (message: FactMessage) => Promise<void>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  uuid?: () => string;
}

export type CommandResult =
  /** start */
  | 'started'
  | 'reported'
  | 'in_flight'
  | 'start_failed'
  | 'not_recording'
  /** finish */
  | 'finished'
  | 'still_running'
  /** discard (also a start that found the call discarded) */
  | 'discarded'
  | 'answered'
  /** restore */
  | 'restored';

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function unique(values: readonly (string | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => typeof v === 'string' && v.length > 0))];
}

export class Recorder {
  private readonly deps: RecorderDeps;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly uuid: () => string;

  constructor(deps: RecorderDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? defaultSleep;
    this.uuid = deps.uuid ?? (() => crypto.randomUUID());
  }

  private get policy() {
    return { attempts: this.deps.settings.egressAttempts, backoffMs: this.deps.settings.egressBackoffMs, sleep: this.sleep };
  }

  private bucketOf(command: RecordingCommand): string | undefined {
    return this.deps.s3.bucket ?? command.bucket;
  }

  async run(command: RecordingCommand): Promise<CommandResult> {
    switch (command.action) {
      case 'start':
        return this.start(command);
      case 'finish':
        return this.finish(command);
      case 'discard':
        return this.discard(command);
      case 'restore':
        return this.restore(command);
    }
  }

  private async report(message: FactMessage): Promise<void> {
    await this.deps.report(message);
  }

  /** The egress as the start reports it (the same report however often it is sent). */
  private startedFact(egress: EgressMarker): EgressFact {
    const status = egressStatusOf(egress.status) ?? 'starting';
    return { status, atMs: egress.startedAtMs, key: egress.key, bucket: egress.bucket };
  }

  async start(command: RecordingCommand): Promise<CommandResult> {
    const bucket = this.bucketOf(command);
    const { callId } = command;
    if (!this.deps.callRecording || !bucket) {
      logger.warn('recording start ignored: CALL_RECORDING is off or no bucket is set for the recording function', { callId });
      return 'not_recording';
    }
    const markers = await this.deps.state.load(callId);
    const decision = startDecision(markers);
    if (decision === 'report' && markers.egress) {
      // Started before (the report, or the command's acknowledgement, may have been lost).
      const egress = markers.egress;
      await this.report(egressReport(callId, 'start', egress.egressId, this.startedFact(egress)));
      if (mustStayDiscarded(markers)) return this.discardNow(callId, [egress.egressId], egress.bucket, [egress.key, command.key]);
      return 'reported';
    }
    if (decision === 'discarded') {
      logger.info('recording not started: the call was already discarded', { callId });
      return 'discarded';
    }
    const token = this.uuid();
    if (!(await this.deps.state.claimStart(callId, { token, atMs: this.now() }, startLeaseMs(this.deps.settings)))) {
      logger.info('recording start already in progress elsewhere', { callId });
      return 'in_flight';
    }

    let info: EgressInfo;
    try {
      info = await withEgressRetries('start egress', this.policy, async () => {
        const started = await this.deps.egress().startRoomCompositeEgress(command.roomName, recordingOutput(this.deps.s3, bucket, command.key), {
          layout: RECORDING_LAYOUT,
          audioOnly: true,
        });
        if (!started.egressId) throw new EgressRejectedError('LiveKit accepted the egress without an egress id', undefined);
        return started;
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      logger.error('recording could not be started', { callId, error: message, attempts: this.deps.settings.egressAttempts });
      const atMs = this.now();
      await this.report(recorderFact(callId, 'start', this.uuid(), atMs, { recording: { startError: { atMs, error: message.slice(0, 2_000) } } }));
      await this.deps.state.releaseStart(callId, token);
      return 'start_failed';
    }

    const egress: EgressMarker = { egressId: info.egressId, key: command.key, bucket, startedAtMs: this.now(), status: egressStatusOf(info.status) ?? 'starting' };
    await this.deps.state.putEgress(callId, egress);
    // Written before looking: a discard that did not see this egress has written its marker by now.
    const after = await this.deps.state.load(callId);
    await this.report(egressReport(callId, 'start', egress.egressId, this.startedFact(egress)));
    logger.info('recording started', { callId, egressId: egress.egressId });
    if (mustStayDiscarded(after)) {
      logger.info('the call was discarded while its recording started; removing it', { callId, egressId: egress.egressId });
      return this.discardNow(callId, [egress.egressId], bucket, [command.key]);
    }
    return 'started';
  }

  /** The answered call ended: stop the egress and report its result if it ends within the wait. */
  async finish(command: RecordingCommand): Promise<CommandResult> {
    const { callId } = command;
    const bucket = this.bucketOf(command);
    const markers = await this.deps.state.load(callId);
    const ids = egressIdsFor(command.egressIds, markers);
    const results = await Promise.all(
      ids.map(async (egressId) => {
        const stopped = await this.stop(callId, egressId);
        const info = stopped && egressOver(egressStatusOf(stopped.status)) ? stopped : await this.waitForEnd(callId, egressId);
        const fact = info ? egressFactOf(info, { atMs: this.now(), key: command.key, bucket }) : undefined;
        if (!fact || !egressOver(fact.status)) {
          logger.info('recording still ending after the wait; egress_ended will report its result', { callId, egressId });
          return false;
        }
        await this.report(egressReport(callId, 'finish', egressId, fact));
        return true;
      }),
    );
    return results.every(Boolean) ? 'finished' : 'still_running';
  }

  /** The call is over and was never answered: no recording of it may stay at its key. */
  async discard(command: RecordingCommand): Promise<CommandResult> {
    const bucket = this.bucketOf(command);
    const { callId } = command;
    if (!bucket) return 'not_recording';
    let markers = await this.deps.state.load(callId);
    if (markers.restore) {
      // An answer was seen: this discard is stale. Make sure nothing an earlier one did remains.
      for (const key of unique([command.key, markers.egress?.key])) await this.ensureAtKey(bucket, key);
      logger.info('discard skipped: the call was answered', { callId });
      return 'answered';
    }
    if (!markers.discard) {
      await this.deps.state.putDiscard(callId, { key: command.key, bucket, atMs: this.now() });
      // Written before looking: a start that did not see this discard has written its egress by now.
      if (!markers.egress) markers = await this.deps.state.load(callId);
    }
    return this.discardNow(callId, egressIdsFor(command.egressIds, markers), bucket, [command.key, markers.egress?.key]);
  }

  private async discardNow(callId: string, egressIds: readonly string[], bucket: string, keys: readonly (string | undefined)[]): Promise<CommandResult> {
    await Promise.all(
      egressIds.map(async (egressId) => {
        await this.stop(callId, egressId);
        await this.waitForEnd(callId, egressId);
      }),
    );
    for (const key of unique(keys)) {
      if ((await this.moveOut(callId, bucket, key)) === 'answered') {
        logger.info('discard undone: the call was answered meanwhile', { callId });
        return 'answered';
      }
    }
    const atMs = this.now();
    await this.report(recorderFact(callId, 'discard', this.uuid(), atMs, { recording: { discardedAtMs: atMs } }));
    logger.info('recording discarded', { callId });
    return 'discarded';
  }

  /** Moves the file to quarantine unless an answer is seen; see the file comment for the order. */
  private async moveOut(callId: string, bucket: string, key: string): Promise<'moved' | 'absent' | 'answered'> {
    const token = this.uuid();
    const quarantine = quarantineKey(key);
    const { state, objects } = this.deps;
    await state.beginMove(callId, token);
    try {
      if (await state.hasRestore(callId)) {
        await this.ensureAtKey(bucket, key);
        return 'answered';
      }
      if (!(await objects.copy(bucket, key, quarantine))) return 'absent';
      if (await state.hasRestore(callId)) return 'answered';
      await objects.delete(bucket, key);
      if (await state.hasRestore(callId)) {
        await objects.copy(bucket, quarantine, key);
        return 'answered';
      }
      return 'moved';
    } finally {
      await state.endMove(callId, token);
    }
  }

  /** An answer arrived after the discard: the file goes back to its key. */
  async restore(command: RecordingCommand): Promise<CommandResult> {
    const bucket = this.bucketOf(command);
    const { callId } = command;
    if (!bucket) return 'not_recording';
    await this.deps.state.putRestore(callId, { atMs: this.now() });
    const markers = await this.deps.state.load(callId);
    for (const key of unique([command.key, markers.egress?.key, markers.discard?.key])) {
      const where = await this.ensureAtKey(bucket, key);
      // The quarantined copy goes only while no discard's move is in flight (it may still need it).
      if ((await this.deps.state.movesInFlight(callId)) === 0) await this.deps.objects.delete(bucket, quarantineKey(key));
      logger.info('recording restored', { callId, result: where });
    }
    const atMs = this.now();
    await this.report(recorderFact(callId, 'restore', this.uuid(), atMs, { recording: { restoredAtMs: atMs } }));
    return 'restored';
  }

  /** The file at its key: already there, copied back from quarantine, or nowhere (not uploaded yet). */
  private async ensureAtKey(bucket: string, key: string): Promise<'at_key' | 'copied_back' | 'nowhere'> {
    const { objects } = this.deps;
    if (await objects.exists(bucket, key)) return 'at_key';
    if (await objects.copy(bucket, quarantineKey(key), key)) return 'copied_back';
    return (await objects.exists(bucket, key)) ? 'at_key' : 'nowhere';
  }

  private async stop(callId: string, egressId: string): Promise<EgressInfo | undefined> {
    try {
      const egress = this.deps.egress();
      return await withEgressRetries('stop egress', this.policy, () => egress.stopEgress(egressId));
    } catch (error) {
      // Already ended (failed precondition / not found) or unreachable: the wait below tells.
      logger.info('recording could not be stopped', { callId, egressId, error: (error as Error).message });
      return undefined;
    }
  }

  /** Polls the egress until it has ended (its upload is done) or the wait is over. */
  private async waitForEnd(callId: string, egressId: string): Promise<EgressInfo | undefined> {
    const deadline = this.now() + this.deps.settings.discardWaitMs;
    let egress: EgressApi;
    try {
      egress = this.deps.egress();
    } catch {
      return undefined;
    }
    for (;;) {
      let info: EgressInfo | undefined;
      try {
        [info] = await egress.listEgress({ egressId });
      } catch (error) {
        logger.warn('recording status could not be read', { callId, egressId, error: (error as Error).message });
        return undefined;
      }
      if (!info || egressOver(egressStatusOf(info.status))) return info;
      if (this.now() >= deadline) {
        logger.warn('recording still running after the wait', { callId, egressId });
        return undefined;
      }
      await this.sleep(this.deps.settings.discardPollMs);
    }
  }
}
