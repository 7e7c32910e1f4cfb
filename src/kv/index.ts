/** The KV namespace API: the store factory, its backend contract, the envelope facade and the DataStore proxy. */

export { compareCodePoints } from '../strings.js';
export {
  createDataStore,
  DATA_STORE_INSTANCE_PREFIX,
  type DataStore,
  type DataStoreOptions,
  type DataStoreQuery,
  DEFAULT_DATA_STORE_NAMESPACE,
} from './data-store.js';
export {
  isLive,
  type KvBackend,
  type KvInstanceRow,
  type KvKeyRef,
  type KvMutation,
  type KvMutationPlan,
  type KvQueryRow,
  type KvRecordRow,
} from './kv-backend.js';
export { createKvEnvelopeApi, type KvEnvelope, type KvEnvelopeApi } from './kv-envelope.js';
export {
  KV_QUERY_LIMITS,
  type KvColumn,
  type KvCompareOperator,
  type KvFieldRef,
  type KvPredicate,
  type KvQueryPlan,
  type KvRecordView,
  type KvScalar,
  type KvSortKey,
  type KvSortPosition,
  normalizeKvQuery,
} from './kv-query.js';
export { evaluatePlan, matchesPredicate } from './kv-query-eval.js';
export { KV_NAME_LIMITS } from './kv-records.js';
export { createKvStore, KV_MAX_BATCH, type KvStoreOptions } from './kv-store.js';
export type * from './kv-types.js';
export { MemoryKvBackend } from './memory-kv.js';
