import { toEpochMs } from '../agent/query-filters.js';
import { type ErrorContext, NotFoundError, ValidationError } from '../errors.js';
import { decodeJson, encodeJson } from '../json-codec.js';
import { utf8Length } from '../strings.js';
import type { TimeInput } from '../types.js';
import type { KvInstanceRow, KvQueryRow, KvRecordRow } from './kv-backend.js';
import type { KvProjection, KvRecordView } from './kv-query.js';
import { selectMembers } from './kv-query-eval.js';
import type { JsonValue, KvInstance, KvMetadata, KvRecord, KvSelectableField } from './kv-types.js';

/** A KV instance that does not exist. The words "not found" are what seed 001's callers test for. */
export function instanceNotFound(instanceId: string, ctx: ErrorContext, hint = ''): NotFoundError {
  return new NotFoundError(`KV instance ${JSON.stringify(instanceId)} not found${hint}`, ctx);
}

/**
 * Validation of KV names and values, and the conversion between stored rows
 * and the records users see. Shared by the store, the envelope and the
 * DataStore so that every entry point refuses the same things the same way.
 */

/**
 * Longest names accepted, in UTF-8 bytes: the three parts of a record's
 * primary key together stay well below PostgreSQL's B-tree entry limit
 * (about 2,700 bytes), so no backend refuses a name another one accepts.
 */
export const KV_NAME_LIMITS = {
  instanceId: 256,
  namespace: 512,
  key: 1024,
  actor: 256,
  instanceName: 1024,
  description: 65_536,
} as const;

/** Latest instant a `Date` can hold; expiry times beyond it cannot be written as ISO strings. */
const MAX_TIME_MS = 8.64e15;

/**
 * Checks an instance id, namespace, key or actor: a non-empty string of
 * well-formed Unicode without NUL (PostgreSQL text cannot hold NUL, and UTF-8
 * drivers turn lone surrogates into U+FFFD, which would merge two names into
 * one), within its byte limit. Every other character, `%`, `_`, quotes,
 * backslashes, dots, colons and emoji included, is stored as given.
 */
export function assertKvName(
  value: unknown,
  what: keyof typeof KV_NAME_LIMITS,
  ctx: ErrorContext,
  allowEmpty = false,
  /** The name the caller knows the value by (`userId`), when it differs from `what`. */
  label: string = what,
): asserts value is string {
  if (typeof value !== 'string')
    throw new ValidationError(`${label} must be a string, got ${typeof value}`, ctx);
  if (value === '' && !allowEmpty) throw new ValidationError(`${label} must not be empty`, ctx);
  if (value.includes('\u0000')) throw new ValidationError(`${label} must not contain NUL (U+0000)`, ctx);
  if (!value.isWellFormed()) throw new ValidationError(`${label} must not contain lone surrogates`, ctx);
  const limit = KV_NAME_LIMITS[what];
  if (utf8Length(value) > limit)
    throw new ValidationError(`${label} is longer than ${limit} UTF-8 bytes`, ctx);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Checks metadata (a plain object of JSON values) and returns its JSON text. */
export function encodeMetadata(metadata: unknown, ctx: ErrorContext): string {
  if (!isPlainObject(metadata)) throw new ValidationError('metadata must be a plain object', ctx);
  return encodeJson(metadata, 'strict-no-undefined', { ...ctx, what: 'metadata' });
}

/** Checks that options is an object with known keys only (a misspelt option must not be ignored silently). */
export function checkOptions(
  options: unknown,
  allowed: readonly string[],
  ctx: ErrorContext,
): Record<string, unknown> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options))
    throw new ValidationError('options must be an object', ctx);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new ValidationError(
        `unknown option ${JSON.stringify(key)}; expected one of ${allowed.join(', ')}`,
        ctx,
      );
    }
  }
  return options as Record<string, unknown>;
}

/** A version token for `ifVersion`: a positive integer. */
export function checkVersion(value: unknown, ctx: ErrorContext): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ValidationError(`ifVersion must be a positive integer, got ${String(value)}`, ctx);
  }
  return value;
}

/**
 * The expiry a write asks for: `undefined` when it names none, otherwise
 * epoch ms. `ttlMs` is a positive integer; `expiresAt` any time input (an
 * instant already past is allowed: the record is invisible at once).
 */
export function resolveExpiry(
  options: { ttlMs?: unknown; expiresAt?: unknown },
  now: number,
  ctx: ErrorContext,
): number | undefined {
  const { ttlMs, expiresAt } = options;
  if (ttlMs !== undefined && expiresAt !== undefined) {
    throw new ValidationError('pass either ttlMs or expiresAt, not both', ctx);
  }
  let at: number | undefined;
  if (ttlMs !== undefined) {
    if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < 1) {
      throw new ValidationError(
        `ttlMs must be a positive integer of milliseconds, got ${String(ttlMs)}`,
        ctx,
      );
    }
    at = now + ttlMs;
  } else if (expiresAt !== undefined) {
    try {
      at = Math.floor(toEpochMs(expiresAt as TimeInput, 'expiresAt'));
    } catch (error) {
      throw new ValidationError((error as Error).message, ctx);
    }
  }
  if (at !== undefined && Math.abs(at) > MAX_TIME_MS) {
    throw new ValidationError('expiry is beyond the range of a Date', ctx);
  }
  return at;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The instance a user sees: ISO times. */
export function instanceFromRow(row: KvInstanceRow): KvInstance {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

/** The record a user sees: parsed JSON, ISO times, optional fields present only when set. */
export function recordFromRow<V = JsonValue>(row: KvRecordRow, ctx: ErrorContext): KvRecord<V> {
  return projectRow(row, undefined, ctx) as KvRecord<V>;
}

/** A record restricted to the selected fields and members (whole without `select`). */
export function projectRow(
  row: KvQueryRow,
  projection: KvProjection | undefined,
  ctx: ErrorContext,
): Partial<KvRecord> {
  const wants = (field: KvSelectableField) => !projection || projection.fields.has(field);
  const record: Partial<KvRecord> = {};
  if (wants('id')) record.id = row.id;
  if (wants('instanceId')) record.instanceId = row.instanceId;
  if (wants('namespace')) record.namespace = row.namespace;
  if (wants('key')) record.key = row.key;
  if (wants('value') && row.value !== undefined) record.value = decodeJson<JsonValue>(row.value, ctx);
  const valueMembers = projection?.members.value;
  if (valueMembers && row.value !== undefined) {
    const picked = selectMembers(decodeJson(row.value, ctx), valueMembers);
    if (picked !== undefined) record.value = picked as JsonValue;
  }
  if (wants('metadata') && row.metadata !== undefined)
    record.metadata = decodeJson<KvMetadata>(row.metadata, ctx);
  const metadataMembers = projection?.members.metadata;
  if (metadataMembers && row.metadata !== undefined) {
    const picked = selectMembers(decodeJson(row.metadata, ctx), metadataMembers);
    if (picked !== undefined) record.metadata = picked as KvMetadata;
  }
  if (wants('version')) record.version = row.version;
  if (wants('createdAt')) record.createdAt = iso(row.createdAt);
  if (wants('updatedAt')) record.updatedAt = iso(row.updatedAt);
  if (wants('expiresAt') && row.expiresAt !== null) record.expiresAt = iso(row.expiresAt);
  if (wants('createdBy') && row.createdBy !== null) record.createdBy = row.createdBy;
  if (wants('updatedBy') && row.updatedBy !== null) record.updatedBy = row.updatedBy;
  return record;
}

/** The evaluator's view of a stored row (JSON parsed when present). */
export function viewOfRow(row: KvQueryRow, ctx: ErrorContext = {}): KvRecordView {
  return {
    key: row.key,
    namespace: row.namespace,
    version: row.version,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    value: row.value === undefined ? undefined : decodeJson(row.value, ctx),
    metadata: row.metadata === undefined ? undefined : decodeJson(row.metadata, ctx),
  };
}
