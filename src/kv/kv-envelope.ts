import { randomUUID } from 'node:crypto';
import { isKodeStoreError, type KodeStoreErrorCode } from '../errors.js';
import { instanceNotFound } from './kv-records.js';
import type {
  JsonValue,
  KvInstance,
  KvQuery,
  KvQueryResult,
  KvRecord,
  KvSetOptions,
  KvStore,
} from './kv-types.js';

/**
 * The Codebolt-compatible facade (seeds 000, 001): the `codebolt.kvStore`
 * method names and positional arguments, answering with the seeds' response
 * envelope instead of throwing.
 */

/** The seeds' response shape. On failure `data` is absent and `error` says why; `code` is the stable error code. */
export interface KvEnvelope<T> {
  type: `kvStore.${string}`;
  success: boolean;
  data?: T;
  message?: string;
  error?: string;
  code?: KodeStoreErrorCode | 'KODE_INTERNAL';
  timestamp: string;
  requestId: string;
}

/** `codebolt.kvStore`, over any `KvStore`. No method ever throws or rejects. */
export interface KvEnvelopeApi {
  createInstance(name: string, description?: string): Promise<KvEnvelope<{ instance: KvInstance }>>;
  getInstance(instanceId: string): Promise<KvEnvelope<{ instance: KvInstance }>>;
  listInstances(): Promise<KvEnvelope<{ instances: KvInstance[] }>>;
  updateInstance(
    instanceId: string,
    updates: { name?: string; description?: string },
  ): Promise<KvEnvelope<{ instance: KvInstance }>>;
  deleteInstance(instanceId: string): Promise<KvEnvelope<{ deleted: boolean }>>;
  get(
    instanceId: string,
    namespace: string,
    key: string,
  ): Promise<KvEnvelope<{ exists: boolean; value: JsonValue | undefined; record?: KvRecord }>>;
  /**
   * The 5th argument is seed 001's `autoCreateInstance` flag, or the native
   * `set` options (`{ autoCreateInstance: true, metadata, ttlMs, ifVersion, ... }`).
   */
  set(
    instanceId: string,
    namespace: string,
    key: string,
    value: unknown,
    options?: boolean | KvSetOptions,
  ): Promise<KvEnvelope<{ record: KvRecord }>>;
  delete(instanceId: string, namespace: string, key: string): Promise<KvEnvelope<{ deleted: boolean }>>;
  deleteNamespace(instanceId: string, namespace: string): Promise<KvEnvelope<{ deletedCount: number }>>;
  query(query: KvQuery): Promise<KvEnvelope<{ result: KvQueryResult }>>;
  getNamespaces(instanceId: string): Promise<KvEnvelope<{ namespaces: string[] }>>;
  getRecordCount(instanceId: string, namespace?: string): Promise<KvEnvelope<{ count: number }>>;
}

async function respond<T>(operation: string, body: () => Promise<T>): Promise<KvEnvelope<T>> {
  const type = `kvStore.${operation}` as const;
  const requestId = randomUUID();
  try {
    const data = await body();
    return { type, success: true, data, timestamp: new Date().toISOString(), requestId };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      type,
      success: false,
      error: message,
      code: isKodeStoreError(error) ? error.code : 'KODE_INTERNAL',
      timestamp: new Date().toISOString(),
      requestId,
    };
  }
}

/**
 * Wraps a `KvStore` in Codebolt's `kvStore` API.
 *
 * ```ts
 * const kvStore = createKvEnvelopeApi(createKvStore());
 * const created = await kvStore.createInstance('user-sessions', 'Stores active user session data');
 * await kvStore.set(created.data!.instance.id, 'sessions', 'user-123', { loggedIn: true });
 * const result = await kvStore.get(created.data!.instance.id, 'sessions', 'user-123');
 * if (result.success && result.data?.exists) console.log(result.data.value);
 * ```
 */
export function createKvEnvelopeApi(kv: KvStore): KvEnvelopeApi {
  return {
    createInstance: (name, description) =>
      respond('createInstance', async () => ({ instance: await kv.createInstance({ name, description }) })),
    getInstance: (instanceId) =>
      respond('getInstance', async () => {
        const instance = await kv.getInstance(instanceId);
        if (!instance) {
          // Codebolt reports an unknown instance as a failure; the code says which one.
          throw instanceNotFound(instanceId, { operation: 'kvStore.getInstance' });
        }
        return { instance };
      }),
    listInstances: () => respond('listInstances', async () => ({ instances: await kv.listInstances() })),
    updateInstance: (instanceId, updates) =>
      respond('updateInstance', async () => ({ instance: await kv.updateInstance(instanceId, updates) })),
    deleteInstance: (instanceId) =>
      respond('deleteInstance', async () => ({ deleted: await kv.deleteInstance(instanceId) })),
    get: (instanceId, namespace, key) =>
      respond('get', async () => {
        const result = await kv.get(instanceId, namespace, key);
        return result.exists
          ? { exists: true, value: result.value, record: result.record }
          : { exists: false, value: undefined };
      }),
    set: (instanceId, namespace, key, value, options) =>
      respond('set', async () => ({
        // Anything but a flag goes to the store as options, which refuses what is not.
        record: await kv.set(
          instanceId,
          namespace,
          key,
          value as JsonValue,
          typeof options === 'boolean' ? { autoCreateInstance: options } : options,
        ),
      })),
    delete: (instanceId, namespace, key) =>
      respond('delete', async () => ({ deleted: await kv.delete(instanceId, namespace, key) })),
    deleteNamespace: (instanceId, namespace) =>
      respond('deleteNamespace', async () => ({
        deletedCount: await kv.deleteNamespace(instanceId, namespace),
      })),
    query: (query) => respond('query', async () => ({ result: await kv.query(query) })),
    getNamespaces: (instanceId) =>
      respond('getNamespaces', async () => ({ namespaces: await kv.getNamespaces(instanceId) })),
    getRecordCount: (instanceId, namespace) =>
      respond('getRecordCount', async () => ({ count: await kv.getRecordCount(instanceId, namespace) })),
  };
}
