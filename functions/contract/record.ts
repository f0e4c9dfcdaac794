/**
 * The stored call record and the documents rendered from it: what storage keeps and what the
 * spec's readers see. The merge rules live in functions/domain/merge.ts.
 */
import type { CallFacts } from './facts.ts';

/** The merge of every fact ever received for one call, plus who said it and when. */
export interface CallState extends CallFacts {
  callId: string;
  /** Per writer, the highest sequence merged. */
  writers: Record<string, number>;
  /** The newest `sentAtMs` of any message merged (the sweeper's clock). */
  lastFactAtMs: number;
}

/** The spec's metadata document (keys in the spec's order; optional ones only when known). */
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
  conversation: TranscriptionItem[];
}

export type DocumentKind = 'metadata' | 'transcription';

export interface RenderedDocuments {
  metadata?: MetadataDocument;
  transcription?: TranscriptionDocument;
}

/**
 * One line of a call list: what storage indexes for queries, derived from the record when it is
 * written (functions/domain/render.ts, summarize). Only calls an agent reported have one.
 */
export interface CallSummary {
  callId: string;
  roomName: string;
  startedAtMs: number;
  direction: 'inbound' | 'outbound';
  agentNumber?: string;
  userNumber?: string;
  /** Until the end; absent while the call is in progress. */
  durationMs?: number;
  answered: boolean;
  status: string;
  hasRecording: boolean;
}
