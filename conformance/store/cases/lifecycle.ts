import { compareCodePoints } from '../../../src/strings.js';
import { check, checkEqual, collect } from '../../runner/assertions.js';
import {
  agentInfo,
  compressionRecord,
  conversation,
  historyWindow,
  mediaRecord,
  recoveredFile,
  snapshot,
  timeline,
  todoSnapshot,
  toolCall,
} from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

/** Saves one of everything for `id`. */
export async function saveEverything(ctx: CaseContext, id: string, store = ctx.store): Promise<void> {
  await store.saveInfo(id, agentInfo(id, { messageCount: 3 }));
  await store.saveMessages(id, conversation(3));
  await store.saveToolCallRecords(id, [toolCall('toolu_1'), toolCall('toolu_2', { state: 'FAILED' })]);
  await store.saveTodos(id, todoSnapshot(1));
  await store.appendEvent(id, timeline(1));
  await store.appendEvent(id, timeline(2, 'monitor'));
  await store.saveHistoryWindow(id, historyWindow('window-1'));
  await store.saveCompressionRecord(id, compressionRecord('comp-1'));
  await store.saveRecoveredFile(id, recoveredFile('/workspace/project/a.ts'));
  await store.saveMediaCache(id, [mediaRecord('k1')]);
  await store.saveSnapshot(id, snapshot('sfp-1', '2026-11-22T15:32:16.863Z'));
}

/** Checks that every kind of record of `id` is gone. */
export async function checkNothingLeft(ctx: CaseContext, id: string, store = ctx.store): Promise<void> {
  check(!(await store.exists(id)), `exists(${id}) after delete`);
  checkEqual(await store.loadInfo(id), undefined, 'info');
  checkEqual(await store.loadMessages(id), [], 'messages');
  checkEqual(await store.loadToolCallRecords(id), [], 'tool calls');
  checkEqual(await store.loadTodos(id), undefined, 'todos');
  checkEqual(await collect(store.readEvents(id)), [], 'events');
  checkEqual(await store.loadHistoryWindows(id), [], 'history windows');
  checkEqual(await store.loadCompressionRecords(id), [], 'compression records');
  checkEqual(await store.loadRecoveredFiles(id), [], 'recovered files');
  checkEqual(await store.loadMediaCache(id), [], 'media cache');
  checkEqual(await store.listSnapshots(id), [], 'snapshots');
  checkEqual(await store.loadSnapshot(id, 'sfp-1'), undefined, 'snapshot');
  if (ctx.implements('queryable')) {
    checkEqual(await store.querySessions({ agentId: id }), [], 'querySessions');
    checkEqual(await store.queryMessages({ agentId: id }), [], 'queryMessages');
    checkEqual(await store.queryToolCalls({ agentId: id }), [], 'queryToolCalls');
  }
  check(!(await store.list(id)).includes(id), 'list still names the deleted agent');
}

/** Checks that `id` still has everything `saveEverything` wrote. */
export async function checkEverything(ctx: CaseContext, id: string, store = ctx.store): Promise<void> {
  check(await store.exists(id), `exists(${id})`);
  checkEqual(await store.loadInfo(id), agentInfo(id, { messageCount: 3 }), 'info');
  checkEqual(await store.loadMessages(id), conversation(3), 'messages');
  checkEqual((await store.loadToolCallRecords(id)).length, 2, 'tool calls');
  checkEqual(await store.loadTodos(id), todoSnapshot(1), 'todos');
  checkEqual(await collect(store.readEvents(id)), [timeline(1), timeline(2, 'monitor')], 'events');
  checkEqual((await store.loadHistoryWindows(id)).length, 1, 'history windows');
  checkEqual((await store.loadCompressionRecords(id)).length, 1, 'compression records');
  checkEqual((await store.loadRecoveredFiles(id)).length, 1, 'recovered files');
  checkEqual(await store.loadMediaCache(id), [mediaRecord('k1')], 'media cache');
  checkEqual((await store.listSnapshots(id)).length, 1, 'snapshots');
}

function existsAfter(
  id: string,
  what: string,
  save: (ctx: CaseContext, agentId: string) => Promise<unknown>,
): Omit<StoreCase, 'id'> & { id: string } {
  return {
    id,
    title: `exists is true once ${what} was saved`,
    run: async (ctx) => {
      const agentId = ctx.agentId('exists');
      check(!(await ctx.store.exists(agentId)), 'exists before anything was saved');
      await save(ctx, agentId);
      check(await ctx.store.exists(agentId), `exists after ${what}`);
    },
  };
}

export const lifecycleCases: StoreCase[] = [
  ...defineCases('exists', [
    {
      id: 'unknown-agent',
      title: 'exists is false for an agent nothing was saved for',
      run: async (ctx) => check(!(await ctx.store.exists(ctx.agentId('nobody'))), 'exists'),
    },
    existsAfter('after-info', 'only AgentInfo', (ctx, id) => ctx.store.saveInfo(id, agentInfo(id))),
    existsAfter('after-messages', 'only messages', (ctx, id) => ctx.store.saveMessages(id, conversation(1))),
    existsAfter('after-event', 'only an event', (ctx, id) => ctx.store.appendEvent(id, timeline(1))),
    existsAfter('after-tool-calls', 'only tool-call records', (ctx, id) =>
      ctx.store.saveToolCallRecords(id, [toolCall('toolu_1')]),
    ),
    existsAfter('after-snapshot', 'only a snapshot', (ctx, id) =>
      ctx.store.saveSnapshot(id, snapshot('sfp-1', '2026-11-22T15:32:16.863Z')),
    ),
    existsAfter('after-todos', 'only todos', (ctx, id) => ctx.store.saveTodos(id, todoSnapshot(1))),
    existsAfter('after-history', 'only a history window', (ctx, id) =>
      ctx.store.saveHistoryWindow(id, historyWindow('window-1')),
    ),
  ]),
  ...defineCases('delete', [
    {
      id: 'removes-everything',
      title:
        'delete removes every trace of the agent (info, messages, tool calls, todos, events, history, media, snapshots)',
      run: async (ctx) => {
        const id = ctx.agentId('doomed');
        await saveEverything(ctx, id);
        await ctx.store.delete(id);
        await checkNothingLeft(ctx, id);
      },
    },
    {
      id: 'isolation',
      title: 'delete leaves every other agent untouched, including ids that extend or prefix it',
      run: async (ctx) => {
        const id = ctx.agentId('doomed');
        const others = [ctx.agentId('other'), `${id}/fork-1`, `${id}x`, id.slice(0, -1)];
        for (const other of [id, ...others]) await saveEverything(ctx, other);
        await ctx.store.delete(id);
        await checkNothingLeft(ctx, id);
        for (const other of others) await checkEverything(ctx, other);
      },
    },
    {
      id: 'waits-for-appends-in-flight',
      title:
        'delete after un-awaited appends removes them too: the agent does not come back (exists false, not listed, no events)',
      run: async (ctx) => {
        const id = ctx.agentId('inflight');
        const appends = Array.from({ length: 25 }, (_, i) =>
          ctx.store.appendEvent(id, timeline(i + 1, 'progress')),
        );
        await ctx.store.delete(id);
        await Promise.allSettled(appends);
        check(!(await ctx.store.exists(id)), 'exists after delete');
        checkEqual(await ctx.store.list(id), [], 'listed after delete');
        checkEqual(await collect(ctx.store.readEvents(id)), [], 'events after delete');
      },
    },
    {
      id: 'unknown-agent',
      title: 'deleting an unknown agent resolves and changes nothing',
      run: async (ctx) => {
        const keep = ctx.agentId('keep');
        await saveEverything(ctx, keep);
        await ctx.store.delete(ctx.agentId('nobody'));
        await checkEverything(ctx, keep);
      },
    },
    {
      id: 'twice',
      title: 'deleting the same agent twice resolves',
      run: async (ctx) => {
        const id = ctx.agentId('twice');
        await saveEverything(ctx, id);
        await ctx.store.delete(id);
        await ctx.store.delete(id);
        await checkNothingLeft(ctx, id);
      },
    },
    {
      id: 'id-reusable',
      title: 'an agent id can be used again after delete and starts empty',
      run: async (ctx) => {
        const id = ctx.agentId('reuse');
        await saveEverything(ctx, id);
        await ctx.store.delete(id);
        // A new agent's first write is not an event (events alone never revive a
        // deleted id: see delete.stays-deleted), then its events are kept as usual.
        await ctx.store.saveMessages(id, conversation(1, 5));
        await ctx.store.appendEvent(id, timeline(9));
        checkEqual(await collect(ctx.store.readEvents(id)), [timeline(9)], 'events of the new agent');
        checkEqual(await ctx.store.loadMessages(id), conversation(1, 5), 'messages of the new agent');
        checkEqual(await ctx.store.loadInfo(id), undefined, 'info of the new agent');
        checkEqual(await ctx.store.listSnapshots(id), [], 'snapshots of the new agent');
      },
    },
    {
      id: 'after-unawaited-appends',
      title: 'delete right after un-awaited appends leaves no event behind',
      run: async (ctx) => {
        const id = ctx.agentId('race');
        const pending = Array.from({ length: 50 }, (_, i) => ctx.store.appendEvent(id, timeline(i)));
        await ctx.store.delete(id);
        await Promise.allSettled(pending);
        checkEqual(await collect(ctx.store.readEvents(id)), [], 'events after delete');
      },
    },
  ]),
  ...defineCases('list', [
    {
      id: 'prefix',
      title: 'list(prefix) returns exactly the agents whose id starts with the prefix, sorted',
      run: async (ctx) => {
        const base = ctx.agentId('list');
        const ids = [`${base}/b`, `${base}/a`, `${base}/a/fork-2`, `${base}/c`];
        for (const id of ids) await ctx.store.saveMessages(id, conversation(1));
        checkEqual(await ctx.store.list(`${base}/`), [...ids].sort(compareCodePoints), 'list(base/)');
        checkEqual(await ctx.store.list(`${base}/a`), [`${base}/a`, `${base}/a/fork-2`], 'list(base/a)');
      },
    },
    ...(['%', '_', '*', '.', '[', '\\', '^', '?'] as const).map((wild) => ({
      id: `prefix-literal-${encodeURIComponent(wild).replace(/%/g, 'x')}`,
      title: `list(prefix) matches ${JSON.stringify(wild)} literally, not as a wildcard`,
      run: async (ctx: CaseContext) => {
        const base = ctx.agentId('lit');
        const literal = `${base}/a${wild}b`;
        const decoys = [`${base}/aXb`, `${base}/a${wild === '_' ? '%' : '_'}b`, `${base}/ab`, `${base}/a`];
        for (const id of [literal, ...decoys]) await ctx.store.saveInfo(id, agentInfo(id));
        checkEqual(
          await ctx.store.list(`${base}/a${wild}`),
          [literal],
          `list(${JSON.stringify(wild)} prefix)`,
        );
      },
    })),
    {
      id: 'prefix-with-regex-and-sql',
      title: 'list(prefix) treats quotes and regex syntax in the prefix as plain text',
      run: async (ctx) => {
        const base = ctx.agentId('meta');
        const id = `${base}/it's (a) [test]+`;
        await ctx.store.saveMessages(id, conversation(1));
        await ctx.store.saveMessages(`${base}/its a test`, conversation(1));
        checkEqual(await ctx.store.list(`${base}/it's (a) [`), [id], 'list');
      },
    },
    {
      id: 'sorted-by-code-point',
      title: 'list sorts ids by code point (upper before lower case, astral characters last)',
      run: async (ctx) => {
        const base = ctx.agentId('sort');
        const suffixes = ['b', 'B', 'a', 'A', '10', '9', 'é', 'z', '\uFF5E', '😀', ' ', '-'];
        const ids = suffixes.map((s) => `${base}/${s}`);
        for (const id of ids) await ctx.store.saveMessages(id, conversation(1));
        checkEqual(await ctx.store.list(`${base}/`), [...ids].sort(compareCodePoints), 'sorted ids');
      },
    },
    {
      id: 'no-prefix',
      title: 'list() without a prefix includes every agent, sorted',
      run: async (ctx) => {
        const ids = [ctx.agentId('z'), ctx.agentId('a')];
        for (const id of ids) await ctx.store.appendEvent(id, timeline(1));
        const all = await ctx.store.list();
        for (const id of ids) check(all.includes(id), `list() misses ${id}`);
        checkEqual(all, [...all].sort(compareCodePoints), 'list() order');
        checkEqual(all.length, new Set(all).size, 'list() has no duplicates');
      },
    },
    {
      id: 'agent-listed-once',
      title: 'an agent with every kind of record is listed exactly once',
      run: async (ctx) => {
        const id = ctx.agentId('once');
        await saveEverything(ctx, id);
        checkEqual(await ctx.store.list(id), [id], 'list(id)');
      },
    },
    {
      id: 'no-match',
      title: 'list(prefix) with no matching agent is []',
      run: async (ctx) => checkEqual(await ctx.store.list(`${ctx.agentId('none')}/`), [], 'list'),
    },
  ]),
];
