/**
 * Recording Lambda: an SQS batch of recording commands (functions/domain/recording-plan.ts
 * issues them after each persisted batch) → the recording step (step.ts). Thin on purpose.
 *
 * - Commands of one call run in issue order; different calls concurrently.
 * - A malformed body is dropped (retrying cannot fix it); version-1 snapshots queued before
 *   the upgrade are read as the commands they meant (decodeRecordingCommand).
 * - A command that failed for a reason that may pass (S3, the fact sink) goes back to the
 *   queue; egress failures are retried inside and reported as facts, never returned.
 */
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { getConfig } from '../config/config.ts';
import { ContractError } from '../contract/errors.ts';
import { decodeRecordingCommand, type RecordingCommand } from '../contract/facts.ts';
import { lambdaHandler } from '../shared/lambda.ts';
import { logger } from '../shared/logger.ts';
import { partialBatchResponse } from '../shared/sqs-batch.ts';
import { pipelineFor } from '../wiring.ts';
import { isRetryable } from '../errors.ts';
import { byCall, recordingStep, runLogged, type RecordingStep } from './step.ts';

interface Decoded {
  record: SQSRecord;
  command: RecordingCommand;
}

export async function recordingBatch(event: SQSEvent, context: Context, step?: Pick<RecordingStep, 'run'>): Promise<SQSBatchResponse> {
  const failures = new Map<string, unknown>();
  const decoded: Decoded[] = [];
  for (const record of event.Records) {
    try {
      const command = decodeRecordingCommand(record.body);
      if (command) decoded.push({ record, command });
      else logger.info('recording message needs no action', { messageId: record.messageId });
    } catch (error) {
      if (error instanceof ContractError) logger.warn('recording message dropped: not a recording command', { messageId: record.messageId, reason: error.message });
      else failures.set(record.messageId, error);
    }
  }

  if (decoded.length > 0) {
    const target = step ?? (await recordingStep(pipelineFor(getConfig())));
    await Promise.all(
      byCall(decoded, (d) => d.command).map(async (group) => {
        for (const { record, command } of group) {
          const error = await runLogged(target, command);
          if (error !== undefined && isRetryable(error)) failures.set(record.messageId, error);
        }
      }),
    );
  }

  return partialBatchResponse(event, failures, context);
}

export const handler = lambdaHandler((event: SQSEvent, context: Context) => recordingBatch(event, context));
