import type { Message } from '../../../src/types.js';
import { checkEqual } from '../../runner/assertions.js';
import { conversation, mediaRecord, textMessage, todoSnapshot, toolCall } from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

/** Saves each list in turn (as the SDK does after every step) and checks the store holds exactly the last. */
async function saveSequence(ctx: CaseContext, lists: Message[][], what: string): Promise<void> {
  const id = ctx.agentId('seq');
  for (const [i, list] of lists.entries()) {
    await ctx.store.saveMessages(id, list);
    checkEqual(await ctx.store.loadMessages(id), list, `${what}, after save ${i + 1}`);
  }
}

export const replaceListCases: StoreCase[] = [
  ...defineCases('messages.replace', [
    {
      id: 'grows-step-by-step',
      title: 'saving the whole growing conversation after every step keeps exactly the latest list',
      run: (ctx) =>
        saveSequence(
          ctx,
          [1, 2, 4, 7, 8, 12].map((n) => conversation(n)),
          'growing conversation',
        ),
    },
    {
      id: 'shrinks',
      title: 'a shorter list replaces a longer one (the tail is removed)',
      run: (ctx) =>
        saveSequence(ctx, [conversation(6), conversation(2), conversation(0), conversation(1)], 'shrink'),
    },
    {
      id: 'changes-in-the-middle',
      title: 'a list that differs in the middle replaces the stored one exactly',
      run: (ctx) => {
        const base = conversation(6);
        const changed = [...base.slice(0, 2), textMessage('user', 'rewritten'), ...base.slice(3)];
        const dropped = [...base.slice(0, 2), ...base.slice(3)];
        return saveSequence(ctx, [base, changed, dropped, base], 'middle changes');
      },
    },
    {
      id: 'changes-first',
      title: 'a list whose first message changed replaces the stored one exactly',
      run: (ctx) => {
        const base = conversation(4);
        return saveSequence(
          ctx,
          [base, [textMessage('system', 'summary'), ...base.slice(1)]],
          'first changed',
        );
      },
    },
    {
      id: 'completely-different',
      title: 'a completely different list of the same length replaces the stored one',
      run: (ctx) => saveSequence(ctx, [conversation(5, 0, 'x'), conversation(5, 0, 'y')], 'different list'),
    },
    {
      id: 'same-list-again',
      title: 'saving the same list twice changes nothing',
      run: (ctx) => saveSequence(ctx, [conversation(4), conversation(4)], 'same list'),
    },
    {
      id: 'compression-rewrite',
      title: 'after a compression rewrite (summary + tail) the conversation grows again correctly',
      run: (ctx) => {
        const long = conversation(10);
        const compressed = [textMessage('system', '<context-summary/>'), ...long.slice(8)];
        return saveSequence(ctx, [long, compressed, [...compressed, ...conversation(3, 10)]], 'compression');
      },
    },
    {
      id: 'long-incremental',
      title: 'a 300-message conversation saved after every step loads back exactly',
      run: async (ctx) => {
        const id = ctx.agentId('long');
        const all = conversation(300);
        for (let n = 10; n <= 300; n += 10) await ctx.store.saveMessages(id, all.slice(0, n));
        checkEqual(await ctx.store.loadMessages(id), all, '300 messages');
      },
    },
    {
      id: 'unknown-agent',
      title: 'loadMessages of an unknown agent is []',
      run: async (ctx) => checkEqual(await ctx.store.loadMessages(ctx.agentId('nobody')), [], 'messages'),
    },
  ]),
  ...defineCases('toolcalls.replace', [
    {
      id: 'saved-order',
      title: 'tool-call records load in saved order, not sorted by id or time',
      run: async (ctx) => {
        const id = ctx.agentId('order');
        const records = [
          toolCall('toolu_c', { createdAt: 3 }),
          toolCall('toolu_a', { createdAt: 1 }),
          toolCall('toolu_b', { createdAt: 2 }),
        ];
        await ctx.store.saveToolCallRecords(id, records);
        checkEqual(await ctx.store.loadToolCallRecords(id), records, 'records');
      },
    },
    {
      id: 'state-update',
      title: 'saving the list with one record changed (state, result) replaces it',
      run: async (ctx) => {
        const id = ctx.agentId('update');
        const first = [
          toolCall('toolu_1', { state: 'EXECUTING' }),
          toolCall('toolu_2', { state: 'PENDING' }),
        ];
        await ctx.store.saveToolCallRecords(id, first);
        const second = [toolCall('toolu_1', { state: 'COMPLETED', result: { ok: true } }), first[1]!];
        await ctx.store.saveToolCallRecords(id, second);
        checkEqual(await ctx.store.loadToolCallRecords(id), second, 'records after update');
      },
    },
    {
      id: 'shrinks',
      title: 'a shorter list of records replaces a longer one',
      run: async (ctx) => {
        const id = ctx.agentId('shrink');
        await ctx.store.saveToolCallRecords(id, [toolCall('a'), toolCall('b'), toolCall('c')]);
        await ctx.store.saveToolCallRecords(id, [toolCall('b')]);
        checkEqual(await ctx.store.loadToolCallRecords(id), [toolCall('b')], 'records');
        await ctx.store.saveToolCallRecords(id, []);
        checkEqual(await ctx.store.loadToolCallRecords(id), [], 'records after saving []');
      },
    },
    {
      id: 'unknown-agent',
      title: 'loadToolCallRecords of an unknown agent is []',
      run: async (ctx) =>
        checkEqual(await ctx.store.loadToolCallRecords(ctx.agentId('nobody')), [], 'records'),
    },
  ]),
  ...defineCases('media.replace', [
    {
      id: 'replaces-list',
      title: 'saveMediaCache replaces the list; loads keep saved order',
      run: async (ctx) => {
        const id = ctx.agentId('media');
        await ctx.store.saveMediaCache(id, [mediaRecord('k1'), mediaRecord('k2')]);
        const next = [mediaRecord('k3'), mediaRecord('k1', { sizeBytes: 0 })];
        await ctx.store.saveMediaCache(id, next);
        checkEqual(await ctx.store.loadMediaCache(id), next, 'media cache');
      },
    },
    {
      id: 'unknown-agent',
      title: 'loadMediaCache of an unknown agent is []',
      run: async (ctx) => checkEqual(await ctx.store.loadMediaCache(ctx.agentId('nobody')), [], 'media'),
    },
  ]),
  ...defineCases('todos', [
    {
      id: 'upsert',
      title: 'saveTodos replaces the previous snapshot',
      run: async (ctx) => {
        const id = ctx.agentId('todos');
        await ctx.store.saveTodos(id, todoSnapshot(1));
        await ctx.store.saveTodos(id, todoSnapshot(2));
        checkEqual(await ctx.store.loadTodos(id), todoSnapshot(2), 'todos');
      },
    },
    {
      id: 'empty-list',
      title: 'a todo snapshot with no todos loads back with an empty list',
      run: async (ctx) => {
        const id = ctx.agentId('todos');
        const empty = { todos: [], version: 0, updatedAt: 0 };
        await ctx.store.saveTodos(id, empty);
        checkEqual(await ctx.store.loadTodos(id), empty, 'todos');
      },
    },
    {
      id: 'unknown-agent',
      title: 'loadTodos of an unknown agent is undefined',
      run: async (ctx) => checkEqual(await ctx.store.loadTodos(ctx.agentId('nobody')), undefined, 'todos'),
    },
  ]),
  ...defineCases('info', [
    {
      id: 'unknown-agent',
      title: 'loadInfo of an unknown agent is undefined',
      run: async (ctx) => checkEqual(await ctx.store.loadInfo(ctx.agentId('nobody')), undefined, 'info'),
    },
  ]),
];
