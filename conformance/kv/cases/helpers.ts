import type { KvQueryResult, KvRecord, KvStore } from '../../../src/kv/kv-types.js';
import { check } from '../../runner/assertions.js';

/** `namespace/key` of each record, in order: the identity a query answer is compared by. */
export function keysOf(result: KvQueryResult | Array<Partial<KvRecord>>): string[] {
  const records = Array.isArray(result) ? result : result.records;
  return records.map((record) => `${record.namespace}/${record.key}`);
}

/** Fails unless `text` is an ISO-8601 instant (what every record and instance time is). */
export function checkIso(text: unknown, what: string): number {
  check(
    typeof text === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(text),
    `${what} must be an ISO-8601 string, got ${String(text)}`,
  );
  return Date.parse(text);
}

/** Writes `values` (key → value) into one namespace, one after another, moving the clock 5 ms between writes. */
export async function seed(
  kv: KvStore,
  instanceId: string,
  namespace: string,
  values: Record<string, unknown>,
  advance?: (ms: number) => void,
): Promise<Record<string, KvRecord>> {
  const written: Record<string, KvRecord> = {};
  for (const [key, value] of Object.entries(values)) {
    written[key] = await kv.set(instanceId, namespace, key, value as never);
    advance?.(5);
  }
  return written;
}

/** The record fields `set` returns for a record without TTL or actor. */
export const PLAIN_RECORD_FIELDS = [
  'id',
  'instanceId',
  'namespace',
  'key',
  'value',
  'metadata',
  'version',
  'createdAt',
  'updatedAt',
];
