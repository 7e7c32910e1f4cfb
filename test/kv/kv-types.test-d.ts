/**
 * Type-level test of the KV API (checked by `tsc --noEmit`, no runtime part):
 * what code ported from the seeds may rely on without casts.
 */
import {
  createDataStore,
  createKvEnvelopeApi,
  createKvStore,
  type JsonValue,
  type KvQuery,
} from '../../src/index.js';

const data = createDataStore(createKvStore(), { userId: 'u', agentName: 'a' });

// DataStore.get with a default never answers undefined (seed 002: `get(key, default)`).
export const withDefault: Promise<{ timeout: number }> = data.get('settings', { timeout: 30 });
export const numberDefault: Promise<number> = data.get<number>('count', 0);
// Without a default it may.
export const withoutDefault: Promise<JsonValue | undefined> = data.get('settings');
// @ts-expect-error without a default the value may be undefined
export const notUndefined: Promise<JsonValue> = data.get('settings');

// The envelope's set takes seed 001's flag and the native options object alike.
const kvStore = createKvEnvelopeApi(createKvStore());
export const flag = kvStore.set('id', 'ns', 'k', 1, true);
export const options = kvStore.set('id', 'ns', 'k', 1, { autoCreateInstance: true, metadata: { by: 'me' } });
// @ts-expect-error an option the native set does not know
export const misspelt = kvStore.set('id', 'ns', 'k', 1, { autoCreate: true });

// select takes record fields and dot paths into value and metadata (seed 000).
export const selectPaths: KvQuery = {
  from: { instance: 'id' },
  select: ['key', 'value.name', 'metadata.source'],
};
// @ts-expect-error a path outside value and metadata
export const selectElsewhere: KvQuery = { from: { instance: 'id' }, select: ['secret.token'] };
