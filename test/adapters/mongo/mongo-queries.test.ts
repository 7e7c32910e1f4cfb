import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MongoDocument } from '../../../adapters/mongo/mongo-config.js';
import {
  toInfoDocument,
  toMessageDocument,
  toToolCallDocument,
} from '../../../adapters/mongo/mongo-documents.js';
import {
  agentIdPrefixFilter,
  EVENT_SORT,
  equalityFields,
  eventPageFilter,
  type FindPlan,
  findCoveringIndex,
  messageQueryPlan,
  prefixUpperBound,
  sessionQueryPlan,
  timeRange,
  toolCallQueryPlan,
  toolCallStatsFromGroups,
  toolCallStatsPipeline,
} from '../../../adapters/mongo/mongo-queries.js';
import { AGENT_INDEXES, type MongoIndexSpec } from '../../../adapters/mongo/mongo-schema.js';
import {
  type NormalizedMessageQuery,
  type NormalizedSessionQuery,
  type NormalizedToolCallQuery,
  normalizeMessageFilters,
  normalizeSessionFilters,
  normalizeToolCallFilters,
  withinTimeBounds,
} from '../../../src/agent/query-filters.js';
import { sessionFields } from '../../../src/agent/record-fields.js';
import type {
  AgentInfo,
  Message,
  MessageFilters,
  SessionFilters,
  ToolCallFilters,
  ToolCallRecord,
} from '../../../src/types.js';
import { compareScalars, matches, sortDocuments } from '../../helpers/mongo-filter.js';
import { messageFieldsOf, toolCallFieldsOf } from '../../helpers/record-fields.js';

/**
 * The translation of query filters into MongoDB filters and sorts, checked
 * without a server in two ways: the reference evaluator of the emitted
 * operators (test/helpers/mongo-filter.ts) runs each plan against documents,
 * compared with a plain model of the contract; and every filter + sort is
 * checked against the index specs, to show each query shape is served by an
 * index.
 */

// ---- running a plan with the reference evaluator ---------------------------

function execute(docs: MongoDocument[], plan: FindPlan): MongoDocument[] {
  return sortDocuments(
    docs.filter((doc) => matches(doc, plan.filter)),
    plan.sort,
  ).slice(plan.skip, plan.skip + plan.limit);
}

// ---- generators ----------------------------------------------------------

const AGENTS = ['a', 'B', 'a/fork-1', 'é', '😀', '\uffff'];
const agentId = fc.constantFrom(...AGENTS);
const time = fc.integer({ min: 1_000, max: 1_020 });
const timeInput = fc.oneof(
  time,
  time.map((ms) => new Date(ms)),
  time.map((ms) => new Date(ms).toISOString()),
);
const page = {
  // AgentStore answers `limit: 0` itself (MongoDB reads limit(0) as no limit): a plan always has one.
  limit: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
  offset: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
  sortOrder: fc.option(fc.constantFrom('asc' as const, 'desc' as const), { nil: undefined }),
  startDate: fc.option(timeInput, { nil: undefined }),
  endDate: fc.option(timeInput, { nil: undefined }),
  createdAfter: fc.option(timeInput, { nil: undefined }),
  createdBefore: fc.option(timeInput, { nil: undefined }),
};

function sign(order: 'asc' | 'desc'): number {
  return order === 'asc' ? 1 : -1;
}

function compareKeys(a: Array<number | string>, b: Array<number | string>): number {
  for (let i = 0; i < a.length; i++) {
    const c = compareScalars(a[i], b[i]);
    if (c !== 0) return c;
  }
  return 0;
}

// ---- messages --------------------------------------------------------------

interface MessageRow {
  agentId: string;
  index: number;
  createdAt: number;
  message: Message;
}

const messageRow = fc.record({
  agentId,
  createdAt: time,
  role: fc.constantFrom('user' as const, 'assistant' as const, 'system' as const),
  types: fc.subarray(['text', 'tool_use', 'tool_result', 'image']),
});

const messageRows = fc.array(messageRow, { maxLength: 25 }).map((rows) => {
  const next = new Map<string, number>();
  return rows.map((row): MessageRow => {
    const index = next.get(row.agentId) ?? 0;
    next.set(row.agentId, index + 1);
    const content = row.types.map((type) => ({ type, text: 'x' })) as unknown as Message['content'];
    return { agentId: row.agentId, index, createdAt: row.createdAt, message: { role: row.role, content } };
  });
});

const messageFilters: fc.Arbitrary<MessageFilters> = fc.record(
  {
    ...page,
    agentId: fc.option(agentId, { nil: undefined }),
    role: fc.option(fc.constantFrom('user' as const, 'assistant' as const, 'system' as const), {
      nil: undefined,
    }),
    contentType: fc.option(fc.constantFrom('text', 'tool_use', 'image', 'audio'), { nil: undefined }),
  },
  { requiredKeys: [] },
);

function modelMessages(rows: MessageRow[], q: NormalizedMessageQuery): string[] {
  const kept = rows.filter(
    (r) =>
      (q.agentId === undefined || r.agentId === q.agentId) &&
      (q.role === undefined || r.message.role === q.role) &&
      (q.contentType === undefined || r.message.content.some((b) => b.type === q.contentType)) &&
      withinTimeBounds(r.createdAt, q),
  );
  kept.sort(
    (a, b) =>
      sign(q.order) * compareKeys([a.createdAt, a.agentId, a.index], [b.createdAt, b.agentId, b.index]),
  );
  return kept.slice(q.offset, q.offset + q.limit).map((r) => `${r.agentId}#${r.index}`);
}

// ---- tool calls ------------------------------------------------------------

interface ToolCallRow {
  agentId: string;
  index: number;
  record: ToolCallRecord;
}

const toolCallRows = fc
  .array(
    fc.record({
      agentId,
      id: fc.constantFrom('t1', 't2', 'toolcall-0', 'T1'),
      name: fc.constantFrom('bash', 'fs_read', 'todo'),
      state: fc.constantFrom('COMPLETED' as const, 'FAILED' as const, 'DENIED' as const),
      isError: fc.option(fc.boolean(), { nil: undefined }),
      required: fc.boolean(),
      createdAt: time,
      updatedAt: time,
    }),
    { maxLength: 25 },
  )
  .map((rows) => {
    const next = new Map<string, number>();
    return rows.map((row): ToolCallRow => {
      const index = next.get(row.agentId) ?? 0;
      next.set(row.agentId, index + 1);
      const record: ToolCallRecord = {
        id: row.id,
        name: row.name,
        input: {},
        state: row.state,
        approval: { required: row.required },
        createdAt: row.createdAt,
        updatedAt: row.updatedAt,
        auditTrail: [],
      };
      if (row.isError !== undefined) record.isError = row.isError;
      return { agentId: row.agentId, index, record };
    });
  });

const toolCallFilters: fc.Arbitrary<ToolCallFilters> = fc.record(
  {
    ...page,
    agentId: fc.option(agentId, { nil: undefined }),
    toolName: fc.option(fc.constantFrom('bash', 'todo', 'missing'), { nil: undefined }),
    state: fc.option(fc.constantFrom('COMPLETED' as const, 'FAILED' as const), { nil: undefined }),
    isError: fc.option(fc.boolean(), { nil: undefined }),
    hasApproval: fc.option(fc.boolean(), { nil: undefined }),
    sortBy: fc.option(fc.constantFrom('created_at' as const, 'updated_at' as const), { nil: undefined }),
  },
  { requiredKeys: [] },
);

function modelToolCalls(rows: ToolCallRow[], q: NormalizedToolCallQuery): string[] {
  const kept = rows.filter(
    ({ agentId: id, record }) =>
      (q.agentId === undefined || id === q.agentId) &&
      (q.toolName === undefined || record.name === q.toolName) &&
      (q.state === undefined || record.state === q.state) &&
      (q.isError === undefined || (record.isError === true) === q.isError) &&
      (q.hasApproval === undefined || record.approval.required === q.hasApproval) &&
      withinTimeBounds(record.createdAt, q),
  );
  kept.sort(
    (a, b) =>
      sign(q.order) *
      compareKeys(
        [a.record[q.sortBy], a.agentId, a.record.id, a.index],
        [b.record[q.sortBy], b.agentId, b.record.id, b.index],
      ),
  );
  return kept.slice(q.offset, q.offset + q.limit).map((r) => `${r.agentId}#${r.index}`);
}

// ---- sessions --------------------------------------------------------------

interface SessionRow {
  agentId: string;
  info: AgentInfo;
  updatedAt: number;
}

const sessionRows = fc
  .uniqueArray(
    fc.record({
      agentId,
      templateId: fc.constantFrom('t-a', 't-b'),
      userId: fc.option(fc.constantFrom('u1', 'u2'), { nil: undefined }),
      createdAt: time,
      messageCount: fc.integer({ min: 0, max: 3 }),
      updatedAt: time,
    }),
    { selector: (row) => row.agentId },
  )
  .map((rows) =>
    rows.map(
      (row): SessionRow => ({
        agentId: row.agentId,
        updatedAt: row.updatedAt,
        info: {
          agentId: row.agentId,
          templateId: row.templateId,
          createdAt: new Date(row.createdAt).toISOString(),
          lineage: [],
          configVersion: 'v',
          messageCount: row.messageCount,
          lastSfpIndex: 0,
          ...(row.userId ? { metadata: { userId: row.userId } } : {}),
        },
      }),
    ),
  );

const sessionFilters: fc.Arbitrary<SessionFilters> = fc.record(
  {
    ...page,
    agentId: fc.option(agentId, { nil: undefined }),
    templateId: fc.option(fc.constantFrom('t-a', 't-c'), { nil: undefined }),
    userId: fc.option(fc.constantFrom('u1', 'u3'), { nil: undefined }),
    sortBy: fc.option(
      fc.constantFrom('created_at' as const, 'updated_at' as const, 'message_count' as const),
      {
        nil: undefined,
      },
    ),
  },
  { requiredKeys: [] },
);

function modelSessions(rows: SessionRow[], q: NormalizedSessionQuery): string[] {
  const created = (r: SessionRow) => Date.parse(r.info.createdAt);
  const key = {
    createdAt: created,
    updatedAt: (r: SessionRow) => r.updatedAt,
    messageCount: (r: SessionRow) => r.info.messageCount,
  }[q.sortBy];
  const kept = rows.filter(
    (r) =>
      (q.agentId === undefined || r.agentId === q.agentId) &&
      (q.templateId === undefined || r.info.templateId === q.templateId) &&
      (q.userId === undefined || r.info.metadata?.userId === q.userId) &&
      withinTimeBounds(created(r), q),
  );
  kept.sort((a, b) => sign(q.order) * compareKeys([key(a), a.agentId], [key(b), b.agentId]));
  return kept.slice(q.offset, q.offset + q.limit).map((r) => r.agentId);
}

// ---- tests -------------------------------------------------------------------

describe('query translation gives the answers of a plain model of the contract', () => {
  it('queryMessages: every combination of agentId, role, contentType, time bounds, order, limit and offset', () => {
    fc.assert(
      fc.property(messageRows, messageFilters, (rows, filters) => {
        const query = normalizeMessageFilters(filters);
        const docs = rows.map((r) =>
          toMessageDocument(r.agentId, r.index, '{}', messageFieldsOf(r.message), r.createdAt),
        );
        const got = execute(docs as unknown as MongoDocument[], messageQueryPlan(query)).map(
          (d) => `${d.agentId}#${d.index}`,
        );
        expect(got).toEqual(modelMessages(rows, query));
      }),
      { numRuns: 400 },
    );
  });

  it('queryToolCalls: every combination of name, state, isError, hasApproval, sortBy, bounds and paging', () => {
    fc.assert(
      fc.property(toolCallRows, toolCallFilters, (rows, filters) => {
        const query = normalizeToolCallFilters(filters);
        const docs = rows.map((r) =>
          toToolCallDocument(r.agentId, r.index, '{}', toolCallFieldsOf(r.record)),
        );
        const got = execute(docs as unknown as MongoDocument[], toolCallQueryPlan(query)).map(
          (d) => `${d.agentId}#${d.index}`,
        );
        expect(got).toEqual(modelToolCalls(rows, query));
      }),
      { numRuns: 400 },
    );
  });

  it('querySessions: every combination of agentId, templateId, userId, sortBy, bounds and paging', () => {
    fc.assert(
      fc.property(sessionRows, sessionFilters, (rows, filters) => {
        const query = normalizeSessionFilters(filters);
        const docs = rows.map((r) => toInfoDocument(r.agentId, '{}', sessionFields(r.info), r.updatedAt));
        const got = execute(docs as unknown as MongoDocument[], sessionQueryPlan(query)).map((d) => d._id);
        expect(got).toEqual(modelSessions(rows, query));
      }),
      { numRuns: 400 },
    );
  });
});

describe('query plans', () => {
  it('defaults to newest first, 100 results, no offset', () => {
    expect(messageQueryPlan(normalizeMessageFilters({}))).toEqual({
      filter: {},
      sort: { createdAt: -1, agentId: -1, index: -1 },
      skip: 0,
      limit: 100,
    });
  });

  it('offset works without limit', () => {
    expect(toolCallQueryPlan(normalizeToolCallFilters({ offset: 7 }))).toMatchObject({ skip: 7, limit: 100 });
  });

  it('drops the agent id from the sort when it is pinned (it is constant, and the agent index serves the rest)', () => {
    expect(messageQueryPlan(normalizeMessageFilters({ agentId: 'a', sortOrder: 'asc' }))?.sort).toEqual({
      createdAt: 1,
      index: 1,
    });
    expect(toolCallQueryPlan(normalizeToolCallFilters({ agentId: 'a', sortBy: 'updated_at' }))?.sort).toEqual(
      {
        updatedAt: -1,
        toolCallId: -1,
        index: -1,
      },
    );
  });

  it('time bounds: startDate/endDate inclusive, createdAfter/createdBefore exclusive, the tighter one wins', () => {
    expect(timeRange(normalizeMessageFilters({ startDate: 10, endDate: 20 }))).toEqual({
      $gte: 10,
      $lte: 20,
    });
    expect(timeRange(normalizeMessageFilters({ createdAfter: 10, createdBefore: 20 }))).toEqual({
      $gt: 10,
      $lt: 20,
    });
    expect(timeRange(normalizeMessageFilters({ startDate: 10, createdAfter: 10 }))).toEqual({ $gt: 10 });
    expect(timeRange(normalizeMessageFilters({ startDate: 11, createdAfter: 10 }))).toEqual({ $gte: 11 });
    expect(timeRange(normalizeMessageFilters({}))).toBeUndefined();
  });

  it('session time bounds apply to the parsed AgentInfo.createdAt, whatever the sort', () => {
    const plan = sessionQueryPlan(
      normalizeSessionFilters({ createdAfter: '1970-01-01T00:00:01.000Z', sortBy: 'updated_at' }),
    );
    expect(plan?.filter).toEqual({ createdAtMs: { $gt: 1000 } });
    expect(plan?.sort).toEqual({ updatedAt: -1, _id: -1 });
  });

  it('values that look like operators or SQL stay plain equality values', () => {
    const plan = sessionQueryPlan(normalizeSessionFilters({ templateId: '$where', userId: "' OR 1=1 --" }));
    expect(plan?.filter).toEqual({ templateId: '$where', userId: "' OR 1=1 --" });
    expect(equalityFields(plan?.filter ?? {})).toEqual(new Set(['templateId', 'userId']));
  });

  it('refuses non-string filter values before they could become operator documents', () => {
    expect(() => normalizeMessageFilters({ agentId: { $ne: null } as unknown as string })).toThrow(
      expect.objectContaining({ code: 'KODE_QUERY' }),
    );
  });
});

describe('every query shape is served by an index', () => {
  const messageShapes: MessageFilters[] = [];
  for (const agent of [undefined, 'a'])
    for (const role of [undefined, 'user' as const])
      for (const contentType of [undefined, 'image'])
        for (const startDate of [undefined, 5])
          for (const sortOrder of ['asc' as const, 'desc' as const])
            messageShapes.push({ agentId: agent, role, contentType, startDate, sortOrder });

  function expectCovered(indexes: readonly MongoIndexSpec[], plan: FindPlan, mustPin?: string) {
    const covering = findCoveringIndex(indexes, plan.filter, plan.sort);
    expect(covering, `no index serves ${JSON.stringify(plan)}`).toBeDefined();
    if (mustPin) expect(covering?.pinnedPrefix, JSON.stringify(plan)).toContain(mustPin);
  }

  it.each(messageShapes)('queryMessages %j', (filters) => {
    const plan = messageQueryPlan(normalizeMessageFilters(filters));
    // The most selective equality available leads the index walk.
    const pin = filters.agentId
      ? 'agentId'
      : filters.role
        ? 'role'
        : filters.contentType
          ? 'contentTypes'
          : undefined;
    expectCovered(AGENT_INDEXES.messages, plan, pin);
  });

  const toolShapes: ToolCallFilters[] = [];
  for (const agent of [undefined, 'a'])
    for (const toolName of [undefined, 'bash'])
      for (const state of [undefined, 'FAILED' as const])
        for (const isError of [undefined, true])
          for (const sortBy of ['created_at' as const, 'updated_at' as const])
            for (const sortOrder of ['asc' as const, 'desc' as const])
              toolShapes.push({
                agentId: agent,
                toolName,
                state,
                isError,
                sortBy,
                sortOrder,
                hasApproval: isError,
              });

  it.each(toolShapes)('queryToolCalls %j', (filters) => {
    const plan = toolCallQueryPlan(normalizeToolCallFilters(filters));
    const byCreation = filters.sortBy === 'created_at';
    const pin = filters.agentId
      ? 'agentId'
      : byCreation && filters.toolName
        ? 'name'
        : byCreation && filters.state
          ? 'state'
          : undefined;
    expectCovered(AGENT_INDEXES.tool_calls, plan, pin);
  });

  const sessionShapes: SessionFilters[] = [];
  for (const templateId of [undefined, 't'])
    for (const userId of [undefined, 'u'])
      for (const sortBy of ['created_at' as const, 'updated_at' as const, 'message_count' as const])
        for (const sortOrder of ['asc' as const, 'desc' as const])
          sessionShapes.push({ templateId, userId, sortBy, sortOrder, endDate: 99 });

  it.each(sessionShapes)('querySessions %j', (filters) => {
    const plan = sessionQueryPlan(normalizeSessionFilters(filters));
    const pin =
      filters.sortBy === 'created_at'
        ? filters.templateId
          ? 'templateId'
          : filters.userId
            ? 'userId'
            : undefined
        : undefined;
    expectCovered(AGENT_INDEXES.infos, plan, pin);
  });

  it('querySessions by agent id is a point lookup on _id', () => {
    expect(sessionQueryPlan(normalizeSessionFilters({ agentId: 'a' }))?.filter).toEqual({ _id: 'a' });
  });

  it.each([
    {},
    { sinceSeq: 3 },
    { channel: 'monitor' },
    { sinceSeq: 3, channel: 'progress' },
  ])('readEvents pages %j walk the (agentId, seq) index in insertion order', (options) => {
    const filter = eventPageFilter('a', 41, options);
    expect(filter.seq).toEqual({ $gt: 41 });
    const covering = findCoveringIndex(AGENT_INDEXES.events, filter, EVENT_SORT);
    expect(covering?.index.name).toBe('events_agent_seq');
    expect(covering?.pinnedPrefix).toEqual(['agentId']);
  });

  it('loads and deletes of one agent use the unique (agentId, index|position) indexes', () => {
    for (const [role, field] of [
      ['messages', 'index'],
      ['tool_calls', 'index'],
      ['media_cache', 'index'],
      ['snapshots', 'position'],
      ['history_windows', 'position'],
      ['compression_records', 'position'],
      ['recovered_files', 'position'],
    ] as const) {
      expect(findCoveringIndex(AGENT_INDEXES[role], { agentId: 'a' }, { [field]: 1 }), role).toBeDefined();
    }
  });

  it('findCoveringIndex rejects an index whose directions disagree with the sort, or that skips a sort field', () => {
    const indexes: MongoIndexSpec[] = [{ name: 'mixed', key: { a: 1, b: -1 } }];
    expect(findCoveringIndex(indexes, {}, { a: 1, b: 1 })).toBeUndefined();
    expect(findCoveringIndex(indexes, {}, { a: -1, b: 1 })).toBeDefined();
    expect(
      findCoveringIndex([{ name: 'gap', key: { a: 1, c: 1, b: 1 } }], {}, { a: 1, b: 1 }),
    ).toBeUndefined();
    // A range is not an equality: it cannot be skipped over to reach the sort.
    expect(
      findCoveringIndex([{ name: 'r', key: { x: 1, a: 1 } }], { x: { $gt: 1 } }, { a: 1 }),
    ).toBeUndefined();
  });
});

describe('list(prefix) range', () => {
  const INTERESTING = [
    'a',
    'b',
    'z',
    '%',
    '_',
    '*',
    '.',
    '/',
    'é',
    '\ud7ff',
    '\ue000',
    '\uffff',
    '😀',
    '\u{10ffff}',
    '\u{10000}',
  ];
  const char = fc.oneof(
    fc.constantFrom(...INTERESTING),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  );
  const text = fc.array(char, { maxLength: 6 }).map((chars) => chars.join(''));

  /** Whether `list(prefix)` finds `id`. */
  function inRange(id: string, filter: MongoDocument): boolean {
    return matches({ _id: id }, filter);
  }

  /**
   * What an id can be (assertAgentId): no NUL, no lone surrogate. AgentStore
   * answers a prefix no id can start with itself (conformance), so the
   * filter is asked only for possible ones.
   */
  const possibleId = (value: string) => !value.includes('\u0000') && value.isWellFormed();

  it('matches exactly the ids that start with the prefix, compared as MongoDB does (UTF-8 bytes)', () => {
    fc.assert(
      fc.property(
        text.filter((p) => p.length > 0 && possibleId(p)),
        text.filter(possibleId),
        fc.boolean(),
        (prefix, tail, extend) => {
          const id = extend ? prefix + tail : tail;
          expect(inRange(id, agentIdPrefixFilter(prefix))).toBe(id.startsWith(prefix));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('does not miss ids continuing above U+FFFF (prefix + "\\uffff" would)', () => {
    const filter = agentIdPrefixFilter('agent-');
    expect(inRange('agent-😀', filter)).toBe(true);
    expect(inRange('agent-\uffff', filter)).toBe(true);
    expect(inRange('agent.', filter)).toBe(false);
  });

  it('the upper bound skips the surrogate range and has none after U+10FFFF', () => {
    expect(prefixUpperBound('a')).toBe('b');
    expect(prefixUpperBound('a\ud7ff')).toBe('a\ue000');
    expect(prefixUpperBound('a\u{10ffff}')).toBe('b');
    expect(prefixUpperBound('\u{10ffff}\u{10ffff}')).toBeUndefined();
    expect(agentIdPrefixFilter('\u{10ffff}')).toEqual({ _id: { $gte: '\u{10ffff}' } });
  });

  it('no prefix (or an empty one) lists everything', () => {
    expect(agentIdPrefixFilter(undefined)).toEqual({});
    expect(agentIdPrefixFilter('')).toEqual({});
  });
});

describe('aggregateStats grouping', () => {
  it('groups tool calls of one agent by name and state on the server', () => {
    expect(toolCallStatsPipeline('a/b')).toEqual([
      { $match: { agentId: 'a/b' } },
      { $group: { _id: { name: '$name', state: '$state' }, count: { $sum: 1 } } },
    ]);
  });

  it('folds (name, state) groups into exact per-name and per-state counts', () => {
    const stats = toolCallStatsFromGroups([
      { _id: { name: 'bash', state: 'COMPLETED' }, count: 2 },
      { _id: { name: 'bash', state: 'FAILED' }, count: 1 },
      { _id: { name: 'todo', state: 'COMPLETED' }, count: 4 },
    ]);
    expect(stats).toEqual({
      toolCallsByName: { bash: 3, todo: 4 },
      toolCallsByState: { COMPLETED: 6, FAILED: 1 },
    });
  });

  it('a tool named "__proto__" is counted as an own property, not a prototype change', () => {
    const { toolCallsByName } = toolCallStatsFromGroups([
      { _id: { name: '__proto__', state: 'COMPLETED' }, count: 1 },
    ]);
    expect(Object.hasOwn(toolCallsByName, '__proto__')).toBe(true);
    expect(toolCallsByName.__proto__).toBe(1);
    expect(Object.getPrototypeOf(toolCallsByName)).toBe(Object.prototype);
  });

  it('no tool calls: empty records', () => {
    expect(toolCallStatsFromGroups([])).toEqual({ toolCallsByName: {}, toolCallsByState: {} });
  });
});
