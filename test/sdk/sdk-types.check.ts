/**
 * Type-level check against the real KODE SDK 2.7.5 (compiled by
 * test/sdk/sdk-types.test.ts when KODE_SDK_TARBALL is set; excluded from the
 * project's own typecheck, which must pass without the SDK). Every type of
 * src/types.ts that the SDK also declares must be the same type, property for
 * property (an extra or missing optional field counts), and our stores must be
 * the SDK's `Store` / `QueryableStore` / `ExtendedStore`. The `@ts-expect-error`
 * lines at the end prove that these checks can fail.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: the helpers compare types whatever they hold.
import type * as Sdk from '@shareai-lab/kode-sdk';
import type * as SdkStore from '@shareai-lab/kode-sdk/dist/infra/store/types';
import type { MongoStore } from '../../adapters/mongo/index.js';
import type { PostgresStore } from '../../adapters/postgres/index.js';
import type { SqliteStore } from '../../adapters/sqlite/index.js';
import type { MemoryStore } from '../../src/index.js';
import type * as Ours from '../../src/types.js';

/** The same object types written either way (interfaces, intersections), compared property by property. */
type Flatten<T> = T extends (...args: any[]) => any
  ? T
  : T extends readonly (infer E)[]
    ? Flatten<E>[]
    : T extends object
      ? { [K in keyof T]: Flatten<T[K]> }
      : T;
type Same<A, B> =
  (<T>() => T extends Flatten<A> ? 1 : 2) extends <T>() => T extends Flatten<B> ? 1 : 2 ? true : false;
/** Compiles only when `A` and `B` are the same type. */
function same<A, B>(proof: Same<A, B>): void {
  void proof;
}
/** Compiles only when a value of type `From` can be used as a `To`. */
function accepts<To, From extends To>(value?: From): To | undefined {
  return value;
}

// ---- messages and content blocks -------------------------------------------------------------
same<Ours.MessageRole, Sdk.MessageRole>(true);
same<Ours.ContentBlock, Sdk.ContentBlock>(true);
same<Ours.ReasoningContentBlock, Sdk.ReasoningContentBlock>(true);
same<Ours.ImageContentBlock, Sdk.ImageContentBlock>(true);
same<Ours.AudioContentBlock, Sdk.AudioContentBlock>(true);
same<Ours.VideoContentBlock, Sdk.VideoContentBlock>(true);
same<Ours.FileContentBlock, Sdk.FileContentBlock>(true);
same<Extract<Ours.ContentBlock, { type: 'text' }>, Extract<Sdk.ContentBlock, { type: 'text' }>>(true);
same<Ours.MessageMetadata, Sdk.MessageMetadata>(true);
same<Ours.Message, Sdk.Message>(true);

// ---- tool calls, events, agent state --------------------------------------------------------
same<Ours.Bookmark, Sdk.Bookmark>(true);
same<Ours.AgentChannel, Sdk.AgentChannel>(true);
same<Ours.AgentRuntimeState, Sdk.AgentRuntimeState>(true);
same<Ours.BreakpointState, Sdk.BreakpointState>(true);
same<Ours.ToolCallState, Sdk.ToolCallState>(true);
same<Ours.ToolCallApproval, Sdk.ToolCallApproval>(true);
same<Ours.ToolCallAuditEntry, Sdk.ToolCallAuditEntry>(true);
same<Ours.ToolCallRecord, Sdk.ToolCallRecord>(true);
same<Ours.ToolCallSnapshot, Sdk.ToolCallSnapshot>(true);
same<Ours.ProgressEvent, Sdk.ProgressEvent>(true);
same<Ours.ControlEvent, Sdk.ControlEvent>(true);
same<Ours.MonitorEvent, Sdk.MonitorEvent>(true);
same<Ours.AgentEvent, Sdk.AgentEvent>(true);
same<Ours.Timeline, Sdk.Timeline>(true);
same<Ours.SnapshotId, Sdk.SnapshotId>(true);
same<Ours.Snapshot, Sdk.Snapshot>(true);
same<Ours.AgentInfo, Sdk.AgentInfo>(true);
same<Ours.TodoItem, Sdk.TodoItem>(true);
same<Ours.TodoSnapshot, Sdk.TodoSnapshot>(true);

// ---- the store's records and results --------------------------------------------------------
same<Ours.HistoryWindow, SdkStore.HistoryWindow>(true);
same<Ours.CompressionRecord, SdkStore.CompressionRecord>(true);
same<Ours.RecoveredFile, SdkStore.RecoveredFile>(true);
same<Ours.MediaCacheRecord, SdkStore.MediaCacheRecord>(true);
same<Ours.SessionInfo, SdkStore.SessionInfo>(true);
same<Ours.AgentStats, SdkStore.AgentStats>(true);
same<Ours.ConsistencyCheckResult, SdkStore.ConsistencyCheckResult>(true);
same<Ours.LockReleaseFn, SdkStore.LockReleaseFn>(true);
// Ours say more (an error text, percentiles, an event total), all optional: the SDK's fit ours and ours fit the SDK's.
accepts<Ours.StoreHealthStatus, SdkStore.StoreHealthStatus>();
accepts<SdkStore.StoreHealthStatus, Ours.StoreHealthStatus>();
accepts<Ours.StoreMetrics, SdkStore.StoreMetrics>();
accepts<SdkStore.StoreMetrics, Ours.StoreMetrics>();
// Our filters accept more (dates as Date or ISO text, seed names, more fields): every SDK filter is one of ours.
accepts<Ours.SessionFilters, SdkStore.SessionFilters>();
accepts<Ours.MessageFilters, SdkStore.MessageFilters>();
accepts<Ours.ToolCallFilters, SdkStore.ToolCallFilters>();

// ---- the stores -----------------------------------------------------------------------------
accepts<Sdk.Store, Ours.Store>();
accepts<Ours.Store, Sdk.Store>();
accepts<SdkStore.QueryableStore, Ours.QueryableStore>();
accepts<SdkStore.ExtendedStore, Ours.ExtendedStore>();
accepts<SdkStore.ExtendedStore, MemoryStore>();
accepts<SdkStore.ExtendedStore, SqliteStore>();
accepts<SdkStore.ExtendedStore, PostgresStore>();
accepts<SdkStore.ExtendedStore, MongoStore>();
// What the SDK hands a store is what our stores take, and what they give back is what the SDK reads.
export function roundTrip(store: SqliteStore, sdkMessages: Sdk.Message[], sdkRecords: Sdk.ToolCallRecord[]) {
  void store.saveMessages('agt', sdkMessages);
  void store.saveToolCallRecords('agt', sdkRecords);
  return async (): Promise<[Sdk.Message[], Sdk.ToolCallRecord[], Sdk.AgentInfo | undefined]> => [
    await store.loadMessages('agt'),
    await store.loadToolCallRecords('agt'),
    await store.loadInfo('agt'),
  ];
}
// The store an application gives `Agent.create` / `AgentPool`.
accepts<
  Sdk.AgentDependencies['store'],
  Awaited<ReturnType<typeof import('../../src/index.js').createExtendedStore>>
>();

// ---- the checks can fail --------------------------------------------------------------------
// @ts-expect-error a text block without `meta` is not the SDK's text block
same<{ type: 'text'; text: string }, Extract<Sdk.ContentBlock, { type: 'text' }>>(true);
// @ts-expect-error a content-block union without the video block is not the SDK's
same<Exclude<Ours.ContentBlock, Ours.VideoContentBlock>, Sdk.ContentBlock>(true);
// @ts-expect-error a message whose role the SDK does not know is not an SDK message
export const badRole: Sdk.Message = { role: 'tool', content: [] };
