/**
 * Updating a stored call record after the worker: the recording outcome and the webhook's
 * finalization are merged into the stored metadata by read → merge → write with a higher
 * sequence through the same StorageBackend the persist function uses. The backend's
 * sequence guard makes the write a compare-and-set: if anyone stored a newer record in
 * between, the write is not applied and the merge is redone on the newer record.
 *
 * Why the final metadata always carries the egress result, whatever the order:
 * - every writer here merges the recording facts (state.ts) into what it writes;
 * - the only writer that does not, the persist function writing the worker's snapshots, is
 *   followed for the final snapshot (ended / unanswered) by the recording function, which
 *   waits until that snapshot is stored and then merges the facts into it;
 * - a worker that died sends no final snapshot; the webhook's room_finished finalization
 *   merges the facts instead.
 */
import { DateTime } from 'luxon';
import { z } from 'zod';
import { parseSnapshot, type Snapshot } from '../contract/snapshot.ts';
import type { StorageBackend, StoredArtifact } from '../storage/backend.ts';
import { metadataRecord, type ArtifactRecord, type MetadataDocument } from '../storage/documents.ts';
import { callPaths } from '../storage/paths.ts';
import { ConcurrentUpdateError } from './errors.ts';
import type { RecordingFacts } from './state.ts';
import { callStatusForRecording, isTerminal } from './status.ts';

const storedMetadataSchema = z.looseObject({
  call_id: z.string(),
  room_name: z.string(),
  call_direction: z.enum(['inbound', 'outbound']),
  inbound_trunk_id: z.string().optional(),
  outbound_trunk_id: z.string().optional(),
  agent_number: z.string().nullable().optional(),
  user_number: z.string().nullable().optional(),
  start_time: z.string(),
  end_time: z.string().nullable().optional(),
  answered: z.boolean(),
  status: z.string(),
  end_reason: z.string().optional(),
  recording_location: z.string().optional(),
  recording_status: z.string().optional(),
  recording_error: z.string().optional(),
  recording_size_bytes: z.number().optional(),
  recording_duration: z.number().optional(),
});

/** Fields buildMetadata may omit; a rebuilt document drops them when the rebuild has none. */
const OPTIONAL_FIELDS: readonly (keyof MetadataDocument)[] = [
  'inbound_trunk_id',
  'outbound_trunk_id',
  'end_reason',
  'recording_filename',
  'recording_location',
  'recording_status',
  'recording_error',
  'recording_size_bytes',
  'recording_duration',
];

function toMillis(iso: string): number | undefined {
  const parsed = DateTime.fromISO(iso, { setZone: true });
  return parsed.isValid ? parsed.toMillis() : undefined;
}

function parseLocation(location: string | undefined): { bucket?: string; key: string } | undefined {
  if (!location) return undefined;
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
  if (match) return { bucket: match[1], key: match[2] as string };
  return { key: location };
}

export interface KeyHint {
  /** The recording key when known from the recording state. */
  key?: string;
  bucket?: string;
  /** Recompute the key as the worker did (CALL_RECORDING=true) when nothing else names it. */
  recordingTimezone?: string;
}

/** Rebuilds the snapshot a stored metadata document was made from (as far as it says). */
export function snapshotFromMetadata(document: unknown, seq: number, hint: KeyHint = {}): Snapshot | undefined {
  const parsed = storedMetadataSchema.safeParse(document);
  if (!parsed.success) return undefined;
  const doc = parsed.data;
  const startedAtMs = toMillis(doc.start_time);
  if (startedAtMs === undefined) return undefined;
  const endedAtMs = doc.end_time ? toMillis(doc.end_time) : undefined;
  let recording: Snapshot['recording'];
  const located = parseLocation(doc.recording_location);
  const key = hint.key ?? located?.key;
  if (key) {
    recording = { key, bucket: hint.bucket ?? located?.bucket };
  } else if (hint.recordingTimezone) {
    const paths = callPaths(doc.room_name, startedAtMs, hint.recordingTimezone, doc.call_id);
    recording = { key: `${paths.folder}/${paths.recordingFile}`, bucket: hint.bucket };
  }
  if (recording) {
    if (doc.recording_status) recording.status = doc.recording_status;
    if (doc.recording_error) recording.error = doc.recording_error;
    if (doc.recording_size_bytes !== undefined) recording.sizeBytes = Math.round(doc.recording_size_bytes);
    if (doc.recording_duration !== undefined) recording.durationMs = Math.round(doc.recording_duration * 1000);
  }
  try {
    return parseSnapshot({
      v: 1,
      kind: endedAtMs === undefined ? 'progress' : doc.answered ? 'ended' : 'unanswered',
      callId: doc.call_id,
      seq,
      sentAtMs: Date.now(),
      call: {
        roomName: doc.room_name,
        direction: doc.call_direction,
        inboundTrunkId: doc.inbound_trunk_id,
        outboundTrunkId: doc.outbound_trunk_id,
        agentNumber: doc.agent_number ?? undefined,
        userNumber: doc.user_number ?? undefined,
        startedAtMs,
        endedAtMs,
        answered: doc.answered,
        status: doc.status,
        endReason: doc.end_reason,
      },
      recording,
    });
  } catch {
    return undefined;
  }
}

/**
 * The recording facts applied to a snapshot: the egress id and outcome, or "discarded".
 * For an answered call that has ended, a terminal egress outcome becomes the call's status
 * (the spec's completed / failed / aborted / limit_reached).
 */
export function applyRecordingFacts(snapshot: Snapshot, facts: RecordingFacts): Snapshot {
  const known = facts.egress ?? facts.discard ?? facts.call;
  if (!snapshot.recording && !known) return snapshot;
  const recording = { ...(snapshot.recording ?? { key: known!.key, bucket: known!.bucket }) };
  // Where the recording was actually made wins over what the worker assumed.
  if (known?.bucket) recording.bucket = known.bucket;
  const egressId = facts.egress?.egressId ?? facts.result?.egressId;
  if (egressId) recording.egressId = egressId;
  const call = { ...snapshot.call };
  if (facts.discard) {
    recording.status = 'discarded';
    delete recording.sizeBytes;
    delete recording.durationMs;
  } else if (facts.result) {
    recording.status = facts.result.status;
    if (facts.result.error) recording.error = facts.result.error.slice(0, 2_000);
    else delete recording.error;
    if (facts.result.sizeBytes !== undefined) recording.sizeBytes = facts.result.sizeBytes;
    if (facts.result.durationMs !== undefined) recording.durationMs = facts.result.durationMs;
  }
  if (call.answered && call.endedAtMs !== undefined && !facts.discard && recording.status && isTerminal(recording.status)) {
    call.status = callStatusForRecording(recording.status) ?? call.status;
  }
  return { ...snapshot, call, recording };
}

export type UpdateOutcome = { result: 'applied'; seq: number; location: string } | { result: 'unchanged' | 'missing' | 'unreadable'; seq?: number };

export interface UpdateOptions {
  timezone: string;
  /** The new record's sequence is at least this (e.g. the room's end time × 1000). */
  minSeq?: number;
  /** Attempts when another writer keeps winning. */
  attempts?: number;
  hint?: KeyHint;
}

/** Rebuilt document, keeping fields a newer documents.ts may have added that we do not know. */
function mergedDocument(stored: unknown, rebuilt: MetadataDocument): MetadataDocument {
  const base = typeof stored === 'object' && stored !== null ? { ...(stored as Record<string, unknown>) } : {};
  for (const field of OPTIONAL_FIELDS) delete base[field];
  return { ...base, ...rebuilt } as MetadataDocument;
}

/** Equal documents apart from `sequence`, whatever the key order. */
function sameContent(a: unknown, b: unknown): boolean {
  const canonical = (d: unknown) =>
    JSON.stringify(d, (k, v: unknown) => {
      if (k === 'sequence') return undefined;
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
      }
      return v;
    });
  return canonical(a) === canonical(b);
}

/**
 * Read the call's metadata, let `mutate` change the rebuilt snapshot (return undefined for
 * "nothing to do"), and write the result with a higher sequence. Retries when a newer
 * record appeared in between. Throws ConcurrentUpdateError after `attempts` lost races.
 */
export async function updateCallRecord(
  backend: StorageBackend,
  callId: string,
  mutate: (snapshot: Snapshot, stored: StoredArtifact) => Snapshot | undefined,
  options: UpdateOptions,
): Promise<UpdateOutcome> {
  const attempts = options.attempts ?? 5;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const stored = await backend.read('metadata', callId);
    if (!stored) return { result: 'missing' };
    const base = snapshotFromMetadata(stored.document, stored.seq, options.hint);
    if (!base) return { result: 'unreadable', seq: stored.seq };
    const changed = mutate(base, stored);
    if (!changed) return { result: 'unchanged', seq: stored.seq };
    const seq = Math.max(stored.seq + 1, options.minSeq ?? 0);
    const record: ArtifactRecord<MetadataDocument> = metadataRecord({ ...changed, seq }, options.timezone);
    record.document = mergedDocument(stored.document, record.document);
    if (sameContent(record.document, stored.document)) return { result: 'unchanged', seq: stored.seq };
    const [outcome] = await backend.write([record]);
    if (outcome?.applied) return { result: 'applied', seq, location: outcome.location };
  }
  throw new ConcurrentUpdateError(`call record ${callId} kept changing; merge not applied after ${attempts} attempts`);
}
