/**
 * The recording step: recording commands in, egress requests and object moves out, and what
 * happened reported as facts through the pipeline's fact sink. The SQS Lambda (handler.ts) and
 * the embedded default (functions/wiring.ts, in the background) both run commands through it.
 *
 * Commands of one call run one after another in the order they were issued; different calls
 * run concurrently. A command that fails for a reason that may pass (S3, the fact sink) is
 * reported to the caller, which runs it again; everything else is logged and dropped.
 */
import type { RecordingCommand } from '../contract/facts.ts';
import { RECORDING_ACTIONS } from '../contract/vocabulary.ts';
import { logger } from '../shared/logger.ts';
import type { Pipeline } from '../wiring.ts';
import { createEgressApi, type EgressApi } from './egress.ts';
import { isRetryable } from '../errors.ts';
import { S3RecordingObjects } from './objects.ts';
import { Recorder, type CommandResult } from './recorder.ts';
import { RECORDING_STATE_PREFIX, recordingSettings, type RecordingSettings } from './settings.ts';
import { S3RecordingStateStore } from './state.ts';

export interface RecordingStep {
  /** Runs the commands; throws (retryable) when one of them should be run again. */
  handle(commands: RecordingCommand[]): Promise<void>;
  /** Runs one command; throws what it failed with. */
  run(command: RecordingCommand): Promise<CommandResult>;
}

export interface RecordingStepOptions {
  /** Defaults to the pipeline configuration's LiveKit settings and recording timing. */
  settings?: RecordingSettings;
  /** Defaults to livekit-server-sdk's EgressClient for `settings`. */
  egress?: () => EgressApi;
}

/** The production recorder of a pipeline: LiveKit's egress API, the bucket, the fact sink. */
export function createRecorder(pipeline: Pipeline, options: RecordingStepOptions = {}): Recorder {
  const { config } = pipeline;
  const settings = options.settings ?? recordingSettings(config);
  let egress: EgressApi | undefined;
  return new Recorder({
    callRecording: config.callRecording,
    s3: config.s3,
    settings,
    egress: options.egress ?? (() => (egress ??= createEgressApi(settings))),
    state: new S3RecordingStateStore(config.s3, RECORDING_STATE_PREFIX),
    objects: new S3RecordingObjects(config.s3),
    report: async (message) => {
      await (await pipeline.factSink()).send(message);
    },
  });
}

const issueOrder = (a: RecordingCommand, b: RecordingCommand) => a.issuedAtMs - b.issuedAtMs || RECORDING_ACTIONS.indexOf(a.action) - RECORDING_ACTIONS.indexOf(b.action);

/** Commands per call, each call's in issue order (stable). */
export function byCall<T>(items: readonly T[], commandOf: (item: T) => RecordingCommand): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const callId = commandOf(item).callId;
    groups.set(callId, [...(groups.get(callId) ?? []), item]);
  }
  return [...groups.values()].map((group) => [...group].sort((a, b) => issueOrder(commandOf(a), commandOf(b))));
}

/** Runs a command and logs its outcome; returns the error it failed with. */
export async function runLogged(recorder: Pick<Recorder, 'run'>, command: RecordingCommand): Promise<unknown> {
  const fields = { callId: command.callId, action: command.action };
  try {
    const result = await recorder.run(command);
    logger.info('recording command done', { ...fields, result });
    return undefined;
  } catch (error) {
    const retryable = isRetryable(error);
    if (retryable) logger.warn('recording command failed; it will be tried again', { ...fields, error: (error as Error).message });
    else logger.error('recording command failed and will not be tried again', { ...fields, error: error as Error });
    return error;
  }
}

function stepOf(recorder: Recorder): RecordingStep {
  return {
    run: (command) => recorder.run(command),
    async handle(commands) {
      const errors = await Promise.all(
        byCall(commands, (c) => c).map(async (group) => {
          const failed: unknown[] = [];
          for (const command of group) {
            const error = await runLogged(recorder, command);
            if (error !== undefined) failed.push(error);
          }
          return failed;
        }),
      );
      const retry = errors.flat().find(isRetryable);
      if (retry !== undefined) throw retry;
    },
  };
}

const steps = new WeakMap<Pipeline, Promise<RecordingStep>>();

/**
 * The recording step of a pipeline, created once per pipeline (per process) with the
 * environment's settings; with `options` a fresh one (tests, tools).
 */
export function recordingStep(pipeline: Pipeline, options?: RecordingStepOptions): Promise<RecordingStep> {
  if (options) return Promise.resolve().then(() => stepOf(createRecorder(pipeline, options)));
  let step = steps.get(pipeline);
  if (!step) {
    step = Promise.resolve().then(() => stepOf(createRecorder(pipeline)));
    steps.set(pipeline, step);
    step.catch(() => steps.delete(pipeline));
  }
  return step;
}
