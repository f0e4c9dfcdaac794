/** The stored JSON shapes of the spec, built from a snapshot. */
import type { Snapshot } from '../contract/snapshot.ts';
import { callPaths, formatTime, type CallPaths } from './paths.ts';

export type ArtifactKind = 'metadata' | 'transcription';

export interface MetadataDocument {
  call_id: string;
  room_name: string;
  call_direction: 'inbound' | 'outbound';
  inbound_trunk_id?: string;
  outbound_trunk_id?: string;
  agent_number: string | null;
  user_number: string | null;
  start_time: string;
  end_time: string | null;
  /** Seconds, to the millisecond. */
  duration: number | null;
  timezone: string;
  answered: boolean;
  status: string;
  end_reason?: string;
  recording_filename?: string;
  recording_location?: string;
  recording_status?: string;
  recording_error?: string;
  recording_size_bytes?: number;
  recording_duration?: number;
  sequence: number;
}

export interface TranscriptionItem {
  role: 'user' | 'assistant';
  content: string;
  interrupted: boolean;
  timestamp: string;
}

export interface TranscriptionDocument {
  call_id: string;
  room_name: string;
  sequence: number;
  conversation: TranscriptionItem[];
}

/** One artifact ready for a backend: the document plus everything needed to key and guard it. */
export interface ArtifactRecord<D = MetadataDocument | TranscriptionDocument> {
  kind: ArtifactKind;
  callId: string;
  seq: number;
  roomName: string;
  startedAtMs: number;
  paths: CallPaths;
  document: D;
}

const RECORDING_GONE = new Set(['discarded', 'failed']);

export function buildMetadata(snapshot: Snapshot, timezone: string): MetadataDocument {
  const { call } = snapshot;
  const rec = snapshot.recording;
  // The spec: an unanswered call keeps no recording filename; a discarded or failed one has no file.
  const keptRecording = rec && call.answered && !RECORDING_GONE.has(rec.status ?? '') ? rec : undefined;
  // Keys in the spec's order, optional ones only when known.
  return {
    call_id: snapshot.callId,
    room_name: call.roomName,
    call_direction: call.direction,
    ...(call.inboundTrunkId ? { inbound_trunk_id: call.inboundTrunkId } : {}),
    ...(call.outboundTrunkId ? { outbound_trunk_id: call.outboundTrunkId } : {}),
    agent_number: call.agentNumber ?? null,
    user_number: call.userNumber ?? null,
    start_time: formatTime(call.startedAtMs, timezone),
    end_time: call.endedAtMs === undefined ? null : formatTime(call.endedAtMs, timezone),
    duration: call.endedAtMs === undefined ? null : Math.max(0, call.endedAtMs - call.startedAtMs) / 1000,
    timezone: timezone === 'system' ? Intl.DateTimeFormat().resolvedOptions().timeZone : timezone,
    answered: call.answered,
    status: call.status,
    ...(call.endReason ? { end_reason: call.endReason } : {}),
    ...(keptRecording
      ? {
          recording_filename: keptRecording.key.slice(keptRecording.key.lastIndexOf('/') + 1),
          recording_location: keptRecording.bucket ? `s3://${keptRecording.bucket}/${keptRecording.key}` : keptRecording.key,
        }
      : {}),
    ...(rec?.status ? { recording_status: rec.status } : {}),
    ...(rec?.error ? { recording_error: rec.error } : {}),
    ...(rec?.sizeBytes !== undefined ? { recording_size_bytes: rec.sizeBytes } : {}),
    ...(rec?.durationMs !== undefined ? { recording_duration: rec.durationMs / 1000 } : {}),
    sequence: snapshot.seq,
  };
}

export function buildTranscription(snapshot: Snapshot, timezone: string): TranscriptionDocument {
  return {
    call_id: snapshot.callId,
    room_name: snapshot.call.roomName,
    sequence: snapshot.seq,
    conversation: (snapshot.conversation ?? []).map((item) => ({
      role: item.role,
      content: item.content,
      interrupted: item.interrupted,
      timestamp: formatTime(item.timestampMs, timezone),
    })),
  };
}

/**
 * Folder for a call's artifacts: the recording's folder when the snapshot names one,
 * so metadata sits beside the recording even if the recorder used another timezone.
 */
export function artifactPaths(snapshot: Snapshot, timezone: string): CallPaths {
  const paths = callPaths(snapshot.call.roomName, snapshot.call.startedAtMs, timezone, snapshot.callId);
  const key = snapshot.recording?.key;
  const slash = key?.lastIndexOf('/') ?? -1;
  if (key && slash > 0) {
    const folder = key.slice(0, slash);
    const timestamp = folder.slice(folder.lastIndexOf('/') + 1);
    if (!folder.split('/').some((part) => part === '..' || part === '.' || part === '')) {
      return {
        ...paths,
        folder,
        timestamp,
        metadataFile: `call_metadata_${paths.slug}_${timestamp}.json`,
        transcriptionFile: `call_transcription_${paths.slug}_${timestamp}.json`,
        recordingFile: key.slice(slash + 1),
      };
    }
  }
  return paths;
}

export function metadataRecord(snapshot: Snapshot, timezone: string): ArtifactRecord<MetadataDocument> {
  return {
    kind: 'metadata',
    callId: snapshot.callId,
    seq: snapshot.seq,
    roomName: snapshot.call.roomName,
    startedAtMs: snapshot.call.startedAtMs,
    paths: artifactPaths(snapshot, timezone),
    document: buildMetadata(snapshot, timezone),
  };
}

export function transcriptionRecord(snapshot: Snapshot, timezone: string): ArtifactRecord<TranscriptionDocument> {
  return {
    kind: 'transcription',
    callId: snapshot.callId,
    seq: snapshot.seq,
    roomName: snapshot.call.roomName,
    startedAtMs: snapshot.call.startedAtMs,
    paths: artifactPaths(snapshot, timezone),
    document: buildTranscription(snapshot, timezone),
  };
}
