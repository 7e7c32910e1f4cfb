import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { compareCodePoints } from '../strings.js';
import type {
  AgentInfo,
  CompressionRecord,
  ConsistencyCheckResult,
  HistoryWindow,
  MediaCacheRecord,
  Message,
  ReadEventsOptions,
  RecoveredFile,
  Snapshot,
  StoreHealthStatus,
  Timeline,
  TodoSnapshot,
  ToolCallRecord,
} from '../types.js';
import { type JsonStoreEventOrder, readJsonStoreEvents } from './json-store-events.js';
import {
  findJsonStoreAgents,
  JSON_STORE_DATA_DIRECTORIES,
  JSON_STORE_FILES,
  type JsonStoreAgentDirectory,
  type JsonStoreLayout,
  POOL_META_ID,
} from './json-store-layout.js';
import { JsonStoreCorruptFileError, type JsonStoreProblem } from './json-store-problems.js';

/** Options of `new JsonStoreReader(root, options)`. */
export interface JsonStoreReaderOptions {
  /**
   * What a corrupt file (or torn event line) does: `throw` (default) raises a
   * `JsonStoreCorruptFileError` naming it; `skip` leaves it out, reads the
   * rest, and records it in `reader.problems`. Either way nothing is silent.
   * @example new JsonStoreReader('./data/store', { onCorrupt: 'skip' })
   */
  onCorrupt?: 'throw' | 'skip';
  /** How the per-channel event logs are merged; see `JsonStoreEventOrder`. Default `timestamp`. */
  eventOrder?: JsonStoreEventOrder;
}

type Report = (problem: JsonStoreProblem, cause?: unknown) => void;
type Shape = 'object' | 'array';

function shapeOf(value: unknown): Shape | 'other' {
  if (Array.isArray(value)) return 'array';
  return typeof value === 'object' && value !== null ? 'object' : 'other';
}

/** Counts of what one agent holds, after deduplication. */
export interface JsonStoreAgentSummary {
  agentId: string;
  messages: number;
  toolCalls: number;
  events: number;
  /** Byte-identical event lines that were dropped. */
  duplicateEventLines: number;
  historyWindows: number;
  compressionRecords: number;
  recoveredFiles: number;
  mediaCache: number;
  snapshots: number;
  todos: boolean;
  info: boolean;
}

const RECOVERED_HEADER = [/^# Recovered: (.+)$/, /^# Timestamp: (\S+)$/, /^# Mtime: (\S+)$/] as const;

/**
 * A read-only view of a directory written by the KODE SDK's `JSONStore`,
 * with the read methods of the SDK's `Store` (so anything that copies from a
 * store can copy from it). It never writes, renames or deletes a file: the
 * SDK itself would append leftover WALs to the logs on open; this reader
 * reads them where they are.
 *
 * What it handles that the SDK's own `JSONStore` does not:
 * - forks nested as sub-directories (`agt-X/fork-123` is an agent id);
 *   `__pool_meta__` is the pool's record, not an agent (`loadPoolRecord`);
 * - leftover `events/<channel>.wal` lines are part of the stream, and a
 *   leftover `runtime/messages.wal` / `tool-calls.wal` is newer than the
 *   `.json` beside it (the SDK writes the WAL first), so it wins;
 * - the three channel logs merged into one ordered stream, byte-identical
 *   duplicate lines dropped (see `readJsonStoreEvents`);
 * - a recovered file's fractional `# Mtime:` kept as written;
 * - corrupt files reported with their path instead of silently skipped.
 *
 * The layout is read once, on first use; call `refresh()` to see agents
 * created since.
 *
 * @example
 * const reader = new JsonStoreReader('./data/store', { onCorrupt: 'skip' });
 * for (const id of await reader.list()) console.log(id, (await reader.loadMessages(id)).length);
 * console.log(reader.problems);
 */
export class JsonStoreReader {
  /** Every corrupt file or line met so far, once each, in the order met. */
  readonly problems: JsonStoreProblem[] = [];

  private readonly onCorrupt: 'throw' | 'skip';
  private readonly eventOrder: JsonStoreEventOrder;
  private readonly seenProblems = new Set<string>();
  private layout: Promise<JsonStoreLayout> | undefined;

  constructor(
    readonly root: string,
    options: JsonStoreReaderOptions = {},
  ) {
    this.onCorrupt = options.onCorrupt ?? 'throw';
    this.eventOrder = options.eventOrder ?? 'timestamp';
  }

  /**
   * Refuses a directory that is not a JSONStore: one holding no agent
   * directory (a directory with `meta.json`, `runtime/`, `events/`,
   * `history/` or `snapshots/`) and no pool record, such as an empty or
   * mistyped path. A `ConfigError` naming the directory, so a wrong path is
   * never read as a store without agents.
   */
  async assertJsonStore(): Promise<void> {
    const { agents, poolMetaDir } = await this.walk();
    if (agents.length > 0 || poolMetaDir !== undefined) return;
    throw new ConfigError(
      `${this.root} holds no JSONStore data: no agent directory (one with ${JSON_STORE_FILES.info}, ` +
        `${[...JSON_STORE_DATA_DIRECTORIES].map((name) => `${name}/`).join(', ')}) and no ${POOL_META_ID}/`,
      { backend: 'json', variable: 'location' },
    );
  }

  /** Forgets the directory walk, so the next call sees agents added or removed since. */
  refresh(): void {
    this.layout = undefined;
  }

  // ---- the read side of the SDK's Store --------------------------------

  /** Agent ids (nested forks included, `__pool_meta__` excluded), sorted; `prefix` matches literally. */
  async list(prefix?: string): Promise<string[]> {
    const { agents } = await this.walk();
    const ids = agents.map((agent) => agent.agentId);
    return prefix === undefined ? ids : ids.filter((id) => id.startsWith(prefix));
  }

  /** True for a listed agent, and for `__pool_meta__` when the pool left its record. */
  async exists(agentId: string): Promise<boolean> {
    if ((await this.agentDir(agentId)) !== undefined) return true;
    return agentId === POOL_META_ID && (await this.walk()).poolMetaDir !== undefined;
  }

  /**
   * The agent's `meta.json`. `loadInfo('__pool_meta__')` returns the pool's
   * record, as the SDK's `AgentPool.resumeFromShutdown()` asks for it.
   */
  async loadInfo(agentId: string): Promise<AgentInfo | undefined> {
    if (agentId === POOL_META_ID && (await this.agentDir(agentId)) === undefined)
      return this.loadPoolRecord();
    return this.readAgentJson<AgentInfo>(agentId, JSON_STORE_FILES.info, 'object', this.report);
  }

  async loadMessages(agentId: string): Promise<Message[]> {
    return this.readRuntimeList<Message>(agentId, 'messages', this.report);
  }

  async loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]> {
    return this.readRuntimeList<ToolCallRecord>(agentId, 'toolCalls', this.report);
  }

  async loadTodos(agentId: string): Promise<TodoSnapshot | undefined> {
    return this.readAgentJson<TodoSnapshot>(agentId, JSON_STORE_FILES.todos, 'object', this.report);
  }

  async loadMediaCache(agentId: string): Promise<MediaCacheRecord[]> {
    return (
      (await this.readAgentJson<MediaCacheRecord[]>(
        agentId,
        JSON_STORE_FILES.mediaCache,
        'array',
        this.report,
      )) ?? []
    );
  }

  /**
   * The agent's events in stream order, duplicates dropped; `since` keeps
   * entries with `bookmark.seq > since.seq`, `channel` those of one channel.
   */
  readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
    const reader = this;
    return {
      async *[Symbol.asyncIterator]() {
        const { entries } = await reader.readAllEvents(agentId, reader.report);
        for (const entry of entries) {
          if (opts.since && !(entry.bookmark.seq > opts.since.seq)) continue;
          if (opts.channel && entry.event.channel !== opts.channel) continue;
          yield entry;
        }
      },
    };
  }

  async loadHistoryWindows(agentId: string): Promise<HistoryWindow[]> {
    return this.readTimestampedDir<HistoryWindow>(agentId, JSON_STORE_FILES.historyWindowsDir, this.report);
  }

  async loadCompressionRecords(agentId: string): Promise<CompressionRecord[]> {
    return this.readTimestampedDir<CompressionRecord>(agentId, JSON_STORE_FILES.compressionsDir, this.report);
  }

  async loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]> {
    return this.readRecoveredFiles(agentId, this.report);
  }

  /** Snapshots oldest first (by `createdAt`, then file name). */
  async listSnapshots(agentId: string): Promise<Snapshot[]> {
    return this.readSnapshots(agentId, this.report);
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined> {
    return (await this.listSnapshots(agentId)).find((snapshot) => snapshot.id === snapshotId);
  }

  // ---- beyond the Store interface -------------------------------------

  /** The record `AgentPool.gracefulShutdown()` left in `__pool_meta__/meta.json`, if any. */
  async loadPoolRecord(): Promise<AgentInfo | undefined> {
    const { poolMetaDir } = await this.walk();
    if (poolMetaDir === undefined) return undefined;
    const value = await this.readJsonFile(
      join(poolMetaDir, JSON_STORE_FILES.info),
      undefined,
      'object',
      this.report,
    );
    return value as AgentInfo | undefined;
  }

  /** Counts of one agent's data (events deduplicated), honouring `onCorrupt`. */
  async summarize(agentId: string): Promise<JsonStoreAgentSummary> {
    return this.summarizeWith(agentId, this.report);
  }

  /**
   * Reads every file of every agent and returns every problem found, without
   * throwing, whatever `onCorrupt` says: a pre-flight check that names all
   * corrupt files at once, before anything is copied.
   */
  async scan(agentIds?: string[]): Promise<JsonStoreProblem[]> {
    const found: JsonStoreProblem[] = [];
    const collect: Report = (problem) => {
      this.record(problem);
      found.push(problem);
    };
    const ids = agentIds ?? (await this.list());
    for (const agentId of ids) await this.summarizeWith(agentId, collect);
    const { poolMetaDir } = await this.walk();
    if (agentIds === undefined && poolMetaDir !== undefined) {
      await this.readJsonFile(join(poolMetaDir, JSON_STORE_FILES.info), undefined, 'object', collect);
    }
    return found;
  }

  /** The root is a readable directory. It is never writable through this reader. */
  async healthCheck(): Promise<StoreHealthStatus> {
    const started = performance.now();
    try {
      const info = await stat(this.root);
      if (!info.isDirectory()) throw new Error(`${this.root} is not a directory`);
      await readdir(this.root);
      return {
        healthy: true,
        database: { connected: true, latencyMs: performance.now() - started },
        fileSystem: { writable: false, error: 'json: locations are read-only' },
        checkedAt: Date.now(),
      };
    } catch (error) {
      const message = (error as Error).message;
      return {
        healthy: false,
        database: { connected: false, error: message },
        fileSystem: { writable: false, error: message },
        checkedAt: Date.now(),
      };
    }
  }

  /** Corrupt files of the agent, a `messageCount` that differs from the stored messages, a misplaced `meta.json`. */
  async checkConsistency(agentId: string): Promise<ConsistencyCheckResult> {
    const issues: string[] = [];
    if (!(await this.exists(agentId))) {
      issues.push(`agent ${JSON.stringify(agentId)} does not exist`);
    } else {
      const collect: Report = (problem) => {
        this.record(problem);
        issues.push(
          `${problem.line === undefined ? problem.path : `${problem.path}:${problem.line}`}: ${problem.message}`,
        );
      };
      const summary = await this.summarizeWith(agentId, collect);
      const info = await this.readAgentJson<Partial<AgentInfo>>(
        agentId,
        JSON_STORE_FILES.info,
        'object',
        () => {},
      );
      if (info && typeof info.messageCount === 'number' && info.messageCount !== summary.messages) {
        issues.push(`info.messageCount is ${info.messageCount} but ${summary.messages} messages are stored`);
      }
      if (info && typeof info.agentId === 'string' && info.agentId !== agentId) {
        issues.push(
          `meta.json names agent ${JSON.stringify(info.agentId)} but sits in ${JSON.stringify(agentId)}`,
        );
      }
    }
    return { consistent: issues.length === 0, issues, checkedAt: Date.now() };
  }

  /** Nothing to release; present so a reader can stand where a store is closed. */
  async close(): Promise<void> {}

  // ---- internals ------------------------------------------------------

  private readonly report: Report = (problem, cause) => {
    this.record(problem);
    if (this.onCorrupt === 'throw') throw new JsonStoreCorruptFileError(problem, cause);
  };

  private record(problem: JsonStoreProblem): void {
    const key = `${problem.path}\u0000${problem.line ?? ''}`;
    if (this.seenProblems.has(key)) return;
    this.seenProblems.add(key);
    this.problems.push(problem);
  }

  private walk(): Promise<JsonStoreLayout> {
    this.layout ??= findJsonStoreAgents(this.root);
    return this.layout;
  }

  private async agentDir(agentId: string): Promise<JsonStoreAgentDirectory | undefined> {
    const { agents } = await this.walk();
    return agents.find((agent) => agent.agentId === agentId);
  }

  private async summarizeWith(agentId: string, report: Report): Promise<JsonStoreAgentSummary> {
    const info = await this.readAgentJson<AgentInfo>(agentId, JSON_STORE_FILES.info, 'object', report);
    const events = await this.readAllEvents(agentId, report);
    return {
      agentId,
      info: info !== undefined,
      messages: (await this.readRuntimeList(agentId, 'messages', report)).length,
      toolCalls: (await this.readRuntimeList(agentId, 'toolCalls', report)).length,
      todos: (await this.readAgentJson(agentId, JSON_STORE_FILES.todos, 'object', report)) !== undefined,
      events: events.entries.length,
      duplicateEventLines: events.duplicateLines,
      historyWindows: (await this.readTimestampedDir(agentId, JSON_STORE_FILES.historyWindowsDir, report))
        .length,
      compressionRecords: (await this.readTimestampedDir(agentId, JSON_STORE_FILES.compressionsDir, report))
        .length,
      recoveredFiles: (await this.readRecoveredFiles(agentId, report)).length,
      mediaCache: (
        (await this.readAgentJson<unknown[]>(agentId, JSON_STORE_FILES.mediaCache, 'array', report)) ?? []
      ).length,
      snapshots: (await this.readSnapshots(agentId, report)).length,
    };
  }

  private async readAllEvents(agentId: string, report: Report) {
    const agent = await this.agentDir(agentId);
    if (!agent) return { entries: [], duplicateLines: 0, files: [] };
    const eventsDir = join(agent.dir, JSON_STORE_FILES.eventsDir);
    return readJsonStoreEvents(eventsDir, {
      order: this.eventOrder,
      agentId,
      displayDir: eventsDir,
      report,
    });
  }

  /** Reads a file; `undefined` when absent. Unreadable, unparsable or mis-shaped content goes to `report`. */
  private async readJsonFile(
    path: string,
    agentId: string | undefined,
    shape: Shape,
    report: Report,
  ): Promise<unknown | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      report(
        { kind: 'unreadable-file', path, agentId, message: `cannot be read (${(error as Error).message})` },
        error,
      );
      return undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      report(
        { kind: 'unparsable-json', path, agentId, message: `not valid JSON (${(error as Error).message})` },
        error,
      );
      return undefined;
    }
    if (shapeOf(value) !== shape) {
      report({
        kind: 'unexpected-shape',
        path,
        agentId,
        message: `expected a JSON ${shape}, found ${shapeOf(value)}`,
      });
      return undefined;
    }
    return value;
  }

  private async readAgentJson<T>(
    agentId: string,
    relative: string,
    shape: Shape,
    report: Report,
  ): Promise<T | undefined> {
    const agent = await this.agentDir(agentId);
    if (!agent) return undefined;
    return (await this.readJsonFile(join(agent.dir, relative), agentId, shape, report)) as T | undefined;
  }

  /** messages / tool calls: a leftover `.wal` (`{data, timestamp}`) is newer than the `.json` and wins. */
  private async readRuntimeList<T>(
    agentId: string,
    which: 'messages' | 'toolCalls',
    report: Report,
  ): Promise<T[]> {
    const agent = await this.agentDir(agentId);
    if (!agent) return [];
    const walPath = join(
      agent.dir,
      which === 'messages' ? JSON_STORE_FILES.messagesWal : JSON_STORE_FILES.toolCallsWal,
    );
    const wal = (await this.readJsonFile(walPath, agentId, 'object', report)) as
      | { data?: unknown }
      | undefined;
    if (wal !== undefined) {
      if (Array.isArray(wal.data)) return wal.data as T[];
      report({ kind: 'unexpected-shape', path: walPath, agentId, message: 'WAL has no `data` list' });
    }
    const file = join(
      agent.dir,
      which === 'messages' ? JSON_STORE_FILES.messages : JSON_STORE_FILES.toolCalls,
    );
    return ((await this.readJsonFile(file, agentId, 'array', report)) as T[] | undefined) ?? [];
  }

  private async listFiles(dir: string): Promise<string[]> {
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      return entries
        .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
        .map((entry) => entry.name)
        .sort(compareCodePoints);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  /** History windows and compression records: one `<timestamp>.json` each, loaded oldest first (as the SDK does). */
  private async readTimestampedDir<T extends { timestamp: number }>(
    agentId: string,
    relative: string,
    report: Report,
  ): Promise<T[]> {
    const agent = await this.agentDir(agentId);
    if (!agent) return [];
    const dir = join(agent.dir, relative);
    const loaded: Array<{ value: T; order: number }> = [];
    for (const name of await this.listFiles(dir)) {
      if (!name.endsWith('.json')) continue;
      const value = (await this.readJsonFile(join(dir, name), agentId, 'object', report)) as T | undefined;
      if (value !== undefined) loaded.push({ value, order: loaded.length });
    }
    // File names are already sorted, so equal timestamps keep file-name order.
    loaded.sort((a, b) => (a.value.timestamp ?? 0) - (b.value.timestamp ?? 0) || a.order - b.order);
    return loaded.map((entry) => entry.value);
  }

  /**
   * `history/recovered/<path with / as _>_<ts>.txt`: three header lines
   * (`# Recovered: <path>`, `# Timestamp: <ms>`, `# Mtime: <ms>`), a blank
   * line, then the content verbatim. The mtime is kept as written (it is
   * fractional; the SDK's own loader truncates it).
   */
  private async readRecoveredFiles(agentId: string, report: Report): Promise<RecoveredFile[]> {
    const agent = await this.agentDir(agentId);
    if (!agent) return [];
    const dir = join(agent.dir, JSON_STORE_FILES.recoveredDir);
    const loaded: Array<{ value: RecoveredFile; order: number }> = [];
    for (const name of await this.listFiles(dir)) {
      const path = join(dir, name);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        report(
          { kind: 'unreadable-file', path, agentId, message: `cannot be read (${(error as Error).message})` },
          error,
        );
        continue;
      }
      const lines = text.split('\n');
      const matches = RECOVERED_HEADER.map((pattern, i) => pattern.exec(lines[i] ?? ''));
      const timestamp = Number(matches[1]?.[1]);
      const mtime = Number(matches[2]?.[1]);
      if (!matches[0] || lines[3] !== '' || !Number.isFinite(timestamp) || !Number.isFinite(mtime)) {
        report({
          kind: 'bad-recovered-file',
          path,
          agentId,
          message:
            'not a recovered file: expected "# Recovered:", "# Timestamp:", "# Mtime:" lines and a blank line',
        });
        continue;
      }
      const value: RecoveredFile = {
        path: matches[0][1]!,
        content: lines.slice(4).join('\n'),
        mtime,
        timestamp,
      };
      loaded.push({ value, order: loaded.length });
    }
    loaded.sort((a, b) => a.value.timestamp - b.value.timestamp || a.order - b.order);
    return loaded.map((entry) => entry.value);
  }

  private async readSnapshots(agentId: string, report: Report): Promise<Snapshot[]> {
    const agent = await this.agentDir(agentId);
    if (!agent) return [];
    const dir = join(agent.dir, JSON_STORE_FILES.snapshotsDir);
    const loaded: Array<{ value: Snapshot; time: number; order: number }> = [];
    for (const name of await this.listFiles(dir)) {
      if (!name.endsWith('.json')) continue;
      const value = (await this.readJsonFile(join(dir, name), agentId, 'object', report)) as
        | Snapshot
        | undefined;
      if (value === undefined) continue;
      const time = Date.parse(value.createdAt);
      loaded.push({
        value,
        time: Number.isNaN(time) ? Number.POSITIVE_INFINITY : time,
        order: loaded.length,
      });
    }
    loaded.sort((a, b) => (a.time === b.time ? a.order - b.order : a.time < b.time ? -1 : 1));
    return loaded.map((entry) => entry.value);
  }
}
