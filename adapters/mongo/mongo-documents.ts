import type { EventFields, MessageFields, ToolCallRowFields } from '../../src/agent/agent-backend.js';
import type { SessionFields } from '../../src/agent/record-fields.js';
import { CorruptDataError, type ErrorContext, ValidationError } from '../../src/errors.js';
import { decodeJson } from '../../src/json-codec.js';

/**
 * How values become MongoDB documents.
 *
 * The value itself is stored as the JSON text `encodeJson` made, in a string
 * field `json`, never as a BSON re-encoding of the value. That is what makes
 * the round trip exact:
 * - keys containing `.` or starting with `$` (tool inputs have them) are
 *   ordinary characters inside a string, never BSON field names;
 * - numbers keep their value and type: BSON would store 1 as int32, 2**53-1
 *   as a double and -0 as a double, and drivers hand some of them back as
 *   `Long` or `Int32` objects; JSON text is read back by `JSON.parse`;
 * - key order is the order of the text;
 * - NUL inside text: BSON strings are length-prefixed and may contain NUL
 *   (only field names, BSON "cstrings", may not), and the JSON text escapes
 *   it as `\u0000` anyway; lone surrogates are escaped likewise, so the
 *   string is valid UTF-8, which BSON requires.
 *
 * Beside `json`, each document carries the fields that queries filter and sort
 * on, as `AgentStore` extracted them (`record-fields.ts`) for every backend.
 * All field names are fixed here; no user-supplied string ever becomes a
 * field name.
 */

/** MongoDB's limit on one document (`maxBsonObjectSize`), enforced by the server. */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/**
 * The largest document the store writes: the limit less room for what a write
 * command wraps around it (an update's filter and operators, an upsert's copy
 * of the filter). A server may refuse a document just under 16 MiB in such a
 * command, and one MongoDB emulator drops the connection instead of answering.
 */
export const MAX_STORED_DOCUMENT_BYTES = MAX_DOCUMENT_BYTES - 16 * 1024;

/**
 * Bound on the bytes a stored document adds to its JSON text: field names,
 * numbers and the agent id (at most 1024 UTF-16 units, so 3 KiB of UTF-8).
 * The other fields repeat parts of the value, each at most once.
 */
const FIXED_FIELD_BYTES = 8 * 1024;

function cstringBytes(name: string): number {
  return Buffer.byteLength(name, 'utf8') + 1;
}

function valueBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 4 + Buffer.byteLength(value, 'utf8') + 1;
    case 'number':
      // The driver sends integers that fit in 32 bits as int32, every other number as a double.
      return Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31 ? 4 : 8;
    case 'boolean':
      return 1;
    case 'bigint':
      return 8;
    case 'undefined':
      return 0;
    case 'object': {
      if (value === null) return 0;
      if (value instanceof Date) return 8;
      const bsonType = (value as { _bsontype?: unknown })._bsontype;
      if (bsonType === 'ObjectId') return 12;
      if (bsonType === 'Long' || bsonType === 'Double' || bsonType === 'Timestamp') return 8;
      if (bsonType === 'Int32') return 4;
      return bsonSize(value);
    }
    default:
      throw new TypeError(`cannot size a ${typeof value} as BSON`);
  }
}

/**
 * The size of a document encoded as BSON, as the driver sends it: the shapes
 * the store writes (strings, numbers, booleans, null, dates, arrays, nested
 * documents), so a write can be refused before anything is sent.
 */
export function bsonSize(document: object): number {
  let bytes = 4 + 1;
  const entries = Array.isArray(document)
    ? document.map((value, index) => [String(index), value] as const)
    : Object.entries(document as Record<string, unknown>);
  for (const [name, value] of entries) bytes += 1 + cstringBytes(name) + valueBytes(value);
  return bytes;
}

/** `ValidationError` for a document over the limit, naming the field (`path`, default `what`) and the limit. */
export function documentTooLarge(
  what: string,
  bytes: number,
  ctx: ErrorContext = {},
  path = what,
): ValidationError {
  return new ValidationError(
    `${what} needs a ${bytes}-byte MongoDB document; at most ${MAX_STORED_DOCUMENT_BYTES} bytes fit ` +
      `(MongoDB's 16 MiB document limit, ${MAX_DOCUMENT_BYTES} bytes, less room for the write command)`,
    { ...ctx, path },
  );
}

/**
 * Refuses a value whose document cannot be stored, before anything is
 * written. `json` is the value's text; `document` builds the document that
 * would hold it, measured only when the text is large enough to matter (the
 * document repeats each extracted part of the value at most once).
 */
export function assertFitsInDocument(
  json: string,
  what: string,
  ctx: ErrorContext = {},
  document?: () => object,
): void {
  // UTF-8 needs at most 3 bytes per UTF-16 unit: a text this short fits whatever the document repeats of it.
  if (json.length * 3 * 2 + FIXED_FIELD_BYTES <= MAX_STORED_DOCUMENT_BYTES) return;
  const bytes = document ? bsonSize(document()) : Buffer.byteLength(json, 'utf8') + FIXED_FIELD_BYTES;
  if (bytes > MAX_STORED_DOCUMENT_BYTES) throw documentTooLarge(what, bytes, ctx);
}

/** The `json` field of a stored document: the text as it was saved. */
export function jsonText(doc: Record<string, unknown> | null | undefined, ctx: ErrorContext = {}): string {
  const json = doc?.json;
  if (typeof json !== 'string') {
    throw new CorruptDataError('stored document has no JSON text', ctx);
  }
  return json;
}

/** Reads the `json` field of a stored document back into a value. */
export function readJson<T>(doc: Record<string, unknown> | null | undefined, ctx: ErrorContext = {}): T {
  return decodeJson<T>(jsonText(doc, ctx), ctx);
}

/**
 * The texts of the items of a JSON array text, as they appear in it: the
 * media cache reaches the backend as one array text (`[a,b]`) and is stored
 * one document per item, each under the 16 MiB limit on its own. Splits at
 * the commas outside strings and nested values, so no item is re-encoded
 * (which could change it: `-0` would come back as `0`); JSON whitespace
 * around an item is left out.
 */
export function jsonArrayItems(text: string): string[] {
  const inner = text.trim().slice(1, -1);
  if (inner.trim() === '') return [];
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  let inString = false;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 0) {
      items.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(inner.slice(start).trim());
  return items;
}

/** `<prefix>messages`: one document per message, `index` = position in the conversation. */
export interface MessageDocument {
  agentId: string;
  index: number;
  /** Epoch ms when this message was first saved; re-saving the conversation keeps it. */
  createdAt: number;
  /** `message.role`; '' when it is not a string (earlier versions of the store wrote null). */
  role: string;
  /** Distinct block types, for `contentType` filters (multikey index). */
  contentTypes: string[];
  json: string;
}

export function toMessageDocument(
  agentId: string,
  index: number,
  json: string,
  fields: MessageFields,
  createdAt: number,
): MessageDocument {
  return {
    agentId,
    index,
    createdAt,
    role: fields.role,
    contentTypes: fields.contentTypes,
    json,
  };
}

/** `<prefix>tool_calls`: one document per record, `index` = position in the saved list. */
export interface ToolCallDocument {
  agentId: string;
  index: number;
  toolCallId: string;
  name: string;
  state: string;
  isError: boolean;
  hasApproval: boolean;
  createdAt: number;
  updatedAt: number;
  json: string;
}

export function toToolCallDocument(
  agentId: string,
  index: number,
  json: string,
  fields: ToolCallRowFields,
): ToolCallDocument {
  return {
    agentId,
    index,
    toolCallId: fields.id,
    name: fields.name,
    state: fields.state,
    isError: fields.isError,
    hasApproval: fields.hasApproval,
    createdAt: fields.createdAt,
    updatedAt: fields.updatedAt,
    json,
  };
}

/** `<prefix>infos`: the agent's `AgentInfo`, `_id` = agent id. */
export interface InfoDocument {
  _id: string;
  templateId: string;
  /** `Date.parse(info.createdAt)`; sessions sort and filter on it. */
  createdAtMs: number;
  userId: string | null;
  messageCount: number;
  /** Epoch ms of the last `saveInfo` (store time). */
  updatedAt: number;
  json: string;
  /**
   * The session (`SessionFields.sessionJson`), what `querySessions` reads;
   * absent on infos saved before the store wrote it, until their next save.
   */
  sessionJson?: string;
}

export function toInfoDocument(
  agentId: string,
  json: string,
  fields: SessionFields,
  updatedAt: number,
): InfoDocument {
  return {
    _id: agentId,
    templateId: fields.templateId,
    createdAtMs: fields.createdAtMs,
    userId: fields.userId,
    messageCount: fields.messageCount,
    updatedAt,
    json,
    sessionJson: fields.sessionJson,
  };
}

/** `<prefix>events`: one document per appended timeline entry. */
export interface EventDocument {
  agentId: string;
  /** Insertion order within the agent, reserved in blocks from the agent's counter; never `bookmark.seq`. */
  seq: number;
  /** `bookmark.seq`, for `since` filters (not unique: the SDK reuses it after a crash). */
  bookmarkSeq: number | null;
  /** `event.channel`, for `channel` filters. */
  channel: string | null;
  json: string;
  /**
   * When it was stored (the server's time of its batch's registration), for
   * retention; absent on events stored before the store recorded it.
   */
  appendedAt?: Date;
}

export function toEventDocument(
  agentId: string,
  seq: number,
  json: string,
  fields: EventFields,
  appendedAt?: Date,
): EventDocument {
  const doc: EventDocument = { agentId, seq, bookmarkSeq: fields.seq, channel: fields.channel, json };
  if (appendedAt) doc.appendedAt = appendedAt;
  return doc;
}

/** `<prefix>snapshots`: upserted by (agentId, snapshotId); `position` fixed at first save (oldest first). */
export interface SnapshotDocument {
  agentId: string;
  snapshotId: string;
  json: string;
}

export function toSnapshotDocument(agentId: string, snapshotId: string, json: string): SnapshotDocument {
  return { agentId, snapshotId, json };
}

/** History windows, compression records and recovered files: appended, read back by `position`. */
export interface PositionedDocument {
  agentId: string;
  position: number;
  json: string;
}

export function toPositionedDocument(agentId: string, position: number, json: string): PositionedDocument {
  return { agentId, position, json };
}

/** `<prefix>media_cache`: the saved list, one document per entry. */
export interface MediaCacheDocument {
  agentId: string;
  index: number;
  json: string;
}

export function toMediaCacheDocument(agentId: string, index: number, json: string): MediaCacheDocument {
  return { agentId, index, json };
}
