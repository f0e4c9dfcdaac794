/**
 * Contract version 1, read-only: the whole-state snapshots earlier workers sent. Messages of
 * this version still in queues are read and upgraded to facts (facts.ts, upgradeV1); nothing
 * produces them any more.
 */
import * as z from 'zod';
import { InvalidSnapshotError, UnsupportedVersionError } from './errors.ts';

export const SNAPSHOT_VERSION = 1 as const;

/** Largest snapshot body accepted on the wire (SQS's limit is 1 MiB; larger transcripts travel by reference). */
export const MAX_WIRE_BYTES = 1024 * 1024;

/** Call ids become keys, file names and SQL values: keep them to a safe alphabet. */
export const CALL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export const SNAPSHOT_KINDS = ['started', 'progress', 'ended', 'unanswered'] as const;
export type SnapshotKind = (typeof SNAPSHOT_KINDS)[number];

const epochMs = z.number().int().nonnegative().max(8_640_000_000_000_000);
const optionalText = (max: number) => z.string().max(max).optional();

export const conversationItemSchema = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.string().max(1_000_000),
  interrupted: z.boolean().default(false),
  /** Epoch milliseconds; formatted into TIMEZONE when stored. */
  timestampMs: epochMs,
});
export type ConversationItem = z.infer<typeof conversationItemSchema>;

export const conversationRefSchema = z.object({
  /** Where the full conversation was put because it was too large for one message. */
  bucket: z.string().min(3).max(63),
  key: z.string().min(1).max(1024),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  items: z.number().int().nonnegative(),
});
export type ConversationRef = z.infer<typeof conversationRefSchema>;

export const recordingSchema = z.object({
  /** Object key of the recording inside the recordings bucket. */
  key: z.string().min(1).max(1024),
  bucket: z.string().max(63).optional(),
  egressId: z.string().max(128).optional(),
  /** Egress outcome when known: starting, active, complete, failed, aborted, limit_reached, discarded. */
  status: z.string().max(64).optional(),
  error: z.string().max(2_000).optional(),
  sizeBytes: z.number().int().nonnegative().optional(),
  durationMs: z.number().int().nonnegative().optional(),
});
export type RecordingInfo = z.infer<typeof recordingSchema>;

export const callInfoSchema = z.object({
  /** Untrusted: kept verbatim in documents, never used raw in paths or queries. */
  roomName: z.string().min(1).max(4_096),
  direction: z.enum(['inbound', 'outbound']),
  inboundTrunkId: optionalText(256),
  outboundTrunkId: optionalText(256),
  agentNumber: optionalText(256),
  userNumber: optionalText(256),
  /** LiveKit's SIP call id (`sip.callID`), when the call came through SIP. */
  sipCallId: optionalText(256),
  startedAtMs: epochMs,
  /** Set when the call was answered (SIP participant active). */
  answeredAtMs: epochMs.optional(),
  endedAtMs: epochMs.optional(),
  answered: z.boolean(),
  /** in_progress until the end; then completed, failed, aborted, limit_reached or an unanswered reason. */
  status: z.string().min(1).max(64),
  endReason: optionalText(512),
});
export type CallInfo = z.infer<typeof callInfoSchema>;

export const snapshotSchema = z
  .object({
    v: z.literal(SNAPSHOT_VERSION),
    kind: z.enum(SNAPSHOT_KINDS),
    callId: z.string().regex(CALL_ID_PATTERN, 'callId must be 1-128 of [A-Za-z0-9_.-]'),
    /** Grows with every snapshot of a call, across worker restarts (see nextSequence). */
    seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    sentAtMs: epochMs,
    call: callInfoSchema,
    recording: recordingSchema.optional(),
    /** The whole conversation so far, or omitted when carried by `conversationRef`. */
    conversation: z.array(conversationItemSchema).max(200_000).optional(),
    conversationRef: conversationRefSchema.optional(),
  })
  .refine((s) => !(s.conversation && s.conversationRef), {
    message: 'conversation and conversationRef are mutually exclusive',
  });
export type Snapshot = z.infer<typeof snapshotSchema>;
/** A snapshot as written by a producer (defaults may be omitted). */
export type SnapshotInput = z.input<typeof snapshotSchema>;

/** Validates an already-parsed value. Throws InvalidSnapshotError / UnsupportedVersionError. */
export function parseSnapshot(value: unknown): Snapshot {
  if (typeof value === 'object' && value !== null && 'v' in value && value.v !== SNAPSHOT_VERSION) {
    throw new UnsupportedVersionError((value as { v: unknown }).v);
  }
  const result = snapshotSchema.safeParse(value);
  if (!result.success) {
    throw new InvalidSnapshotError(
      'invalid snapshot',
      result.error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  return result.data;
}
