import pLimit from 'p-limit';
import { isKodeStoreError } from '../../src/errors.js';
import type {
  AgentChannel,
  ContentBlock,
  Message,
  SessionFilters,
  SessionInfo,
  Snapshot,
  Timeline,
  ToolCallRecord,
} from '../../src/types.js';
import { eventSummary } from '../commands/inspect.js';
import { kvInstances, kvNamespaces, kvQuery, kvRecord } from './studio-kv-api.js';
import {
  CONCURRENT_READS,
  DEFAULT_PAGE,
  integer,
  oneOf,
  type Paging,
  paging,
  required,
  StudioRequestError,
  slice,
  text,
} from './studio-params.js';
import type { SessionSort, StudioSource } from './studio-source.js';

/**
 * The studio's JSON API: one read-only function per route, each answering
 * from the public store APIs (`StudioAgents`, `KvStore`) only. Every list is
 * paged here, on the server; event streams are read only as far as the page
 * asked for, so a page of a 100,000-event stream costs what a page of a
 * 10-event one does. The KV routes are in studio-kv-api.ts, the request
 * parameters in studio-params.ts.
 */

/** The agents list counts an agent's events up to this many, then shows "N+": a count costs a read. */
export const LISTED_EVENT_COUNT_CAP = 1000;
/** Fleet stats sum the stats of at most this many agents (the newest), so the page stays quick. */
export const FLEET_STATS_AGENTS = 2000;

const CHANNELS: readonly AgentChannel[] = ['progress', 'control', 'monitor'];

/** A count per key, largest first, as a list: stored names never become object keys. */
export type Counts = Array<{ key: string; count: number }>;

function countsOf(map: Map<string, number>): Counts {
  return [...map]
    .map(([key, count]) => ({ key, count }))
    .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function add(map: Map<string, number>, record: Record<string, number> | undefined): void {
  for (const [key, count] of Object.entries(record ?? {})) map.set(key, (map.get(key) ?? 0) + count);
}

async function requireAgent(source: StudioSource, agentId: string): Promise<void> {
  if (!(await source.agents.exists(agentId))) {
    throw new StudioRequestError(404, `agent ${JSON.stringify(agentId)} not found in ${source.label}`);
  }
}

// ---- overview ---------------------------------------------------------------

function overview(source: StudioSource) {
  return {
    location: source.label,
    backend: source.backend,
    readOnly: true,
    kv: source.kv !== undefined,
    sessionSorts: source.sessionSorts,
    pageSize: DEFAULT_PAGE,
    listedEventCountCap: LISTED_EVENT_COUNT_CAP,
  };
}

// ---- agents -----------------------------------------------------------------

/** Counts an agent's events, reading no further than `cap` + 1 entries. */
async function countEvents(source: StudioSource, agentId: string, cap: number) {
  let count = 0;
  for await (const _ of source.agents.readEvents(agentId)) {
    if (++count > cap) return { count: cap, capped: true };
  }
  return { count, capped: false };
}

/**
 * Sessions in the asked order, `prefix` applied while paging through them
 * (the query API filters by exact id only): the scan stops once the page is full.
 */
async function sessionsWithPrefix(
  source: StudioSource,
  filters: SessionFilters,
  prefix: string,
  page: Paging,
): Promise<SessionInfo[]> {
  const batch = 500;
  const found: SessionInfo[] = [];
  let matched = 0;
  for (let offset = 0; ; offset += batch) {
    const sessions = await source.agents.querySessions({ ...filters, limit: batch, offset });
    for (const session of sessions) {
      if (!session.agentId.startsWith(prefix)) continue;
      if (matched++ < page.offset) continue;
      found.push(session);
      if (found.length > page.limit) return found;
    }
    if (sessions.length < batch) return found;
  }
}

async function listAgents(source: StudioSource, params: URLSearchParams) {
  const page = paging(params);
  const sortBy: SessionSort = oneOf(params, 'sort', source.sessionSorts) ?? 'created_at';
  const filters: SessionFilters = {
    templateId: text(params, 'template'),
    startDate: text(params, 'from'),
    endDate: text(params, 'to'),
    sortBy,
    sortOrder: oneOf(params, 'order', ['asc', 'desc'] as const) ?? 'desc',
  };
  const prefix = text(params, 'prefix');
  // One more than the page, to know whether another page follows.
  const sessions =
    prefix === undefined
      ? await source.agents.querySessions({ ...filters, limit: page.limit + 1, offset: page.offset })
      : await sessionsWithPrefix(source, filters, prefix, page);
  const more = sessions.length > page.limit;
  const limit = pLimit(CONCURRENT_READS);
  const items = await Promise.all(
    sessions.slice(0, page.limit).map((session) =>
      limit(async () => {
        const [info, stats, events] = await Promise.all([
          source.agents.loadInfo(session.agentId),
          source.agents.aggregateStats(session.agentId),
          countEvents(source, session.agentId, LISTED_EVENT_COUNT_CAP),
        ]);
        return {
          ...session,
          parent: info?.lineage?.at(-1),
          messages: stats.totalMessages,
          toolCalls: stats.totalToolCalls,
          snapshots: stats.totalSnapshots,
          events,
        };
      }),
    ),
  );
  return { items, offset: page.offset, limit: page.limit, more, sortBy, sortOrder: filters.sortOrder };
}

// ---- one agent --------------------------------------------------------------

/** Forks of `agentId`: ids under `<agentId>/` whose lineage ends with it (the `<parent>/fork-…` family). */
async function childrenOf(source: StudioSource, agentId: string): Promise<string[]> {
  const children: string[] = [];
  for (const candidate of await source.agents.list(`${agentId}/`)) {
    const info = await source.agents.loadInfo(candidate);
    const parent = info?.lineage?.at(-1);
    // Without info, only the id's shape tells: a direct child has no further `/`.
    if (parent === undefined ? !candidate.slice(agentId.length + 1).includes('/') : parent === agentId) {
      children.push(candidate);
    }
  }
  return children;
}

function snapshotSummary(snapshot: Snapshot) {
  const { messages, ...rest } = snapshot;
  return { ...rest, messageCount: messages?.length ?? 0 };
}

async function agentDetail(source: StudioSource, params: URLSearchParams) {
  const agentId = required(params, 'id');
  await requireAgent(source, agentId);
  const [info, stats, todos, snapshots, children] = await Promise.all([
    source.agents.loadInfo(agentId),
    source.agents.aggregateStats(agentId),
    source.agents.loadTodos(agentId),
    source.agents.listSnapshots(agentId),
    childrenOf(source, agentId),
  ]);
  return {
    agentId,
    info,
    stats: {
      totalMessages: stats.totalMessages,
      totalToolCalls: stats.totalToolCalls,
      totalSnapshots: stats.totalSnapshots,
      toolCallsByName: countsOf(new Map(Object.entries(stats.toolCallsByName ?? {}))),
      toolCallsByState: countsOf(new Map(Object.entries(stats.toolCallsByState ?? {}))),
    },
    lineage: { ancestors: info?.lineage ?? [], parent: info?.lineage?.at(-1), children },
    todos,
    snapshots: snapshots.map(snapshotSummary),
  };
}

/**
 * A page of a conversation, with what the page's blocks refer to elsewhere:
 * the `tool_result` answering each `tool_use` (wherever it is), the
 * `tool_use` each `tool_result` answers, and the tool-call records by id.
 */
function conversationPage(messages: readonly Message[], records: readonly ToolCallRecord[], page: Paging) {
  const uses = new Map<string, { messageIndex: number; name: string }>();
  const results = new Map<string, { messageIndex: number; content: unknown; isError: boolean }>();
  messages.forEach((message, messageIndex) => {
    for (const block of blocksOf(message)) {
      if (block.type === 'tool_use' && !uses.has(block.id))
        uses.set(block.id, { messageIndex, name: block.name });
      if (block.type === 'tool_result' && !results.has(block.tool_use_id)) {
        results.set(block.tool_use_id, {
          messageIndex,
          content: block.content,
          isError: block.is_error === true,
        });
      }
    }
  });
  const shown = slice(messages, page);
  const ids = new Set<string>();
  for (const { value } of shown.items) {
    for (const block of blocksOf(value)) {
      if (block.type === 'tool_use') ids.add(block.id);
      if (block.type === 'tool_result') ids.add(block.tool_use_id);
    }
  }
  const byId = new Map(records.map((record) => [record.id, record]));
  const referenced = [...ids];
  return {
    ...shown,
    toolUses: referenced.flatMap((id) => {
      const use = uses.get(id);
      return use ? [{ id, ...use }] : [];
    }),
    toolResults: referenced.flatMap((id) => {
      const result = results.get(id);
      return result ? [{ id, ...result }] : [];
    }),
    toolCalls: referenced.flatMap((id) => {
      const record = byId.get(id);
      return record
        ? [
            {
              id,
              state: record.state,
              durationMs: record.durationMs,
              error: record.error,
              approval: record.approval,
            },
          ]
        : [];
    }),
  };
}

function blocksOf(message: Message): ContentBlock[] {
  return Array.isArray(message?.content) ? message.content : [];
}

async function agentMessages(source: StudioSource, params: URLSearchParams) {
  const agentId = required(params, 'id');
  await requireAgent(source, agentId);
  const [messages, records] = await Promise.all([
    source.agents.loadMessages(agentId),
    source.agents.loadToolCallRecords(agentId),
  ]);
  return { agentId, ...conversationPage(messages, records, paging(params)) };
}

async function agentSnapshot(source: StudioSource, params: URLSearchParams) {
  const agentId = required(params, 'id');
  const snapshotId = required(params, 'snapshot');
  await requireAgent(source, agentId);
  const snapshot = await source.agents.loadSnapshot(agentId, snapshotId);
  if (!snapshot) {
    throw new StudioRequestError(
      404,
      `agent ${JSON.stringify(agentId)} has no snapshot ${JSON.stringify(snapshotId)}`,
    );
  }
  const records = await source.agents.loadToolCallRecords(agentId);
  return {
    agentId,
    snapshot: snapshotSummary(snapshot),
    ...conversationPage(snapshot.messages ?? [], records, paging(params)),
  };
}

async function agentTools(source: StudioSource, params: URLSearchParams) {
  const agentId = required(params, 'id');
  await requireAgent(source, agentId);
  const state = text(params, 'state');
  const name = text(params, 'name');
  const records = (await source.agents.loadToolCallRecords(agentId)).filter(
    (record) =>
      (state === undefined || record.state === state) && (name === undefined || record.name === name),
  );
  return { agentId, ...slice(records, paging(params)) };
}

function eventFilters(params: URLSearchParams) {
  const channel = oneOf(params, 'channel', CHANNELS);
  const since = text(params, 'since') === undefined ? undefined : integer(params, 'since', 0);
  return {
    channel,
    since,
    options: {
      channel,
      since: since === undefined ? undefined : { seq: since, timestamp: 0 },
    },
  };
}

async function agentEvents(source: StudioSource, params: URLSearchParams) {
  const agentId = required(params, 'id');
  const page = paging(params);
  const { channel, since, options } = eventFilters(params);
  await requireAgent(source, agentId);
  const items: Array<{ index: number; summary: string; value: Timeline }> = [];
  let index = 0;
  let more = false;
  // Read up to the end of the page plus one entry; leaving the loop ends the stream's read.
  for await (const value of source.agents.readEvents(agentId, options)) {
    if (index >= page.offset) {
      if (items.length === page.limit) {
        more = true;
        break;
      }
      items.push({ index, summary: value?.event ? eventSummary(value.event) : '', value });
    }
    index++;
  }
  return {
    agentId,
    channel,
    since,
    items,
    offset: page.offset,
    limit: page.limit,
    more,
    // Read to its end, the stream's length is known; otherwise it is not counted here.
    ...(more ? {} : { total: index }),
  };
}

/** Every event of the agent counted by channel and type: a whole read, asked for apart from the first page. */
async function agentEventCounts(source: StudioSource, params: URLSearchParams) {
  const agentId = required(params, 'id');
  const { channel, since, options } = eventFilters(params);
  await requireAgent(source, agentId);
  const byChannel = new Map<string, number>();
  const byType = new Map<string, number>();
  let total = 0;
  for await (const entry of source.agents.readEvents(agentId, options)) {
    total++;
    const event = entry?.event;
    byChannel.set(String(event?.channel), (byChannel.get(String(event?.channel)) ?? 0) + 1);
    byType.set(String(event?.type), (byType.get(String(event?.type)) ?? 0) + 1);
  }
  return { agentId, channel, since, total, byChannel: countsOf(byChannel), byType: countsOf(byType) };
}

// ---- fleet ------------------------------------------------------------------

async function fleetStats(source: StudioSource) {
  const totals = await source.totals();
  const sessions = await source.agents.querySessions({
    sortBy: 'created_at',
    sortOrder: 'desc',
    limit: FLEET_STATS_AGENTS,
  });
  const byName = new Map<string, number>();
  const byState = new Map<string, number>();
  const byTemplate = new Map<string, number>();
  let messages = 0;
  let toolCalls = 0;
  let snapshots = 0;
  const limit = pLimit(CONCURRENT_READS);
  await Promise.all(
    sessions.map((session) =>
      limit(async () => {
        const stats = await source.agents.aggregateStats(session.agentId);
        messages += stats.totalMessages;
        toolCalls += stats.totalToolCalls;
        snapshots += stats.totalSnapshots;
        add(byName, stats.toolCallsByName);
        add(byState, stats.toolCallsByState);
        byTemplate.set(session.templateId, (byTemplate.get(session.templateId) ?? 0) + 1);
      }),
    ),
  );
  return {
    totals,
    sampled: {
      agents: sessions.length,
      limit: FLEET_STATS_AGENTS,
      complete: sessions.length < FLEET_STATS_AGENTS,
      messages,
      toolCalls,
      snapshots,
    },
    toolCallsByState: countsOf(byState),
    toolCallsByName: countsOf(byName),
    agentsByTemplate: countsOf(byTemplate),
  };
}

// ---- routing ----------------------------------------------------------------

const ROUTES: Record<string, (source: StudioSource, params: URLSearchParams) => Promise<unknown> | unknown> =
  {
    overview,
    agents: listAgents,
    agent: agentDetail,
    'agent/messages': agentMessages,
    'agent/tools': agentTools,
    'agent/events': agentEvents,
    'agent/event-counts': agentEventCounts,
    'agent/snapshot': agentSnapshot,
    stats: fleetStats,
    'kv/instances': kvInstances,
    'kv/namespaces': kvNamespaces,
    'kv/query': kvQuery,
    'kv/record': kvRecord,
  };

/** The API routes, for the server's 404 and for tests. */
export const API_ROUTES: readonly string[] = Object.keys(ROUTES);

/**
 * Answers one API request. A store's refusal of the request (a bad date,
 * a bad KV query) is the caller's mistake: 400 with the store's message;
 * anything else is the server's (500).
 */
export async function answerApi(
  source: StudioSource,
  route: string,
  params: URLSearchParams,
): Promise<unknown> {
  const handler = Object.hasOwn(ROUTES, route) ? ROUTES[route] : undefined;
  if (!handler) throw new StudioRequestError(404, `no API route ${JSON.stringify(route)}`);
  try {
    return await handler(source, params);
  } catch (error) {
    if (isKodeStoreError(error) && (error.code === 'KODE_QUERY' || error.code === 'KODE_VALIDATION')) {
      throw new StudioRequestError(400, error.message);
    }
    // Gone between two reads (an instance deleted by a writer meanwhile).
    if (isKodeStoreError(error) && error.code === 'KODE_NOT_FOUND')
      throw new StudioRequestError(404, error.message);
    throw error;
  }
}
