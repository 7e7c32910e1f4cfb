/**
 * kode-store: persistence for KODE agents.
 *
 * The backends live in their own entry points (`kode-store/sqlite`,
 * `kode-store/postgres`, `kode-store/mongo`) so that an application installs
 * only the driver it uses; this entry point holds what they share.
 */

export { assertAgentId, MAX_AGENT_ID_LENGTH } from './agent/agent-id.js';
export { MemoryDatabase, MemoryStore, type MemoryStoreOptions } from './agent/memory-store.js';
export {
  DEFAULT_QUERY_LIMIT,
  normalizeMessageFilters,
  normalizeSessionFilters,
  normalizeToolCallFilters,
} from './agent/query-filters.js';
export {
  type CompactOptions,
  type CompactResult,
  type EventRetention,
  type PruneCounts,
  type PruneOptions,
  type PrunePolicy,
  type PruneProgress,
  type PruneResult,
  type RetentionStore,
  type SnapshotRetention,
  supportsRetention,
} from './agent/retention.js';
export type {
  RetentionRound,
  RetentionSchedule,
  RetentionScheduleMetrics,
  RetentionScheduleOptions,
} from './agent/retention-schedule.js';
export { createExtendedStore, type KodeStore } from './config/create-extended-store.js';
export {
  DEFAULT_FILE_STORE_PATH,
  DEFAULT_SQLITE_PATH,
  type EventStorage,
  type ExtendedStoreConfig,
  type MemoryStoreConfig,
  type MongoStoreConfig,
  type PostgresStoreConfig,
  type SqliteStoreConfig,
  storeConfigFromEnv,
  storeConfigFromLocation,
} from './config/store-config.js';
export * from './errors.js';
export { type EventMode, EventModeError } from './hybrid/event-modes.js';
export { DEFAULT_MAX_OPEN_FILES, FileEventLog, type FileEventLogOptions } from './hybrid/file-event-log.js';
export { decodeJson, type EncodeMode, encodeJson, MAX_JSON_DEPTH } from './json-codec.js';
export * from './kv/index.js';
export {
  AGENT_COUNT_KINDS,
  AgentBundle,
  type AgentCounts,
  EXPORT_FORMAT,
  EXPORT_FORMAT_VERSION,
  ExportFormatError,
  type ExportHeader,
  type ExportItem,
  type ExportRecord,
  exportAgentRecords,
  exportHeader,
  formatExportLine,
  parseExportHeader,
  parseExportRecord,
  type ReadableAgentStore,
  readExport,
} from './transfer/export-format.js';
export type { JsonStoreEventOrder } from './transfer/json-store-events.js';
export { POOL_META_ID } from './transfer/json-store-layout.js';
export {
  describeJsonStoreProblem,
  JsonStoreCorruptFileError,
  type JsonStoreProblem,
  type JsonStoreProblemKind,
} from './transfer/json-store-problems.js';
export {
  type JsonStoreAgentSummary,
  JsonStoreReader,
  type JsonStoreReaderOptions,
} from './transfer/json-store-reader.js';
export * from './types.js';
