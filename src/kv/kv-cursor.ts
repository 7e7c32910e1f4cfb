import { createHash } from 'node:crypto';
import { QueryError } from '../errors.js';
import type { KvQueryPlan, KvSortPosition } from './kv-query.js';

/**
 * Cursors for keyset pagination. A cursor carries the sort position of the
 * last record of a page and a fingerprint of the query it belongs to, so the
 * next page starts strictly after that record even when records were written
 * in between (no skipped or repeated records, unlike `offset`), and a cursor
 * handed to a different query is refused instead of silently misread.
 */

const CURSOR_VERSION = 1;

interface CursorBody {
  c: number;
  f: string;
  v: Array<number | string>;
  k: string;
  n: string;
}

/** What identifies "the same query" for a cursor: scope, conditions and order (not limit, select). */
export function queryFingerprint(
  plan: Pick<KvQueryPlan, 'instanceId' | 'namespace' | 'where' | 'orderBy'>,
): string {
  const canonical = JSON.stringify([plan.instanceId, plan.namespace ?? null, plan.where, plan.orderBy]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

/** The opaque `nextCursor` for a position of a query (base64url JSON). */
export function encodeCursor(fingerprint: string, position: KvSortPosition): string {
  const body: CursorBody = {
    c: CURSOR_VERSION,
    f: fingerprint,
    v: position.vector,
    k: position.key,
    n: position.namespace,
  };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

function malformed(): never {
  throw new QueryError('cursor is malformed; pass the nextCursor of a previous page unchanged');
}

/** The position a cursor carries; a QueryError when it is damaged or belongs to another query. */
export function decodeCursor(cursor: string, fingerprint: string, vectorLength: number): KvSortPosition {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    malformed();
  }
  if (typeof body !== 'object' || body === null) malformed();
  const { c, f, v, k, n } = body as Partial<CursorBody>;
  if (c !== CURSOR_VERSION || typeof f !== 'string' || typeof k !== 'string' || typeof n !== 'string')
    malformed();
  if (f !== fingerprint) {
    throw new QueryError(
      'cursor belongs to a different query (instance, namespace, where or orderBy changed)',
    );
  }
  if (!Array.isArray(v) || v.length !== vectorLength) malformed();
  if (!v.every((item) => typeof item === 'string' || (typeof item === 'number' && Number.isFinite(item))))
    malformed();
  return { vector: v, key: k, namespace: n };
}
