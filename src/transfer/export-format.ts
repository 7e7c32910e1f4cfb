import { CorruptDataError } from '../errors.js';
import type {
  AgentInfo,
  CompressionRecord,
  HistoryWindow,
  MediaCacheRecord,
  Message,
  ReadEventsOptions,
  RecoveredFile,
  Snapshot,
  Store,
  Timeline,
  TodoSnapshot,
  ToolCallRecord,
} from '../types.js';

/**
 * The portable export format of kode-store (version 1): JSON Lines, one
 * record per line, readable by any backend and by `jq`.
 *
 * ```
 * {"format":"kode-store-export","version":1,"exportedAt":"…","source":"sqlite"}   header, always first
 * {"type":"agent","agentId":"agt-1"}                                               an agent begins
 * {"type":"info","agentId":"agt-1","value":{…AgentInfo}}
 * {"type":"message","agentId":"agt-1","value":{…Message}}                         one per message, in order
 * {"type":"toolCall",…} {"type":"todos",…} {"type":"historyWindow",…}
 * {"type":"compressionRecord",…} {"type":"recoveredFile",…} {"type":"mediaCache",…}
 * {"type":"snapshot",…}                                                           oldest first
 * {"type":"event","agentId":"agt-1","value":{…Timeline}}                          one per event, stream order
 * {"type":"agentEnd","agentId":"agt-1","counts":{…}}                              the agent is complete
 * {"type":"kvInstance","value":{…}}  {"type":"kvRecord","value":{…}}               KV data, instances first
 * {"type":"end","agents":1,"kvInstances":0,"kvRecords":0}                          always last
 * ```
 *
 * Rules a reader relies on: every record of an agent lies between its
 * `agent` and `agentEnd` lines (so an importer holds one agent at a time);
 * `agentEnd.counts` says how many records of each kind came before it (so a
 * cut or edited file is detected, not half-imported); values are the stored
 * JSON verbatim (key order kept, as the SDK wrote it). A file without the
 * final `end` line is truncated. Readers refuse a `version` they do not know,
 * and a record `type` unknown to that version.
 */
export const EXPORT_FORMAT = 'kode-store-export';
/** The version this code writes, and the newest it reads. */
export const EXPORT_FORMAT_VERSION = 1;

/** The first line of an export. */
export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: number;
  /** ISO time the export was written. */
  exportedAt: string;
  /** Backend kind the data came from (`sqlite`, `json`, …); never a URL, which may hold a password. */
  source?: string;
}

/** How many records of each kind one agent holds; `info` and `todos` are 0 or 1. */
export interface AgentCounts {
  info: number;
  messages: number;
  toolCalls: number;
  todos: number;
  events: number;
  historyWindows: number;
  compressionRecords: number;
  recoveredFiles: number;
  mediaCache: number;
  snapshots: number;
}

/** The kinds of `AgentCounts`, in the order they are written. */
export const AGENT_COUNT_KINDS: ReadonlyArray<keyof AgentCounts> = [
  'info',
  'messages',
  'toolCalls',
  'todos',
  'historyWindows',
  'compressionRecords',
  'recoveredFiles',
  'mediaCache',
  'snapshots',
  'events',
];

/** All zeros. */
export function emptyAgentCounts(): AgentCounts {
  return {
    info: 0,
    messages: 0,
    toolCalls: 0,
    todos: 0,
    events: 0,
    historyWindows: 0,
    compressionRecords: 0,
    recoveredFiles: 0,
    mediaCache: 0,
    snapshots: 0,
  };
}

/** One KV instance or record, as the KV layer returns it (the export does not interpret it). */
export type KvExportValue = Record<string, unknown>;

/** One line after the header. */
export type ExportRecord =
  | { type: 'agent'; agentId: string }
  | { type: 'info'; agentId: string; value: AgentInfo }
  | { type: 'message'; agentId: string; value: Message }
  | { type: 'toolCall'; agentId: string; value: ToolCallRecord }
  | { type: 'todos'; agentId: string; value: TodoSnapshot }
  | { type: 'historyWindow'; agentId: string; value: HistoryWindow }
  | { type: 'compressionRecord'; agentId: string; value: CompressionRecord }
  | { type: 'recoveredFile'; agentId: string; value: RecoveredFile }
  | { type: 'mediaCache'; agentId: string; value: MediaCacheRecord }
  | { type: 'snapshot'; agentId: string; value: Snapshot }
  | { type: 'event'; agentId: string; value: Timeline }
  | { type: 'agentEnd'; agentId: string; counts: AgentCounts }
  | { type: 'kvInstance'; value: KvExportValue }
  | { type: 'kvRecord'; value: KvExportValue }
  | { type: 'end'; agents: number; kvInstances: number; kvRecords: number };

/** Record types that carry one value of an agent, and the count each adds to. */
const AGENT_VALUE_TYPES = {
  info: 'info',
  message: 'messages',
  toolCall: 'toolCalls',
  todos: 'todos',
  historyWindow: 'historyWindows',
  compressionRecord: 'compressionRecords',
  recoveredFile: 'recoveredFiles',
  mediaCache: 'mediaCache',
  snapshot: 'snapshots',
  event: 'events',
} as const satisfies Record<string, keyof AgentCounts>;

type AgentValueType = keyof typeof AGENT_VALUE_TYPES;

/** What an export reads from (and a migration copies from): the read side of the SDK's `Store`. */
export type ReadableAgentStore = Pick<
  Store,
  | 'list'
  | 'exists'
  | 'loadInfo'
  | 'loadMessages'
  | 'loadToolCallRecords'
  | 'loadTodos'
  | 'readEvents'
  | 'loadHistoryWindows'
  | 'loadCompressionRecords'
  | 'loadRecoveredFiles'
  | 'loadMediaCache'
  | 'listSnapshots'
>;

/** An export line that cannot be read: not JSON, an unknown record, a cut-off file. `line` is 1-based. */
export class ExportFormatError extends CorruptDataError {
  readonly line?: number;
  constructor(message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`, {
      backend: 'export',
      operation: 'import',
    });
    this.line = line;
  }
}

/** The header line's content. */
export function exportHeader(source?: string, now = new Date()): ExportHeader {
  const header: ExportHeader = {
    format: EXPORT_FORMAT,
    version: EXPORT_FORMAT_VERSION,
    exportedAt: now.toISOString(),
  };
  if (source !== undefined) header.source = source;
  return header;
}

/**
 * One line of the file, without the newline. `JSON.stringify` keeps key
 * order and escapes lone surrogates, so the line is valid UTF-8 and parses
 * back to the same value.
 */
export function formatExportLine(record: ExportHeader | ExportRecord): string {
  return JSON.stringify(record);
}

/**
 * Every record of one agent, in the order of the format: values first, the
 * event stream last (it may be long and is streamed, never held), then
 * `agentEnd` with the counts.
 */
export async function* exportAgentRecords(
  store: ReadableAgentStore,
  agentId: string,
): AsyncGenerator<ExportRecord> {
  const counts = emptyAgentCounts();
  yield { type: 'agent', agentId };
  const info = await store.loadInfo(agentId);
  if (info !== undefined) {
    counts.info = 1;
    yield { type: 'info', agentId, value: info };
  }
  for (const value of await store.loadMessages(agentId)) {
    counts.messages++;
    yield { type: 'message', agentId, value };
  }
  for (const value of await store.loadToolCallRecords(agentId)) {
    counts.toolCalls++;
    yield { type: 'toolCall', agentId, value };
  }
  const todos = await store.loadTodos(agentId);
  if (todos !== undefined) {
    counts.todos = 1;
    yield { type: 'todos', agentId, value: todos };
  }
  for (const value of await store.loadHistoryWindows(agentId)) {
    counts.historyWindows++;
    yield { type: 'historyWindow', agentId, value };
  }
  for (const value of await store.loadCompressionRecords(agentId)) {
    counts.compressionRecords++;
    yield { type: 'compressionRecord', agentId, value };
  }
  for (const value of await store.loadRecoveredFiles(agentId)) {
    counts.recoveredFiles++;
    yield { type: 'recoveredFile', agentId, value };
  }
  for (const value of await store.loadMediaCache(agentId)) {
    counts.mediaCache++;
    yield { type: 'mediaCache', agentId, value };
  }
  for (const value of await store.listSnapshots(agentId)) {
    counts.snapshots++;
    yield { type: 'snapshot', agentId, value };
  }
  for await (const value of store.readEvents(agentId)) {
    counts.events++;
    yield { type: 'event', agentId, value };
  }
  yield { type: 'agentEnd', agentId, counts };
}

/**
 * One agent read back from an export, held in memory, with the read side of
 * a store so that the same copy code writes it into any backend.
 */
export class AgentBundle implements ReadableAgentStore {
  info: AgentInfo | undefined;
  todos: TodoSnapshot | undefined;
  readonly messages: Message[] = [];
  readonly toolCalls: ToolCallRecord[] = [];
  readonly events: Timeline[] = [];
  readonly historyWindows: HistoryWindow[] = [];
  readonly compressionRecords: CompressionRecord[] = [];
  readonly recoveredFiles: RecoveredFile[] = [];
  readonly mediaCache: MediaCacheRecord[] = [];
  readonly snapshots: Snapshot[] = [];

  constructor(readonly agentId: string) {}

  /** What the bundle holds. */
  counts(): AgentCounts {
    return {
      info: this.info === undefined ? 0 : 1,
      messages: this.messages.length,
      toolCalls: this.toolCalls.length,
      todos: this.todos === undefined ? 0 : 1,
      events: this.events.length,
      historyWindows: this.historyWindows.length,
      compressionRecords: this.compressionRecords.length,
      recoveredFiles: this.recoveredFiles.length,
      mediaCache: this.mediaCache.length,
      snapshots: this.snapshots.length,
    };
  }

  /** Adds one value record of this agent. */
  add(record: Extract<ExportRecord, { type: AgentValueType }>): void {
    switch (record.type) {
      case 'info':
        this.info = record.value;
        return;
      case 'todos':
        this.todos = record.value;
        return;
      case 'message':
        this.messages.push(record.value);
        return;
      case 'toolCall':
        this.toolCalls.push(record.value);
        return;
      case 'event':
        this.events.push(record.value);
        return;
      case 'historyWindow':
        this.historyWindows.push(record.value);
        return;
      case 'compressionRecord':
        this.compressionRecords.push(record.value);
        return;
      case 'recoveredFile':
        this.recoveredFiles.push(record.value);
        return;
      case 'mediaCache':
        this.mediaCache.push(record.value);
        return;
      case 'snapshot':
        this.snapshots.push(record.value);
        return;
    }
  }

  private mine(agentId: string): boolean {
    return agentId === this.agentId;
  }

  async list(prefix?: string): Promise<string[]> {
    return prefix === undefined || this.agentId.startsWith(prefix) ? [this.agentId] : [];
  }
  async exists(agentId: string): Promise<boolean> {
    return this.mine(agentId);
  }
  async loadInfo(agentId: string): Promise<AgentInfo | undefined> {
    return this.mine(agentId) ? this.info : undefined;
  }
  async loadMessages(agentId: string): Promise<Message[]> {
    return this.mine(agentId) ? [...this.messages] : [];
  }
  async loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]> {
    return this.mine(agentId) ? [...this.toolCalls] : [];
  }
  async loadTodos(agentId: string): Promise<TodoSnapshot | undefined> {
    return this.mine(agentId) ? this.todos : undefined;
  }
  async loadHistoryWindows(agentId: string): Promise<HistoryWindow[]> {
    return this.mine(agentId) ? [...this.historyWindows] : [];
  }
  async loadCompressionRecords(agentId: string): Promise<CompressionRecord[]> {
    return this.mine(agentId) ? [...this.compressionRecords] : [];
  }
  async loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]> {
    return this.mine(agentId) ? [...this.recoveredFiles] : [];
  }
  async loadMediaCache(agentId: string): Promise<MediaCacheRecord[]> {
    return this.mine(agentId) ? [...this.mediaCache] : [];
  }
  async listSnapshots(agentId: string): Promise<Snapshot[]> {
    return this.mine(agentId) ? [...this.snapshots] : [];
  }
  readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
    const events = this.mine(agentId) ? this.events : [];
    return {
      async *[Symbol.asyncIterator]() {
        for (const entry of events) {
          if (opts.since && !(entry.bookmark.seq > opts.since.seq)) continue;
          if (opts.channel && entry.event.channel !== opts.channel) continue;
          yield entry;
        }
      },
    };
  }
}

/** What `readExport` yields: a complete agent, a KV item, or the end. */
export type ExportItem =
  | { kind: 'agent'; bundle: AgentBundle }
  | { kind: 'kvInstance'; value: KvExportValue }
  | { kind: 'kvRecord'; value: KvExportValue }
  | { kind: 'end'; agents: number; kvInstances: number; kvRecords: number };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseLine(text: string, line: number): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ExportFormatError(`not JSON (${(error as Error).message})`, line);
  }
}

/** Checks the header line; a newer version or another format is refused with a clear message. */
export function parseExportHeader(text: string, line = 1): ExportHeader {
  const value = parseLine(text, line);
  if (!isObject(value) || value.format !== EXPORT_FORMAT) {
    throw new ExportFormatError(`not a ${EXPORT_FORMAT} file (the first line must be its header)`, line);
  }
  if (!Number.isInteger(value.version) || (value.version as number) < 1) {
    throw new ExportFormatError('the header has no valid version', line);
  }
  if ((value.version as number) > EXPORT_FORMAT_VERSION) {
    throw new ExportFormatError(
      `format version ${value.version} was written by a newer kode-store; this one reads up to version ${EXPORT_FORMAT_VERSION}`,
      line,
    );
  }
  return value as unknown as ExportHeader;
}

/** Parses and checks one record line (after the header). */
export function parseExportRecord(text: string, line: number): ExportRecord {
  const value = parseLine(text, line);
  if (!isObject(value) || typeof value.type !== 'string') {
    throw new ExportFormatError('a record must be an object with a "type"', line);
  }
  const type = value.type;
  if (type in AGENT_VALUE_TYPES || type === 'agent' || type === 'agentEnd') {
    if (typeof value.agentId !== 'string' || value.agentId === '') {
      throw new ExportFormatError(`a "${type}" record needs an "agentId"`, line);
    }
    if (type === 'agentEnd' && !isObject(value.counts)) {
      throw new ExportFormatError('an "agentEnd" record needs "counts"', line);
    }
    if (type in AGENT_VALUE_TYPES && !('value' in value)) {
      throw new ExportFormatError(`a "${type}" record needs a "value"`, line);
    }
    return value as unknown as ExportRecord;
  }
  if (type === 'kvInstance' || type === 'kvRecord') {
    if (!isObject(value.value))
      throw new ExportFormatError(`a "${type}" record needs an object "value"`, line);
    return value as unknown as ExportRecord;
  }
  if (type === 'end') return value as unknown as ExportRecord;
  throw new ExportFormatError(`unknown record type ${JSON.stringify(type)}`, line);
}

function sameCounts(expected: Record<string, unknown>, actual: AgentCounts): string | undefined {
  for (const kind of AGENT_COUNT_KINDS) {
    const want = expected[kind] ?? 0;
    if (want !== actual[kind])
      return `${kind}: agentEnd says ${String(want)}, the file holds ${actual[kind]}`;
  }
  return undefined;
}

/**
 * Reads an export line by line and yields each agent once all its records
 * are in (one agent in memory at a time), then KV items, then the end.
 * Throws `ExportFormatError` on the first problem: a bad header, a record out
 * of place, counts that do not match, a file cut short (no `end` line).
 * Agents yielded before the problem are complete and may be kept.
 */
export async function* readExport(lines: AsyncIterable<string>): AsyncGenerator<ExportItem> {
  let lineNumber = 0;
  let header: ExportHeader | undefined;
  let current: AgentBundle | undefined;
  let ended = false;
  const imported = { agents: 0, kvInstances: 0, kvRecords: 0 };
  for await (const raw of lines) {
    lineNumber++;
    if (raw.trim() === '') continue;
    if (ended) throw new ExportFormatError('records after the "end" line', lineNumber);
    if (!header) {
      header = parseExportHeader(raw, lineNumber);
      continue;
    }
    const record = parseExportRecord(raw, lineNumber);
    if (record.type === 'agent') {
      if (current) {
        throw new ExportFormatError(
          `agent ${JSON.stringify(record.agentId)} begins before ${JSON.stringify(current.agentId)} ended`,
          lineNumber,
        );
      }
      current = new AgentBundle(record.agentId);
      continue;
    }
    if (record.type in AGENT_VALUE_TYPES || record.type === 'agentEnd') {
      const agentId = (record as { agentId: string }).agentId;
      if (!current || current.agentId !== agentId) {
        throw new ExportFormatError(
          `a "${record.type}" record of ${JSON.stringify(agentId)} outside its agent`,
          lineNumber,
        );
      }
      if (record.type === 'agentEnd') {
        const mismatch = sameCounts(record.counts as unknown as Record<string, unknown>, current.counts());
        if (mismatch)
          throw new ExportFormatError(`agent ${JSON.stringify(agentId)}: ${mismatch}`, lineNumber);
        imported.agents++;
        yield { kind: 'agent', bundle: current };
        current = undefined;
      } else {
        current.add(record as Extract<ExportRecord, { type: AgentValueType }>);
      }
      continue;
    }
    if (current) {
      throw new ExportFormatError(
        `a "${record.type}" record inside agent ${JSON.stringify(current.agentId)}`,
        lineNumber,
      );
    }
    if (record.type === 'kvInstance') {
      imported.kvInstances++;
      yield { kind: 'kvInstance', value: record.value };
    } else if (record.type === 'kvRecord') {
      imported.kvRecords++;
      yield { kind: 'kvRecord', value: record.value };
    } else if (record.type === 'end') {
      if (
        record.agents !== imported.agents ||
        record.kvInstances !== imported.kvInstances ||
        record.kvRecords !== imported.kvRecords
      ) {
        throw new ExportFormatError(
          `the "end" line counts ${record.agents} agents, ${record.kvInstances} KV instances and ${record.kvRecords} KV records; the file holds ${imported.agents}, ${imported.kvInstances} and ${imported.kvRecords}`,
          lineNumber,
        );
      }
      ended = true;
      yield { kind: 'end', ...imported };
    }
  }
  if (!header) throw new ExportFormatError(`empty input: not a ${EXPORT_FORMAT} file`);
  if (current) {
    throw new ExportFormatError(`the file ends inside agent ${JSON.stringify(current.agentId)} (truncated?)`);
  }
  if (!ended) throw new ExportFormatError('the file has no "end" line (truncated?)');
}
