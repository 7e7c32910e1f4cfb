import { randomUUID } from 'node:crypto';
import { type ErrorContext, ValidationError } from '../errors.js';
import { decodeJson } from '../json-codec.js';
import type { KvInstanceRow, KvKeyRef, KvRecordRow } from './kv-backend.js';
import { assertKvName, encodeMetadata } from './kv-records.js';

/**
 * What a KV write leaves: the options each write accepts, the parts of a
 * write read from them, and the next row of a record, which BackendKvStore
 * (kv-store.ts) computes inside the backend's atomic `mutate`.
 */

export const WRITE_OPTIONS = ['autoCreateInstance', 'metadata', 'actor', 'ttlMs', 'expiresAt'] as const;
export const SET_OPTIONS = [...WRITE_OPTIONS, 'ifVersion', 'ifAbsent'] as const;
export const INCREMENT_OPTIONS = [...WRITE_OPTIONS, 'ifVersion'] as const;

export interface RecordWrite {
  value: string;
  metadata?: Record<string, unknown>;
  /** `undefined` keeps the stored expiry, `null` clears it. */
  expiresAt: number | null | undefined;
  actor: string | null;
}

export function autoInstance(
  instanceId: string,
  auto: unknown,
  now: number,
  ctx: ErrorContext,
): KvInstanceRow | undefined {
  if (auto === undefined || auto === false) return undefined;
  if (auto !== true) throw new ValidationError('autoCreateInstance must be a boolean', ctx);
  return { id: instanceId, name: instanceId, description: '', createdAt: now, updatedAt: now };
}

export function actorOf(options: Record<string, unknown>, ctx: ErrorContext): string | null {
  if (options.actor === undefined) return null;
  assertKvName(options.actor, 'actor', ctx);
  return options.actor;
}

export function metadataOf(
  options: Record<string, unknown>,
  ctx: ErrorContext,
): Record<string, unknown> | undefined {
  if (options.metadata === undefined) return undefined;
  // A copy of what was checked: the caller may change its object while the write waits for a lock.
  return JSON.parse(encodeMetadata(options.metadata, ctx));
}

/** The row a write leaves: a new record when none is live, otherwise the next version of the live one. */
export function nextRow(
  instanceId: string,
  ref: KvKeyRef,
  live: KvRecordRow | undefined,
  write: RecordWrite,
  now: number,
  ctx: ErrorContext,
): KvRecordRow {
  if (!live) {
    return {
      instanceId,
      namespace: ref.namespace,
      key: ref.key,
      id: randomUUID(),
      value: write.value,
      metadata: write.metadata ? JSON.stringify(write.metadata) : '{}',
      version: 1,
      createdAt: now,
      updatedAt: now,
      expiresAt: write.expiresAt ?? null,
      createdBy: write.actor,
      updatedBy: write.actor,
    };
  }
  // Shallow merge: stored keys keep their place, new keys are appended, a
  // patched key replaces the stored value whole (null included).
  const metadata = write.metadata
    ? JSON.stringify({ ...decodeJson<Record<string, unknown>>(live.metadata, ctx), ...write.metadata })
    : live.metadata;
  return {
    ...live,
    value: write.value,
    metadata,
    version: live.version + 1,
    // Strictly increasing, so a rewrite within one millisecond still moves updatedAt.
    updatedAt: Math.max(now, live.updatedAt + 1),
    expiresAt: write.expiresAt === undefined ? live.expiresAt : write.expiresAt,
    updatedBy: write.actor,
  };
}
