import type { MessageFilters, SessionFilters, ToolCallFilters } from '../../../src/types.js';
import { check, checkEqual, checkRejects, sleep, waitPast } from '../../runner/assertions.js';
import {
  agentInfo,
  conversation,
  textMessage,
  toolCall,
  toolResultMessage,
  toolUseMessage,
} from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

type QueryMethod = 'querySessions' | 'queryMessages' | 'queryToolCalls';
const METHODS: QueryMethod[] = ['querySessions', 'queryMessages', 'queryToolCalls'];

function query(ctx: CaseContext, method: QueryMethod, filters: object): Promise<unknown[]> {
  const store = ctx.store;
  if (method === 'querySessions') return store.querySessions(filters as SessionFilters);
  if (method === 'queryMessages') return store.queryMessages(filters as MessageFilters);
  return store.queryToolCalls(filters as ToolCallFilters);
}

/** A far-future day (unique per case) so that session and tool-call times never meet other cases' data. */
function uniqueDay(ctx: CaseContext): number {
  const token = ctx.agentId('day');
  let hash = 0;
  for (const ch of token) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return Date.UTC(2300, 0, 1) + (hash % 100_000) * 86_400_000;
}

/** One agent with `n` sessions/messages/tool calls to page through, scoped so other data never interferes. */
async function seedPaging(ctx: CaseContext, n: number) {
  const day = uniqueDay(ctx);
  const agent = ctx.agentId('paging');
  const templateId = `${agent}-template`;
  const sessionIds: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${agent}/s${String(i).padStart(3, '0')}`;
    sessionIds.push(id);
    await ctx.store.saveInfo(
      id,
      agentInfo(id, { templateId, createdAt: new Date(day + i * 1000).toISOString() }),
    );
  }
  const messages = conversation(n);
  await ctx.store.saveMessages(agent, messages);
  const records = Array.from({ length: n }, (_, i) =>
    toolCall(`toolu_${String(i).padStart(3, '0')}`, { createdAt: day + i * 1000 }),
  );
  await ctx.store.saveToolCallRecords(agent, records);
  return {
    filters: {
      querySessions: { templateId } as object,
      queryMessages: { agentId: agent } as object,
      queryToolCalls: { agentId: agent } as object,
    },
    // Newest first: sessions and tool calls by time; messages saved together tie on time and go by position.
    newestFirst: {
      querySessions: sessionIds.map((agentId) => agentId).reverse(),
      queryMessages: [...messages].reverse(),
      queryToolCalls: [...records].reverse(),
    },
  };
}

function keyOf(method: QueryMethod, row: unknown): unknown {
  return method === 'querySessions' ? (row as { agentId: string }).agentId : row;
}

function pagingCase(
  id: string,
  title: string,
  n: number,
  page: (all: unknown[]) => { filters: object; expected: unknown[] },
): Array<Omit<StoreCase, 'id'> & { id: string }> {
  return METHODS.map((method) => ({
    id: `${id}.${method}`,
    title: `${method}: ${title}`,
    run: async (ctx: CaseContext) => {
      const seeded = await seedPaging(ctx, n);
      const { filters, expected } = page(seeded.newestFirst[method]);
      const rows = await query(ctx, method, { ...seeded.filters[method], ...filters });
      checkEqual(
        rows.map((r) => keyOf(method, r)),
        expected,
        `${method}(${JSON.stringify(filters)})`,
      );
    },
  }));
}

function refusalCase(
  id: string,
  title: string,
  filters: Record<string, unknown>,
): Array<Omit<StoreCase, 'id'> & { id: string }> {
  return METHODS.map((method) => ({
    id: `${id}.${method}`,
    title: `${method}: ${title}`,
    run: async (ctx: CaseContext) => {
      const agent = ctx.agentId('q');
      await ctx.store.saveInfo(agent, agentInfo(agent));
      await ctx.store.saveMessages(agent, conversation(2));
      await ctx.store.saveToolCallRecords(agent, [toolCall('toolu_1')]);
      await checkRejects(() => query(ctx, method, { agentId: agent, ...filters }), 'KODE_QUERY', method);
      // Nothing was executed or changed by the refused query.
      checkEqual((await ctx.store.loadMessages(agent)).length, 2, 'messages after the refused query');
      checkEqual(
        (await query(ctx, method, { agentId: agent })).length > 0,
        true,
        'a normal query still works',
      );
    },
  }));
}

export const queryCases: StoreCase[] = defineCases('query', [
  ...pagingCase('limit-default-100', 'without limit at most 100 rows are returned', 120, (all) => ({
    filters: {},
    expected: all.slice(0, 100),
  })),
  ...pagingCase('limit-zero', 'limit 0 returns nothing', 5, () => ({ filters: { limit: 0 }, expected: [] })),
  ...pagingCase('limit', 'limit n returns the first n rows', 8, (all) => ({
    filters: { limit: 3 },
    expected: all.slice(0, 3),
  })),
  ...pagingCase('offset-without-limit', 'offset works without limit', 8, (all) => ({
    filters: { offset: 5 },
    expected: all.slice(5),
  })),
  ...pagingCase('offset-and-limit', 'offset and limit page through in order', 9, (all) => ({
    filters: { offset: 3, limit: 4 },
    expected: all.slice(3, 7),
  })),
  ...pagingCase('offset-past-end', 'an offset past the last row returns nothing', 4, () => ({
    filters: { offset: 10 },
    expected: [],
  })),
  ...pagingCase('sort-asc', "sortOrder 'asc' returns oldest first", 6, (all) => ({
    filters: { sortOrder: 'asc' },
    expected: [...all].reverse(),
  })),
  ...pagingCase('sort-desc-default', 'the default order is newest first', 6, (all) => ({
    filters: {},
    expected: all,
  })),
  ...refusalCase('unknown-sort-by', 'an unknown sortBy is refused with a QueryError', { sortBy: 'agent_id' }),
  ...refusalCase('injected-sort-by', 'a sortBy carrying SQL is refused with a QueryError, never run', {
    sortBy: 'created_at; DELETE FROM messages; --',
  }),
  ...refusalCase('unknown-sort-order', 'an unknown sortOrder is refused with a QueryError', {
    sortOrder: 'DESC; DROP TABLE agents',
  }),
  ...refusalCase('negative-limit', 'a negative limit is refused with a QueryError', { limit: -1 }),
  ...refusalCase('fractional-offset', 'a fractional offset is refused with a QueryError', { offset: 1.5 }),
  ...refusalCase('huge-limit', 'a limit beyond 2^53 - 1 is refused with a QueryError, not a driver error', {
    limit: 1e20,
  }),
  ...refusalCase(
    'huge-offset',
    'an offset beyond 2^53 - 1 is refused with a QueryError, not a driver error',
    {
      offset: 2 ** 63,
    },
  ),
  ...refusalCase('string-limit', "a limit given as a string ('10') is refused with a QueryError", {
    limit: '10',
  }),
  ...refusalCase('bad-date', 'an unreadable date is refused with a QueryError', {
    createdAfter: 'yesterday-ish',
  }),
  {
    id: 'filter-values-bound.templateId',
    title: 'a filter value carrying SQL or operators matches literally, nothing more',
    run: async (ctx) => {
      const agent = ctx.agentId('bound');
      await ctx.store.saveInfo(agent, agentInfo(agent, { templateId: `${agent}-t` }));
      for (const value of [`x' OR '1'='1`, '%', '.*', '{"$ne": null}']) {
        checkEqual(await ctx.store.querySessions({ templateId: value, limit: 5 }), [], `templateId ${value}`);
        checkEqual(await ctx.store.queryToolCalls({ toolName: value, limit: 5 }), [], `toolName ${value}`);
      }
      const mongoish = { $ne: 'x' } as unknown as string;
      await checkRejects(
        () => ctx.store.querySessions({ templateId: mongoish }),
        'KODE_QUERY',
        'object filter',
      );
    },
  },
  {
    id: 'messages.created-after-finds-only-new',
    title:
      'queryMessages({createdAfter}) finds only messages first saved after that time, though the whole conversation was re-saved',
    run: async (ctx) => {
      const agent = ctx.agentId('new');
      const old = conversation(3);
      await ctx.store.saveMessages(agent, old);
      await sleep(5);
      const boundary = Date.now();
      await waitPast(boundary + 5);
      const all = [...old, textMessage('user', 'new 1'), textMessage('assistant', 'new 2')];
      await ctx.store.saveMessages(agent, all);
      checkEqual(
        await ctx.store.queryMessages({ agentId: agent, createdAfter: boundary, sortOrder: 'asc' }),
        all.slice(3),
        'messages after the boundary',
      );
      checkEqual(
        await ctx.store.queryMessages({
          agentId: agent,
          createdBefore: new Date(boundary),
          sortOrder: 'asc',
        }),
        old,
        'messages before the boundary',
      );
    },
  },
  {
    id: 'messages.time-survives-shrink-and-regrow',
    title: 'messages kept through a shrinking save keep their first-saved time',
    run: async (ctx) => {
      const agent = ctx.agentId('keep');
      await ctx.store.saveMessages(agent, conversation(4));
      await sleep(5);
      const boundary = Date.now();
      await waitPast(boundary + 5);
      await ctx.store.saveMessages(agent, conversation(2));
      await ctx.store.saveMessages(agent, conversation(5));
      checkEqual(
        (await ctx.store.queryMessages({ agentId: agent, startDate: boundary, sortOrder: 'asc' })).length,
        3,
        'messages first saved after the boundary',
      );
    },
  },
  {
    id: 'messages.role',
    title: 'queryMessages filters by role',
    run: async (ctx) => {
      const agent = ctx.agentId('role');
      const messages = [textMessage('system', 's'), ...conversation(4)];
      await ctx.store.saveMessages(agent, messages);
      for (const role of ['user', 'assistant', 'system'] as const) {
        checkEqual(
          await ctx.store.queryMessages({ agentId: agent, role, sortOrder: 'asc' }),
          messages.filter((m) => m.role === role),
          `role ${role}`,
        );
      }
    },
  },
  {
    id: 'messages.content-type',
    title: 'queryMessages filters by content block type (any block of the message)',
    run: async (ctx) => {
      const agent = ctx.agentId('ctype');
      const messages = [
        textMessage('user', 'hi'),
        toolUseMessage('toolu_1', 'fs_read', { path: 'a' }),
        toolResultMessage('toolu_1', 'ok'),
        {
          role: 'user' as const,
          content: [{ type: 'image' as const, file_id: 'f1', mime_type: 'image/png' }],
        },
      ];
      await ctx.store.saveMessages(agent, messages);
      const asc = { agentId: agent, sortOrder: 'asc' as const };
      checkEqual(
        await ctx.store.queryMessages({ ...asc, contentType: 'text' }),
        messages.slice(0, 2),
        'text',
      );
      checkEqual(
        await ctx.store.queryMessages({ ...asc, contentType: 'tool_use' }),
        [messages[1]],
        'tool_use',
      );
      checkEqual(
        await ctx.store.queryMessages({ ...asc, contentType: 'tool_result' }),
        [messages[2]],
        'tool_result',
      );
      checkEqual(await ctx.store.queryMessages({ ...asc, contentType: 'image' }), [messages[3]], 'image');
      checkEqual(await ctx.store.queryMessages({ ...asc, contentType: 'audio' }), [], 'audio');
    },
  },
  {
    id: 'messages.agent-scope',
    title: "queryMessages({agentId}) never returns another agent's messages",
    run: async (ctx) => {
      const [a, b] = [ctx.agentId('a'), ctx.agentId('b')];
      await ctx.store.saveMessages(a, conversation(3, 0, 'a'));
      await ctx.store.saveMessages(b, conversation(3, 0, 'b'));
      checkEqual(
        await ctx.store.queryMessages({ agentId: a, sortOrder: 'asc' }),
        conversation(3, 0, 'a'),
        'a',
      );
    },
  },
  {
    id: 'sessions.filters',
    title: 'querySessions filters by templateId, userId and agentId',
    run: async (ctx) => {
      const base = ctx.agentId('sess');
      const [a, b, c] = [`${base}/a`, `${base}/b`, `${base}/c`];
      const t1 = `${base}-t1`;
      const u1 = `${base}-u1`;
      await ctx.store.saveInfo(a, agentInfo(a, { templateId: t1, metadata: { userId: u1 } }));
      await ctx.store.saveInfo(b, agentInfo(b, { templateId: t1, metadata: { userId: `${base}-u2` } }));
      await ctx.store.saveInfo(c, agentInfo(c, { templateId: `${base}-t2`, metadata: { userId: u1 } }));
      const ids = async (f: SessionFilters) =>
        (await ctx.store.querySessions(f)).map((s) => s.agentId).sort();
      checkEqual(await ids({ templateId: t1 }), [a, b], 'templateId');
      checkEqual(await ids({ userId: u1 }), [a, c], 'userId');
      checkEqual(await ids({ templateId: t1, userId: u1 }), [a], 'templateId and userId');
      checkEqual(await ids({ agentId: b }), [b], 'agentId');
    },
  },
  {
    id: 'sessions.result-shape',
    title: 'querySessions returns SessionInfo built from the saved AgentInfo (breakpoint only when set)',
    run: async (ctx) => {
      const [a, b] = [ctx.agentId('shape'), ctx.agentId('shape')];
      await ctx.store.saveInfo(
        a,
        agentInfo(a, { messageCount: 7, lastSfpIndex: 5, breakpoint: 'TOOL_PENDING' }),
      );
      await ctx.store.saveInfo(b, agentInfo(b, { messageCount: 0, lastSfpIndex: 0 }));
      checkEqual(
        await ctx.store.querySessions({ agentId: a }),
        [
          {
            agentId: a,
            templateId: 'conformance-template',
            createdAt: '2026-11-22T15:32:16.863Z',
            messageCount: 7,
            lastSfpIndex: 5,
            breakpoint: 'TOOL_PENDING',
          },
        ],
        'session with breakpoint',
      );
      const [session] = await ctx.store.querySessions({ agentId: b });
      check(session && !('breakpoint' in session), 'an absent breakpoint came back as a key');
    },
  },
  {
    id: 'sessions.odd-shapes',
    title:
      'querySessions gives an info with missing, null or oddly typed session fields the defaults, and keeps the rest as saved',
    run: async (ctx) => {
      const base = ctx.agentId('odd');
      const templateId = `${base}-t`;
      // Saved as callers may (the SDK types nothing at this boundary); each
      // session field: absent or null reads as its default ('' or 0), any
      // other value comes back as saved, a null breakpoint included.
      const infos: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
        [`${base}/missing`, { templateId }, { templateId, createdAt: '', messageCount: 0, lastSfpIndex: 0 }],
        [
          `${base}/nulls`,
          { templateId, createdAt: null, messageCount: null, lastSfpIndex: null, breakpoint: null },
          { templateId, createdAt: '', messageCount: 0, lastSfpIndex: 0, breakpoint: null },
        ],
        [
          `${base}/types`,
          {
            templateId,
            createdAt: 1_700_000_000_000,
            messageCount: '12',
            lastSfpIndex: { at: [1, 2] },
            breakpoint: { state: 'TOOL_PENDING', calls: ['a'] },
            metadata: { userId: 7 },
          },
          {
            templateId,
            createdAt: 1_700_000_000_000,
            messageCount: '12',
            lastSfpIndex: { at: [1, 2] },
            breakpoint: { state: 'TOOL_PENDING', calls: ['a'] },
          },
        ],
        [
          `${base}/falsy`,
          { templateId, createdAt: '', messageCount: 0, lastSfpIndex: 0, breakpoint: false, extra: 'x' },
          { templateId, createdAt: '', messageCount: 0, lastSfpIndex: 0, breakpoint: false },
        ],
      ];
      for (const [id, info] of infos) await ctx.store.saveInfo(id, { agentId: id, ...info } as never);
      for (const [id, , session] of infos) {
        checkEqual(await ctx.store.querySessions({ agentId: id }), [{ agentId: id, ...session }], id);
      }
      checkEqual(
        (await ctx.store.querySessions({ templateId, sortOrder: 'asc' })).length,
        infos.length,
        'all of them by template',
      );
    },
  },
  {
    id: 'sessions.date-bounds',
    title:
      'startDate/endDate are inclusive, createdAfter/createdBefore exclusive; Date, ms and ISO strings agree',
    run: async (ctx) => {
      const day = uniqueDay(ctx);
      const base = ctx.agentId('dates');
      const templateId = `${base}-t`;
      const ids = [0, 1, 2, 3].map((i) => `${base}/${i}`);
      for (const [i, id] of ids.entries()) {
        await ctx.store.saveInfo(
          id,
          agentInfo(id, { templateId, createdAt: new Date(day + i * 60_000).toISOString() }),
        );
      }
      const at = (i: number) => day + i * 60_000;
      const found = async (f: SessionFilters) =>
        (await ctx.store.querySessions({ templateId, sortOrder: 'asc', ...f })).map((s) => s.agentId);
      checkEqual(await found({ startDate: at(1) }), ids.slice(1), 'startDate inclusive');
      checkEqual(await found({ createdAfter: at(1) }), ids.slice(2), 'createdAfter exclusive');
      checkEqual(await found({ endDate: at(2) }), ids.slice(0, 3), 'endDate inclusive');
      checkEqual(await found({ createdBefore: at(2) }), ids.slice(0, 2), 'createdBefore exclusive');
      checkEqual(
        await found({ createdAfter: new Date(at(0)), createdBefore: new Date(at(3)) }),
        ids.slice(1, 3),
        'Date',
      );
      checkEqual(
        await found({ startDate: new Date(at(1)).toISOString(), endDate: new Date(at(1)).toISOString() }),
        [ids[1]],
        'ISO strings',
      );
    },
  },
  {
    id: 'sessions.sort-by-updated-at',
    title: "sortBy 'updated_at' follows the last saveInfo, not createdAt",
    run: async (ctx) => {
      const base = ctx.agentId('upd');
      const templateId = `${base}-t`;
      const [a, b, c] = [`${base}/a`, `${base}/b`, `${base}/c`];
      for (const id of [a, b, c]) {
        await ctx.store.saveInfo(id, agentInfo(id, { templateId }));
        await waitPast(Date.now() + 2);
      }
      await ctx.store.saveInfo(a, agentInfo(a, { templateId, messageCount: 1 }));
      const order = (await ctx.store.querySessions({ templateId, sortBy: 'updated_at' })).map(
        (s) => s.agentId,
      );
      checkEqual(order, [a, c, b], 'newest update first');
    },
  },
  {
    id: 'sessions.sort-by-message-count',
    title: "sortBy 'message_count' orders by AgentInfo.messageCount, ties by agent id in the same direction",
    run: async (ctx) => {
      const base = ctx.agentId('mc');
      const templateId = `${base}-t`;
      const counts: Record<string, number> = { a: 5, b: 50, c: 5, d: 0 };
      for (const [k, messageCount] of Object.entries(counts)) {
        await ctx.store.saveInfo(`${base}/${k}`, agentInfo(`${base}/${k}`, { templateId, messageCount }));
      }
      const order = async (sortOrder: 'asc' | 'desc') =>
        (await ctx.store.querySessions({ templateId, sortBy: 'message_count', sortOrder })).map((s) =>
          s.agentId.slice(base.length + 1),
        );
      checkEqual(await order('desc'), ['b', 'c', 'a', 'd'], 'desc');
      checkEqual(await order('asc'), ['d', 'a', 'c', 'b'], 'asc');
    },
  },
  {
    id: 'toolcalls.ties-by-id',
    title: 'tool calls with equal createdAt are ordered by id, in the direction of sortOrder',
    run: async (ctx) => {
      const agent = ctx.agentId('ties');
      const day = uniqueDay(ctx);
      const records = ['toolu_b', 'toolu_c', 'toolu_a'].map((id) => toolCall(id, { createdAt: day }));
      await ctx.store.saveToolCallRecords(agent, records);
      const ids = async (sortOrder: 'asc' | 'desc') =>
        (await ctx.store.queryToolCalls({ agentId: agent, sortOrder })).map((r) => r.id);
      checkEqual(await ids('asc'), ['toolu_a', 'toolu_b', 'toolu_c'], 'asc');
      checkEqual(await ids('desc'), ['toolu_c', 'toolu_b', 'toolu_a'], 'desc');
    },
  },
  {
    id: 'toolcalls.filters',
    title: 'queryToolCalls filters by toolName, state, isError and hasApproval',
    run: async (ctx) => {
      const agent = ctx.agentId('tc');
      const day = uniqueDay(ctx);
      const records = [
        toolCall('t1', { name: 'fs_read', createdAt: day + 1 }),
        toolCall('t2', {
          name: 'fs_write',
          state: 'DENIED',
          approval: { required: true, decision: 'deny' },
          createdAt: day + 2,
        }),
        toolCall('t3', {
          name: 'fs_write',
          state: 'FAILED',
          isError: true,
          error: 'EACCES',
          createdAt: day + 3,
        }),
        toolCall('t4', {
          name: 'bash_run',
          state: 'APPROVAL_REQUIRED',
          approval: { required: true },
          createdAt: day + 4,
        }),
      ];
      await ctx.store.saveToolCallRecords(agent, records);
      const ids = async (f: ToolCallFilters) =>
        (await ctx.store.queryToolCalls({ agentId: agent, sortOrder: 'asc', ...f })).map((r) => r.id);
      checkEqual(await ids({ toolName: 'fs_write' }), ['t2', 't3'], 'toolName');
      checkEqual(await ids({ state: 'FAILED' }), ['t3'], 'state');
      checkEqual(await ids({ isError: true }), ['t3'], 'isError true');
      checkEqual(await ids({ isError: false }), ['t1', 't2', 't4'], 'isError false');
      checkEqual(await ids({ hasApproval: true }), ['t2', 't4'], 'hasApproval true');
      checkEqual(await ids({ hasApproval: false }), ['t1', 't3'], 'hasApproval false');
      checkEqual(await ids({ toolName: 'fs_write', hasApproval: true }), ['t2'], 'combined');
    },
  },
  {
    id: 'toolcalls.sort-by-updated-at',
    title: "sortBy 'updated_at' orders tool calls by their updatedAt",
    run: async (ctx) => {
      const agent = ctx.agentId('upd');
      const day = uniqueDay(ctx);
      const records = [
        toolCall('t1', { createdAt: day + 1, updatedAt: day + 30 }),
        toolCall('t2', { createdAt: day + 2, updatedAt: day + 10 }),
        toolCall('t3', { createdAt: day + 3, updatedAt: day + 20 }),
      ];
      await ctx.store.saveToolCallRecords(agent, records);
      const ids = (await ctx.store.queryToolCalls({ agentId: agent, sortBy: 'updated_at' })).map((r) => r.id);
      checkEqual(ids, ['t1', 't3', 't2'], 'by updatedAt desc');
    },
  },
  {
    id: 'toolcalls.returns-records',
    title: 'queryToolCalls returns the whole records exactly as saved',
    run: async (ctx) => {
      const agent = ctx.agentId('whole');
      const record = toolCall('t1', { result: { falsy: [0, false, '', null] }, durationMs: 0 });
      await ctx.store.saveToolCallRecords(agent, [record]);
      checkEqual(await ctx.store.queryToolCalls({ agentId: agent }), [record], 'records');
    },
  },
]);
