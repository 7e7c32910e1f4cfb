import { randomUUID } from 'node:crypto';
import type { KvInstanceRow, KvMutationPlan, KvQueryRow, KvRecordRow } from '../../src/kv/kv-backend.js';
import type { MongoDocument } from './mongo-config.js';
import { bsonSize, documentTooLarge, MAX_STORED_DOCUMENT_BYTES } from './mongo-documents.js';
import type { HeldBatch, UndoEntry } from './mongo-kv-batches.js';

/**
 * The KV layer's documents (`<prefix>kv_instances`, `<prefix>kv_records`):
 * rows to documents and back, the size check made before anything is
 * written, and the writes a mutation plan becomes (see mongo-kv.ts for why
 * the documents look as they do).
 */

/** `<prefix>kv_instances`: `_id` = instance id. */
export interface KvInstanceDocument {
  _id: string;
  name: string;
  description: string;
  createdAt: number;
  updatedAt: number;
  incarnation: string;
}

export function toKvInstanceDocument(row: KvInstanceRow, incarnation: string): KvInstanceDocument {
  return {
    _id: row.id,
    name: row.name,
    description: row.description,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    incarnation,
  };
}

export function fromKvInstanceDocument(doc: MongoDocument): KvInstanceRow {
  return {
    id: String(doc._id),
    name: String(doc.name),
    description: String(doc.description),
    createdAt: Number(doc.createdAt),
    updatedAt: Number(doc.updatedAt),
  };
}

/** `<prefix>kv_records`: one document per record. */
export interface KvRecordDocument extends KvRecordRow {
  incarnation: string;
  /** Random per write: the standalone server's optimistic concurrency token. */
  rev: string;
  /** Without transactions: the holder of the multi-record write this row belongs to, while it runs. */
  batch?: string;
}

export function toKvRecordDocument(row: KvRecordRow, incarnation: string, rev: string): KvRecordDocument {
  return {
    instanceId: row.instanceId,
    incarnation,
    namespace: row.namespace,
    key: row.key,
    id: row.id,
    value: row.value,
    metadata: row.metadata,
    version: row.version,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    expiresAt: row.expiresAt,
    createdBy: row.createdBy,
    updatedBy: row.updatedBy,
    rev,
  };
}

/** A stored record back as a row; `value` / `metadata` only when the document was read with them. */
export function fromKvRecordDocument(doc: MongoDocument): KvQueryRow {
  const row: KvQueryRow = {
    instanceId: String(doc.instanceId),
    namespace: String(doc.namespace),
    key: String(doc.key),
    id: String(doc.id),
    version: Number(doc.version),
    createdAt: Number(doc.createdAt),
    updatedAt: Number(doc.updatedAt),
    expiresAt: doc.expiresAt === null || doc.expiresAt === undefined ? null : Number(doc.expiresAt),
    createdBy: typeof doc.createdBy === 'string' ? doc.createdBy : null,
    updatedBy: typeof doc.updatedBy === 'string' ? doc.updatedBy : null,
  };
  if (typeof doc.value === 'string') row.value = doc.value;
  if (typeof doc.metadata === 'string') row.metadata = doc.metadata;
  return row;
}

/** The map key of a record's row: its namespace and key. */
export function refKey(namespace: string, key: string): string {
  return JSON.stringify([namespace, key]);
}

/** A stored row as read for a mutation: the row, and what identifies this exact version of it. */
export interface CurrentRow {
  row: KvRecordRow;
  _id: unknown;
  rev: string;
  doc: MongoDocument;
}

// ---- sizes -------------------------------------------------------------------

/** Stands in for the incarnation and revision ids (random UUIDs) when a record's document is measured. */
const UUID_SIZED = '00000000-0000-0000-0000-000000000000';

/**
 * Refuses rows whose document would not fit in MongoDB, before anything is
 * written, naming the field to shrink: the value, the metadata, or the two
 * together.
 */
export function assertRecordsFit(rows: readonly KvRecordRow[]): void {
  for (const row of rows) {
    // Names, keys and ids are short (at most 512 bytes each): only a long value or metadata can matter.
    if ((row.value.length + row.metadata.length) * 3 + 16 * 1024 <= MAX_STORED_DOCUMENT_BYTES) continue;
    const size = (record: KvRecordRow) => bsonSize(toKvRecordDocument(record, UUID_SIZED, UUID_SIZED));
    const bytes = size(row);
    if (bytes <= MAX_STORED_DOCUMENT_BYTES) continue;
    const field =
      size({ ...row, metadata: '' }) > MAX_STORED_DOCUMENT_BYTES
        ? 'value'
        : size({ ...row, value: '' }) > MAX_STORED_DOCUMENT_BYTES
          ? 'metadata'
          : 'value and metadata';
    throw documentTooLarge(
      `${field} of the record ${JSON.stringify(row.namespace)}/${JSON.stringify(row.key)}`,
      bytes,
      { backend: 'mongo' },
      field,
    );
  }
}

// ---- writes ------------------------------------------------------------------

/** A batch attempt: its undo log, its ordered steps, and how many replacements and removals must match. */
export interface BatchSteps {
  undo: UndoEntry[];
  operations: MongoDocument[];
  replaced: number;
  removed: number;
}

/**
 * The steps of one batch attempt: removals, then whole-row writes, each
 * conditional on the version read (`rev`) or on the key being absent (the
 * unique index), each row marked with the batch's holder; and the undo
 * entry of each.
 */
export function batchSteps(
  held: Pick<HeldBatch, 'owner' | 'instanceId' | 'incarnation'>,
  current: ReadonlyMap<string, Pick<CurrentRow, '_id' | 'rev' | 'doc'>>,
  plan: KvMutationPlan,
): BatchSteps {
  const { owner: batch, instanceId, incarnation } = held;
  const steps: BatchSteps = { undo: [], operations: [], replaced: 0, removed: 0 };
  // Grouped by kind (removals, replacements, insertions), so the driver sends
  // at most three commands; their order across keys does not matter.
  const inserts: MongoDocument[] = [];
  const replaces: MongoDocument[] = [];
  const removedKeys = new Set<string>();
  for (const ref of plan.remove) {
    const existing = current.get(refKey(ref.namespace, ref.key));
    removedKeys.add(refKey(ref.namespace, ref.key));
    if (!existing) continue;
    steps.undo.push({ batch, instanceId, incarnation, ...ref, rev: null, prev: existing.doc });
    steps.operations.push({ deleteOne: { filter: { _id: existing._id, rev: existing.rev } } });
    steps.removed++;
  }
  for (const row of plan.put) {
    const key = refKey(row.namespace, row.key);
    const rev = randomUUID();
    const document = { ...toKvRecordDocument(row, incarnation, rev), batch };
    const existing = removedKeys.has(key) ? undefined : current.get(key);
    const ref = { namespace: row.namespace, key: row.key };
    steps.undo.push({ batch, instanceId, incarnation, ...ref, rev, prev: existing?.doc ?? null });
    if (existing) {
      replaces.push({
        replaceOne: { filter: { _id: existing._id, rev: existing.rev }, replacement: document },
      });
    } else {
      inserts.push({ insertOne: { document } });
    }
  }
  steps.replaced = replaces.length;
  steps.operations.push(...replaces, ...inserts);
  return steps;
}

/** A plan as one ordered bulk write: removals, then whole-row upserts. */
export function planOperations(
  instanceId: string,
  incarnation: string,
  plan: KvMutationPlan,
): MongoDocument[] {
  const operations: MongoDocument[] = [];
  for (const ref of plan.remove) {
    operations.push({
      deleteOne: { filter: { instanceId, incarnation, namespace: ref.namespace, key: ref.key } },
    });
  }
  for (const row of plan.put) {
    operations.push({
      replaceOne: {
        filter: { instanceId, incarnation, namespace: row.namespace, key: row.key },
        replacement: toKvRecordDocument(row, incarnation, randomUUID()),
        upsert: true,
      },
    });
  }
  return operations;
}
