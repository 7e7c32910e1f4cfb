import pLimit from 'p-limit';
import type { KvQuery, KvStore } from '../../src/kv/kv-types.js';
import {
  CONCURRENT_READS,
  DEFAULT_PAGE,
  integer,
  MAX_PAGE,
  required,
  StudioRequestError,
  text,
} from './studio-params.js';
import type { StudioSource } from './studio-source.js';

/**
 * The studio API's KV routes (studio-api.ts routes to them): instances,
 * namespaces, the query box and one record, read through the `KvStore` API.
 */

function kvOf(source: StudioSource): KvStore {
  if (!source.kv)
    throw new StudioRequestError(404, `${source.label} holds no KV data (a json: directory has none)`);
  return source.kv;
}

async function requireInstance(kv: KvStore, instanceId: string) {
  const instance = await kv.getInstance(instanceId);
  if (!instance) throw new StudioRequestError(404, `KV instance ${JSON.stringify(instanceId)} not found`);
  return instance;
}

export async function kvInstances(source: StudioSource) {
  const kv = kvOf(source);
  const limit = pLimit(CONCURRENT_READS);
  const instances = await kv.listInstances();
  return {
    items: await Promise.all(
      instances.map((instance) =>
        limit(async () => ({ ...instance, records: await kv.getRecordCount(instance.id) })),
      ),
    ),
  };
}

export async function kvNamespaces(source: StudioSource, params: URLSearchParams) {
  const kv = kvOf(source);
  const instance = await requireInstance(kv, required(params, 'instance'));
  const limit = pLimit(CONCURRENT_READS);
  const names = await kv.getNamespaces(instance.id);
  return {
    instance,
    items: await Promise.all(
      names.map((namespace) =>
        limit(async () => ({ namespace, records: await kv.getRecordCount(instance.id, namespace) })),
      ),
    ),
  };
}

/** What the query box may hold: the DSL's `where`, `orderBy` and `select`; the page supplies the rest. */
const QUERY_BOX_FIELDS = ['where', 'orderBy', 'select'] as const;

function queryBox(params: URLSearchParams): Pick<KvQuery, (typeof QUERY_BOX_FIELDS)[number]> {
  const raw = text(params, 'q');
  if (raw === undefined) return { orderBy: { field: 'key' } };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new StudioRequestError(400, `the query is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new StudioRequestError(
      400,
      'the query must be a JSON object, e.g. {"where": [...], "orderBy": {...}}',
    );
  }
  const unknown = Object.keys(parsed).filter((key) => !(QUERY_BOX_FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0) {
    throw new StudioRequestError(
      400,
      `the query may hold ${QUERY_BOX_FIELDS.join(', ')}; not ${unknown.join(', ')} (the page gives the instance, namespace and paging)`,
    );
  }
  return parsed as Pick<KvQuery, (typeof QUERY_BOX_FIELDS)[number]>;
}

export async function kvQuery(source: StudioSource, params: URLSearchParams) {
  const kv = kvOf(source);
  const instance = await requireInstance(kv, required(params, 'instance'));
  const namespace = text(params, 'namespace');
  const limit = integer(params, 'limit', DEFAULT_PAGE, MAX_PAGE);
  const cursor = text(params, 'cursor');
  const box = queryBox(params);
  const result = await kv.query({
    ...box,
    from: namespace === undefined ? { instance: instance.id } : { instance: instance.id, namespace },
    limit,
    ...(cursor === undefined ? {} : { cursor }),
  });
  return { instance, namespace, query: box, ...result };
}

export async function kvRecord(source: StudioSource, params: URLSearchParams) {
  const kv = kvOf(source);
  const instance = await requireInstance(kv, required(params, 'instance'));
  const namespace = required(params, 'namespace');
  const key = required(params, 'key');
  const found = await kv.get(instance.id, namespace, key);
  if (!found.exists) {
    throw new StudioRequestError(
      404,
      `no live record ${JSON.stringify(key)} in namespace ${JSON.stringify(namespace)} of ${JSON.stringify(instance.id)}`,
    );
  }
  return { instance, record: found.record };
}
