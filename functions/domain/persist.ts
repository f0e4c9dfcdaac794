/**
 * The persist step: a batch of fact messages becomes one merge per call on every configured
 * location, and the recording commands the merged records call for.
 *
 * Where the record lives: each location named by METADATA_LOCATION / TRANSCRIPTION_LOCATION
 * (when its SAVE_* flag is on) keeps the whole record and the documents it was asked for; a
 * location named by both keeps both documents in one row. With neither flag on but
 * CALL_RECORDING=true the record is kept in the recordings bucket (`s3`), because the recording
 * decisions need it.
 */
import type { FactMessage, RecordingCommand } from '../contract/facts.ts';
import type { DocumentKind } from '../contract/record.ts';
import type { CallDelta, MergeOutcome, StorageBackend } from '../storage/backend.ts';
import { mergeAll, stateOf } from './merge.ts';
import { recordingCommands } from './recording-plan.ts';

export interface LocationPlan {
  location: string;
  documents: DocumentKind[];
}

export interface PersistFlags {
  callRecording: boolean;
  saveMetadata: boolean;
  saveTranscription: boolean;
  metadataLocation: string;
  transcriptionLocation: string;
}

/** Which locations keep records, and which documents each stores. The first is the primary. */
export function locationPlan(flags: PersistFlags): LocationPlan[] {
  const plans: LocationPlan[] = [];
  const add = (location: string, kind: DocumentKind | undefined) => {
    const existing = plans.find((p) => p.location === location);
    if (existing) {
      if (kind && !existing.documents.includes(kind)) existing.documents.push(kind);
    } else plans.push({ location, documents: kind ? [kind] : [] });
  };
  if (flags.saveMetadata) add(flags.metadataLocation, 'metadata');
  if (flags.saveTranscription) add(flags.transcriptionLocation, 'transcription');
  if (plans.length === 0 && flags.callRecording) add('s3', undefined);
  return plans;
}

/** One delta per call: the merge of its messages, and the cumulative writer when there is exactly one. */
export function deltasOf(messages: readonly FactMessage[]): CallDelta[] {
  const byCall = new Map<string, FactMessage[]>();
  for (const message of messages) byCall.set(message.callId, [...(byCall.get(message.callId) ?? []), message]);
  return [...byCall.entries()].map(([callId, list]) => {
    const writers = new Set(list.map((m) => m.writer));
    const [only] = list;
    const cumulative = writers.size === 1 && only && list.every((m) => m.cumulative);
    return {
      callId,
      state: mergeAll(list.map(stateOf)),
      ...(cumulative ? { cumulativeWriter: { writer: only.writer, seq: Math.max(...list.map((m) => m.seq)) } } : {}),
    };
  });
}

export interface PersistTarget {
  location: string;
  backend: StorageBackend;
}

export interface CallOutcome {
  callId: string;
  /** Where each location stored it. */
  locations: { location: string; changed: boolean }[];
  /** The record as the primary location now holds it. */
  merged?: MergeOutcome;
  error?: unknown;
}

/**
 * Merges a batch into every target. A target that fails fails only its calls (their messages
 * go back to the queue; merging again is harmless). Returns one outcome per call.
 */
export async function persistFacts(messages: readonly FactMessage[], targets: readonly PersistTarget[]): Promise<Map<string, CallOutcome>> {
  const deltas = deltasOf(messages);
  const outcomes = new Map<string, CallOutcome>(deltas.map((d) => [d.callId, { callId: d.callId, locations: [] }]));
  const results = await Promise.allSettled(targets.map((target) => target.backend.merge(deltas)));
  results.forEach((result, t) => {
    for (const delta of deltas) {
      const outcome = outcomes.get(delta.callId) as CallOutcome;
      if (result.status === 'rejected') {
        outcome.error ??= result.reason;
        continue;
      }
      const merged = result.value.find((m) => m.callId === delta.callId);
      if (!merged) continue;
      outcome.locations.push({ location: merged.location, changed: merged.changed });
      if (t === 0) outcome.merged = merged;
      else outcome.merged ??= merged;
    }
  });
  return outcomes;
}

/** The recording commands a persisted batch calls for (see recording-plan.ts), per call. */
export function commandsFor(messages: readonly FactMessage[], outcomes: ReadonlyMap<string, CallOutcome>, nowMs: number): RecordingCommand[] {
  const commands: RecordingCommand[] = [];
  for (const outcome of outcomes.values()) {
    if (outcome.error || !outcome.merged) continue;
    const batch = messages.filter((m) => m.callId === outcome.callId);
    commands.push(...recordingCommands(batch, outcome.merged.state, outcome.merged.folder, nowMs));
  }
  return commands;
}
