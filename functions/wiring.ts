/**
 * Wiring, in one place: the configuration becomes the backends, the sinks and the steps behind
 * them. Everything is created lazily, once per process (a Lambda container, a worker, the CLI),
 * and a step only loads the drivers and SDK clients it uses.
 *
 * On the embedded default (no queue) the fact sink hands messages to the persist step in-process
 * and the command sink hands recording commands to the recording step in the background.
 */
import type { Config } from './config/config.ts';
import type { FactMessage } from './contract/facts.ts';
import { recordModel } from './domain/model.ts';
import { commandsFor, locationPlan, persistFacts, type CallOutcome, type PersistTarget } from './domain/persist.ts';
import { logger } from './shared/logger.ts';
import type { StorageBackend } from './storage/backend.ts';
import { backendFor } from './storage/select.ts';
import type { CommandSink, FactSink } from './transport/sink.ts';

export interface Pipeline {
  readonly config: Config;
  /** Every location that keeps records; the first is the primary (the one the recording and the sweeper read). */
  targets(): Promise<PersistTarget[]>;
  primary(): Promise<StorageBackend | undefined>;
  factSink(): Promise<FactSink>;
  /** Undefined when recording commands have nowhere to go (no recording queue with a queue). */
  commandSink(): Promise<CommandSink | undefined>;
  /** The persist step: merge a batch, then ask the recording step for what the records call for. */
  persist(messages: readonly FactMessage[]): Promise<Map<string, CallOutcome>>;
}

const pipelines = new WeakMap<Config, Pipeline>();

export function pipelineFor(config: Config): Pipeline {
  let pipeline = pipelines.get(config);
  if (!pipeline) {
    pipeline = createPipeline(config);
    pipelines.set(config, pipeline);
  }
  return pipeline;
}

function once<T>(create: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= create().catch((error: unknown) => {
      value = undefined;
      throw error;
    });
    return value;
  };
}

function createPipeline(config: Config): Pipeline {
  const model = recordModel(config.timezone, { priceTable: config.priceTable });
  const targets = once(async () =>
    Promise.all(
      locationPlan(config).map(async (plan) => ({
        location: plan.location,
        backend: await backendFor(plan.location, { s3: config.s3, documents: plan.documents, model }),
      })),
    ),
  );

  const commandSink = once(async (): Promise<CommandSink | undefined> => {
    if (config.queueUrl) {
      if (!config.recordingQueueUrl) return undefined;
      const { SqsCommandSink } = await import('./transport/sqs-sink.ts');
      return new SqsCommandSink(config.recordingQueueUrl);
    }
    const { EmbeddedCommandSink } = await import('./transport/embedded-sink.ts');
    return new EmbeddedCommandSink(async (commands) => {
      const { recordingStep } = await import('./recording/step.ts');
      await (await recordingStep(pipeline)).handle(commands);
    });
  });

  const pipeline: Pipeline = {
    config,
    targets,
    primary: async () => (await targets())[0]?.backend,
    factSink: once(async () => {
      if (config.queueUrl) {
        const { SqsFactSink } = await import('./transport/sqs-sink.ts');
        return new SqsFactSink({ queueUrl: config.queueUrl, s3: config.s3 });
      }
      const { EmbeddedFactSink } = await import('./transport/embedded-sink.ts');
      return new EmbeddedFactSink(async (messages) => {
        const outcomes = await pipeline.persist(messages);
        const failed = [...outcomes.values()].find((o) => o.error !== undefined);
        if (failed) throw failed.error;
      });
    }),
    commandSink,
    async persist(messages) {
      const outcomes = await persistFacts(messages, await targets());
      // The recording step runs only where CALL_RECORDING is on (the worker's and the stack's setting).
      const commands = config.callRecording ? commandsFor(messages, outcomes, Date.now()) : [];
      if (commands.length > 0) {
        const sink = await commandSink();
        if (!sink) {
          logger.warn('recording commands dropped: CALLDATA_RECORDING_QUEUE_URL is not set', { commands: commands.length });
        } else {
          try {
            await sink.send(commands);
          } catch (error) {
            // The facts are stored; the commands are not sent. Failing the calls' messages makes
            // the queue deliver them again, and the same merge asks for the same commands.
            for (const command of commands) {
              const outcome = outcomes.get(command.callId);
              if (outcome) outcome.error ??= error;
            }
          }
        }
      }
      return outcomes;
    },
  };
  return pipeline;
}
