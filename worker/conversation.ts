/**
 * Conversation items from AgentSession's `conversation_item_added` events: user and
 * assistant messages only, text kept verbatim, non-text content as placeholders
 * ([image], [audio] or the audio's transcript), as the original does.
 *
 * Each item keeps the ChatMessage's own `id` (stable for the life of the message, and unique
 * across jobs), so the stored transcript is the union of every job's items by id: a
 * re-dispatched job adds its lines to the first job's instead of replacing them. An item that
 * comes without a usable id gets a derived one when it is sent (withItemIds).
 */
import { MAX_CONTENT_LENGTH, MAX_ID_LENGTH, type ConversationItem } from '../functions/contract/facts.ts';
import { turnLatencyFromMessageMetrics, type MessageMetricsLike } from '../functions/domain/insights/index.ts';

/** A transcript item as captured: the contract's item, its id possibly still to be derived. */
export type CapturedItem = Omit<ConversationItem, 'id'> & { id: string | undefined };

/** The shape of the agents ChatMessage we read (kept structural so tests need no SDK objects). */
export interface ChatMessageLike {
  /** ChatMessage.id (`item_...`), unique per message. */
  id?: string;
  type: string;
  role?: string;
  content?: readonly unknown[];
  interrupted?: boolean;
  createdAt?: number;
  /** ChatMessage's joined text, with expressive markup removed from assistant messages. */
  readonly textContent?: string;
  /** ChatMessage.metrics (agents MetricsReport, in seconds): the turn's latency. */
  metrics?: MessageMetricsLike;
}

export const IMAGE_PLACEHOLDER = '[image]';
export const AUDIO_PLACEHOLDER = '[audio]';
export const UNKNOWN_PLACEHOLDER = '[non-text content]';


function partText(part: unknown): string | undefined {
  if (typeof part === 'string') return part;
  if (typeof part !== 'object' || part === null) return undefined;
  const typed = part as { type?: unknown; transcript?: unknown; value?: unknown };
  if (typed.type === 'image_content') return IMAGE_PLACEHOLDER;
  if (typed.type === 'audio_content') {
    return typeof typed.transcript === 'string' && typed.transcript.trim() ? typed.transcript : AUDIO_PLACEHOLDER;
  }
  // Instructions objects carry their rendered text in `value`.
  if (typeof typed.value === 'string') return typed.value;
  return UNKNOWN_PLACEHOLDER;
}

/** The transcript item of a conversation event, or undefined when it is not one. */
export function conversationItem(item: ChatMessageLike, fallbackMs: number): CapturedItem | undefined {
  if (item.type !== 'message' || (item.role !== 'user' && item.role !== 'assistant')) return undefined;
  const parts = item.content ?? [];
  let content: string;
  const onlyText = parts.every((part) => typeof part === 'string' || (typeof part === 'object' && part !== null && typeof (part as { value?: unknown }).value === 'string' && !('type' in part)));
  if (onlyText && typeof item.textContent === 'string') {
    content = item.textContent;
  } else if (parts.length === 1) {
    content = partText(parts[0]) ?? '';
  } else {
    const texts: string[] = [];
    for (const part of parts) {
      const value = partText(part);
      if (value !== undefined) texts.push(value);
    }
    content = texts.join('\n');
  }
  if (content.length > MAX_CONTENT_LENGTH) content = content.slice(0, MAX_CONTENT_LENGTH);
  const createdAt = item.createdAt;
  const id = item.id;
  const captured: CapturedItem = {
    id: typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : undefined,
    role: item.role,
    content,
    interrupted: item.interrupted === true,
    timestampMs: typeof createdAt === 'number' && Number.isFinite(createdAt) && createdAt >= 0 ? Math.floor(createdAt) : fallbackMs,
  };
  const metrics = item.metrics ? turnMetrics(item.metrics) : undefined;
  if (metrics) captured.metrics = metrics;
  return captured;
}

/** The turn's latency in whole milliseconds, or undefined when the message measured nothing. */
function turnMetrics(report: MessageMetricsLike): ConversationItem['metrics'] {
  const latency = turnLatencyFromMessageMetrics(report);
  let any = false;
  for (const key in latency) {
    const value = latency[key as keyof typeof latency];
    if (value === undefined) continue;
    // Whole milliseconds, capped at the contract's day: seconds * 1000 carries float noise.
    latency[key as keyof typeof latency] = Math.min(86_400_000, Math.round(value));
    any = true;
  }
  return any ? latency : undefined;
}
