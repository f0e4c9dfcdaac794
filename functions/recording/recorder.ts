/**
 * The recording domain: what the recording function does with each snapshot kind and with
 * an egress result, independent of SQS, HTTP and the concrete clients (all injected).
 *
 *   started     start a room composite egress (audio-only OGG, layout speaker) at the
 *               snapshot's recording key; failures are retried (bounded) and then recorded
 *   unanswered  discard: stop the egress, wait for its upload to finish, delete the object;
 *               egress_ended deletes it again should the upload land later
 *   ended       stop the egress and collect its result when it ends in time
 *   both finals merge the recording outcome into the stored metadata once the worker's
 *               snapshot is stored (see call-record.ts for why this keeps the result)
 */
import type { EgressInfo } from 'livekit-server-sdk';
import type { Config } from '../config/config.ts';
import { CALL_ID_PATTERN, type Snapshot } from '../contract/snapshot.ts';
import { redactPhone } from '../shared/redact.ts';
import { logger } from '../shared/logger.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { applyRecordingFacts, updateCallRecord, type UpdateOutcome } from './call-record.ts';
import { recordingOutput, RECORDING_LAYOUT, withEgressRetries, type EgressApi, type RecordingObjects } from './egress.ts';
import { NotPersistedYetError, RecordingError } from './errors.ts';
import type { RecordingSettings } from './settings.ts';
import type { RecordingFacts, RecordingStateStore, ResultFact } from './state.ts';
import { egressEnded, isTerminal, recordingStatusOf } from './status.ts';

export type RecorderConfig = Pick<Config, 'callRecording' | 'saveMetadata' | 'timezone' | 's3'>;

export interface RecorderDeps {
  config: RecorderConfig;
  settings: RecordingSettings;
  /** Created on first use, so a missing LIVEKIT_URL only fails the calls that need LiveKit. */
  egress: () => EgressApi;
  state: RecordingStateStore;
  objects: RecordingObjects;
  /** The metadata backend when SAVE_METADATA=true. */
  metadata: () => Promise<StorageBackend | undefined>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type StartOutcome = 'skipped' | 'started' | 'already_started' | 'discarded' | 'failed';

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The file result of an egress: size, duration (ns → ms) and the object key it wrote. */
export function resultOf(info: EgressInfo, atMs: number): ResultFact | undefined {
  const status = recordingStatusOf(info.status);
  if (!status || !isTerminal(status)) return undefined;
  const file = info.fileResults?.[0] ?? (info.result?.case === 'file' ? info.result.value : undefined);
  const result: ResultFact = { status, egressId: info.egressId || undefined, atMs };
  if (info.error) result.error = info.error.slice(0, 2_000);
  if (file) {
    const size = Number(file.size ?? 0n);
    const duration = Number((file.duration ?? 0n) / 1_000_000n);
    if (Number.isFinite(size) && size >= 0) result.sizeBytes = size;
    if (Number.isFinite(duration) && duration >= 0) result.durationMs = duration;
  }
  return result;
}

export class Recorder {
  private readonly deps: RecorderDeps;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(deps: RecorderDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? defaultSleep;
  }

  private get policy() {
    return { attempts: this.deps.settings.egressAttempts, backoffMs: this.deps.settings.egressBackoffMs, sleep: this.sleep };
  }

  /** The configured recordings bucket is where this function may write; the snapshot's is a fallback. */
  private bucketOf(snapshot: Snapshot): string | undefined {
    return this.deps.config.s3.bucket ?? snapshot.recording?.bucket;
  }

  /** Routes a snapshot from the recording queue. */
  async onSnapshot(snapshot: Snapshot): Promise<void> {
    if (!this.deps.config.callRecording || !snapshot.recording) return;
    switch (snapshot.kind) {
      case 'started':
        await this.start(snapshot);
        return;
      case 'unanswered':
        await this.discard(snapshot.callId, { key: snapshot.recording.key, bucket: this.bucketOf(snapshot), reason: snapshot.call.status });
        await this.mergeFinal(snapshot);
        return;
      case 'ended':
        await this.finish(snapshot);
        await this.mergeFinal(snapshot);
        return;
      case 'progress':
        return;
    }
  }

  async start(snapshot: Snapshot): Promise<StartOutcome> {
    const recording = snapshot.recording;
    const bucket = this.bucketOf(snapshot);
    if (!this.deps.config.callRecording || !recording || !bucket) return 'skipped';
    const { callId } = snapshot;
    const facts = await this.deps.state.load(callId);
    if (!facts.call) await this.deps.state.put(callId, 'call', { key: recording.key, bucket, roomName: snapshot.call.roomName, seenAtMs: this.now() });
    if (facts.discard) return 'discarded';
    if (facts.egress) return 'already_started';
    if (facts.result) return 'failed';

    let info: EgressInfo;
    try {
      const egress = this.deps.egress();
      info = await withEgressRetries('start egress', this.policy, () =>
        egress.startRoomCompositeEgress(snapshot.call.roomName, recordingOutput(this.deps.config.s3, bucket, recording.key), {
          layout: RECORDING_LAYOUT,
          audioOnly: true,
        }),
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      logger.error('recording could not be started', { callId, error: message, attempts: this.deps.settings.egressAttempts });
      await this.deps.state.put(callId, 'result', { status: 'failed', error: message.slice(0, 2_000), atMs: this.now() });
      await this.mergeQuietly(callId);
      return 'failed';
    }

    await this.deps.state.put(callId, 'egress', { egressId: info.egressId, key: recording.key, bucket, startedAtMs: this.now() });
    logger.info('recording started', { callId, egressId: info.egressId, agentNumber: redactPhone(snapshot.call.agentNumber) });
    const immediate = resultOf(info, this.now());
    if (immediate) await this.deps.state.put(callId, 'result', immediate);

    // An unanswered snapshot handled while the egress was starting found no egress to stop.
    const after = await this.deps.state.load(callId);
    if (after.discard) {
      logger.info('call was discarded while the recording started; stopping it', { callId, egressId: info.egressId });
      await this.stopAndDelete(callId, info.egressId, bucket, recording.key);
      return 'discarded';
    }
    return 'started';
  }

  /**
   * Makes sure no recording of the call survives: marks it discarded (so a start still in
   * flight undoes itself and egress_ended deletes late uploads), stops the egress, waits for
   * it to end, and deletes the object.
   */
  async discard(callId: string, target: { key?: string; bucket?: string; reason: string }): Promise<void> {
    const facts = await this.deps.state.load(callId);
    const key = target.key ?? facts.egress?.key ?? facts.call?.key;
    const bucket = target.bucket ?? facts.egress?.bucket ?? facts.call?.bucket ?? this.deps.config.s3.bucket;
    if (!key || !bucket) return;
    if (!facts.discard) await this.deps.state.put(callId, 'discard', { key, bucket, reason: target.reason.slice(0, 200), atMs: this.now() });
    const current = facts.egress ? facts : await this.deps.state.load(callId);
    if (current.egress) await this.stopAndDelete(callId, current.egress.egressId, bucket, key);
    else await this.deps.objects.delete(bucket, key);
    logger.info('recording discarded', { callId, reason: target.reason });
  }

  private async stopAndDelete(callId: string, egressId: string, bucket: string, key: string): Promise<void> {
    await this.stop(callId, egressId);
    await this.waitForEnd(callId, egressId);
    await this.deps.objects.delete(bucket, key);
  }

  private async stop(callId: string, egressId: string): Promise<EgressInfo | undefined> {
    try {
      const egress = this.deps.egress();
      return await withEgressRetries('stop egress', this.policy, () => egress.stopEgress(egressId));
    } catch (error) {
      // Already ended (failed precondition / not found) or unreachable: either way we go on to delete.
      logger.warn('recording could not be stopped', { callId, egressId, error: (error as Error).message });
      return undefined;
    }
  }

  /** Polls the egress until it has ended (its upload is done) or the discard wait is over. */
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
      if (!info || egressEnded(info.status)) return info;
      if (this.now() >= deadline) {
        logger.warn('recording still running after the wait; its end will be handled by egress_ended', { callId, egressId });
        return undefined;
      }
      await this.sleep(this.deps.settings.discardPollMs);
    }
  }

  /** The call ended normally: stop the egress now and keep its result if it ends in time. */
  private async finish(snapshot: Snapshot): Promise<void> {
    const facts = await this.deps.state.load(snapshot.callId);
    if (!facts.egress || facts.result || facts.discard) return;
    await this.stop(snapshot.callId, facts.egress.egressId);
    const info = await this.waitForEnd(snapshot.callId, facts.egress.egressId);
    const result = info ? resultOf(info, this.now()) : undefined;
    if (result) await this.deps.state.put(snapshot.callId, 'result', result);
  }

  /**
   * Merges the recording facts into the stored final metadata. The worker's final snapshot
   * must be stored first (the persist function writes it from the other queue), otherwise
   * this throws NotPersistedYetError and the message is tried again.
   */
  private async mergeFinal(snapshot: Snapshot): Promise<void> {
    if (!this.deps.config.saveMetadata) return;
    const backend = await this.deps.metadata();
    if (!backend) return;
    const stored = await backend.read('metadata', snapshot.callId);
    if (!stored || stored.seq < snapshot.seq) {
      throw new NotPersistedYetError(`final snapshot of ${snapshot.callId} is not stored yet`);
    }
    await this.merge(snapshot.callId, backend);
  }

  /** Applies the current facts to the stored metadata (no-op when nothing changes). */
  async merge(callId: string, backend?: StorageBackend, extra?: { minSeq?: number; finalize?: (s: Snapshot) => Snapshot }): Promise<UpdateOutcome | undefined> {
    if (!this.deps.config.saveMetadata) return undefined;
    const target = backend ?? (await this.deps.metadata());
    if (!target) return undefined;
    const facts: RecordingFacts = this.deps.config.callRecording ? await this.deps.state.load(callId) : {};
    const known = facts.egress ?? facts.discard ?? facts.call;
    return updateCallRecord(
      target,
      callId,
      (snapshot) => applyRecordingFacts(extra?.finalize ? extra.finalize(snapshot) : snapshot, facts),
      {
        timezone: this.deps.config.timezone,
        minSeq: extra?.minSeq,
        hint: { key: known?.key, bucket: known?.bucket, recordingTimezone: this.deps.config.callRecording ? this.deps.config.timezone : undefined },
      },
    );
  }

  private async mergeQuietly(callId: string): Promise<void> {
    try {
      await this.merge(callId);
    } catch (error) {
      // The final merge will record it; a failed intermediate update changes nothing durable.
      logger.warn('recording outcome not merged into metadata yet', { callId, error: (error as Error).message });
    }
  }

  /** egress_ended (webhook): record the outcome, delete a discarded call's late upload, merge. */
  async onEgressEnded(info: EgressInfo): Promise<'recorded' | 'ignored'> {
    const callId = info.roomId;
    if (!this.deps.config.callRecording || !callId || !CALL_ID_PATTERN.test(callId)) return 'ignored';
    const result = resultOf(info, this.now());
    if (!result) return 'ignored';
    const facts = await this.deps.state.load(callId);
    if (!facts.call && !facts.egress && !facts.discard) return 'ignored';
    if (facts.egress && facts.egress.egressId !== info.egressId) return 'ignored';
    await this.deps.state.put(callId, 'result', result);
    if (facts.discard) {
      await this.deps.objects.delete(facts.discard.bucket, facts.discard.key);
      logger.info('late recording upload of a discarded call deleted', { callId, egressId: info.egressId });
    }
    logger.info('recording ended', { callId, egressId: info.egressId, status: result.status, sizeBytes: result.sizeBytes });
    await this.merge(callId);
    return 'recorded';
  }
}

export function isRetryable(error: unknown): boolean {
  if (error instanceof RecordingError) return error.retryable;
  return typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === true;
}
