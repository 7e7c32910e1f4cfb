import type { EventFields, MessageFields, ToolCallRowFields } from '../../src/agent/agent-backend.js';
import { messageContentTypes, toolCallFields } from '../../src/agent/record-fields.js';
import type { Message, Timeline, ToolCallRecord } from '../../src/types.js';

/**
 * The fields `AgentStore` hands a backend with each value, for tests that
 * build a backend's documents without a store.
 */

export function messageFieldsOf(message: Message): MessageFields {
  const role = (message as { role?: unknown } | null)?.role;
  return { role: typeof role === 'string' ? role : '', contentTypes: messageContentTypes(message) };
}

export function toolCallFieldsOf(record: ToolCallRecord): ToolCallRowFields {
  return { id: String(record.id), ...toolCallFields(record) };
}

export function eventFieldsOf(timeline: Timeline): EventFields {
  const channel = (timeline?.event as { channel?: unknown } | undefined)?.channel;
  const seq = timeline?.bookmark?.seq;
  return {
    channel: typeof channel === 'string' ? channel : null,
    seq: typeof seq === 'number' && Number.isFinite(seq) ? seq : null,
  };
}
