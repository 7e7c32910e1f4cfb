import { check, checkEqual, checkRejects, collect } from '../../runner/assertions.js';
import { agentInfo, conversation, historyWindow, snapshot, timeline, toolCall } from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

/** Saves every kind of record for `id` and checks it all comes back, is listed, and goes away on delete. */
async function fullLifecycle(ctx: CaseContext, id: string): Promise<void> {
  const s = ctx.store;
  await s.saveInfo(id, agentInfo(id, { messageCount: 2 }));
  await s.saveMessages(id, conversation(2));
  await s.saveToolCallRecords(id, [toolCall('toolu_1')]);
  await s.appendEvent(id, timeline(1));
  await s.saveSnapshot(id, snapshot('sfp-1', '2026-11-22T15:32:16.863Z'));
  checkEqual(await s.loadInfo(id), agentInfo(id, { messageCount: 2 }), 'info');
  checkEqual(await s.loadMessages(id), conversation(2), 'messages');
  checkEqual(await s.loadToolCallRecords(id), [toolCall('toolu_1')], 'tool calls');
  checkEqual(await collect(s.readEvents(id)), [timeline(1)], 'events');
  checkEqual((await s.listSnapshots(id)).length, 1, 'snapshots');
  check(await s.exists(id), 'exists');
  check((await s.list(id)).includes(id), 'list(prefix) includes the id');
  // The query part where the store has queries; the rest holds for every level.
  if (ctx.implements('queryable')) {
    checkEqual(
      (await s.querySessions({ agentId: id })).map((x) => x.agentId),
      [id],
      'querySessions by agentId',
    );
    checkEqual((await s.queryMessages({ agentId: id })).length, 2, 'queryMessages by agentId');
  }
  await s.delete(id);
  check(!(await s.exists(id)), 'exists after delete');
  checkEqual(await s.loadMessages(id), [], 'messages after delete');
}

function hostile(id: string, title: string, suffix: string): Omit<StoreCase, 'id'> & { id: string } {
  return { id, title, run: (ctx) => fullLifecycle(ctx, ctx.agentId('h', suffix)) };
}

export const agentIdCases: StoreCase[] = [
  ...defineCases('ids.per-agent', [
    {
      id: 'tool-calls',
      title: 'two agents hold tool calls with the same ids independently',
      run: async (ctx) => {
        const [a, b] = [ctx.agentId('a'), ctx.agentId('b')];
        await ctx.store.saveToolCallRecords(a, [toolCall('toolcall-0', { name: 'fs_read' })]);
        await ctx.store.saveToolCallRecords(b, [
          toolCall('toolcall-0', { name: 'fs_write', state: 'FAILED' }),
        ]);
        await ctx.store.saveToolCallRecords(a, [
          toolCall('toolcall-0', { name: 'fs_read', state: 'SEALED' }),
        ]);
        checkEqual(
          await ctx.store.loadToolCallRecords(a),
          [toolCall('toolcall-0', { name: 'fs_read', state: 'SEALED' })],
          'agent a',
        );
        checkEqual(
          await ctx.store.loadToolCallRecords(b),
          [toolCall('toolcall-0', { name: 'fs_write', state: 'FAILED' })],
          'agent b',
        );
        if (ctx.implements('queryable')) {
          checkEqual((await ctx.store.queryToolCalls({ agentId: b })).length, 1, 'queryToolCalls for b');
        }
      },
    },
    {
      id: 'snapshots',
      title: 'two agents hold snapshots with the same id independently',
      run: async (ctx) => {
        const [a, b] = [ctx.agentId('a'), ctx.agentId('b')];
        const sa = snapshot('sfp-1', '2026-11-22T15:32:16.863Z', conversation(1, 0, 'a'));
        const sb = snapshot('sfp-1', '2026-11-22T15:32:16.863Z', conversation(1, 0, 'b'));
        await ctx.store.saveSnapshot(a, sa);
        await ctx.store.saveSnapshot(b, sb);
        checkEqual(await ctx.store.loadSnapshot(a, 'sfp-1'), sa, 'snapshot of a');
        checkEqual(await ctx.store.loadSnapshot(b, 'sfp-1'), sb, 'snapshot of b');
        checkEqual(await ctx.store.listSnapshots(a), [sa], 'list of a');
      },
    },
    {
      id: 'messages-and-history',
      title: 'identical messages and history-window ids in two agents stay separate',
      run: async (ctx) => {
        const [a, b] = [ctx.agentId('a'), ctx.agentId('b')];
        await ctx.store.saveMessages(a, conversation(2));
        await ctx.store.saveMessages(b, conversation(3));
        await ctx.store.saveHistoryWindow(a, historyWindow('window-1'));
        await ctx.store.saveHistoryWindow(b, historyWindow('window-1'));
        checkEqual(await ctx.store.loadMessages(a), conversation(2), 'messages of a');
        checkEqual(await ctx.store.loadMessages(b), conversation(3), 'messages of b');
        checkEqual((await ctx.store.loadHistoryWindows(a)).length, 1, 'windows of a');
      },
    },
  ]),
  ...defineCases('ids.hostile', [
    hostile('slash', 'an agent id with slashes works everywhere', '/team/agent/fork-1'),
    hostile('dot-dot', "an agent id with '..' path segments works everywhere", '/../../etc/passwd'),
    hostile('leading-dot-dot', "an agent id that is mostly '..' works everywhere", '/..'),
    hostile('spaces', 'an agent id with spaces (leading, inner, trailing) works everywhere', ' my agent '),
    hostile('unicode', 'an agent id with CJK and emoji works everywhere', '-代理-🤖-é'),
    hostile('sql-quotes', 'an agent id with quotes and SQL works everywhere', `'; DROP TABLE agents; --"`),
    hostile(
      'wildcards',
      'an agent id with %, _, * and regex characters works everywhere',
      '%_*.+?[a]{1}(x)|^$',
    ),
    hostile('backslash', 'an agent id with backslashes and a colon works everywhere', '\\c:\\x'),
    hostile(
      'reserved-names',
      'an agent id containing reserved file names works everywhere',
      '/CON/aux.txt/nul',
    ),
    {
      id: 'length-255',
      title: 'a 255-character agent id works everywhere',
      run: async (ctx) => {
        const base = ctx.agentId('long');
        await fullLifecycle(ctx, base + 'x'.repeat(255 - base.length));
      },
    },
    {
      id: 'prefix-of-another',
      title: "an id that is a prefix of another ('a' and 'a/fork-1') is a different agent",
      run: async (ctx) => {
        const parent = ctx.agentId('p');
        const child = `${parent}/fork-1`;
        await ctx.store.saveMessages(parent, conversation(1));
        await ctx.store.saveMessages(child, conversation(2));
        checkEqual(await ctx.store.loadMessages(parent), conversation(1), 'parent');
        checkEqual(await ctx.store.loadMessages(child), conversation(2), 'child');
        await ctx.store.delete(parent);
        checkEqual(await ctx.store.loadMessages(child), conversation(2), 'child after deleting the parent');
        check(await ctx.store.exists(child), 'child still exists');
      },
    },
    {
      id: 'case-sensitive',
      title: 'agent ids differing only in case are different agents',
      run: async (ctx) => {
        const base = ctx.agentId('case');
        await ctx.store.saveMessages(`${base}-ABC`, conversation(1));
        await ctx.store.saveMessages(`${base}-abc`, conversation(2));
        checkEqual((await ctx.store.loadMessages(`${base}-ABC`)).length, 1, 'upper case');
        checkEqual((await ctx.store.loadMessages(`${base}-abc`)).length, 2, 'lower case');
      },
    },
  ]),
  ...defineCases('ids.invalid', [
    {
      id: 'nul',
      title: 'an agent id containing NUL is refused with a ValidationError',
      run: async (ctx) => {
        const id = ctx.agentId('nul', '\u0000x');
        await checkRejects(
          () => ctx.store.saveMessages(id, conversation(1)),
          'KODE_VALIDATION',
          'saveMessages',
        );
        await checkRejects(() => ctx.store.loadMessages(id), 'KODE_VALIDATION', 'loadMessages');
        await checkRejects(() => ctx.store.appendEvent(id, timeline(1)), 'KODE_VALIDATION', 'appendEvent');
      },
    },
    {
      id: 'empty',
      title: 'an empty agent id is refused with a ValidationError',
      run: async (ctx) => {
        await checkRejects(
          () => ctx.store.saveMessages('', conversation(1)),
          'KODE_VALIDATION',
          'saveMessages',
        );
        await checkRejects(() => ctx.store.saveInfo('', agentInfo('')), 'KODE_VALIDATION', 'saveInfo');
      },
    },
    {
      id: 'not-a-string',
      title: 'a non-string agent id is refused with a ValidationError',
      run: async (ctx) => {
        const bad = 42 as unknown as string;
        await checkRejects(() => ctx.store.loadMessages(bad), 'KODE_VALIDATION', 'loadMessages(42)');
        await checkRejects(
          () => ctx.store.exists(undefined as unknown as string),
          'KODE_VALIDATION',
          'exists()',
        );
      },
    },
    {
      id: 'lone-surrogate',
      title: 'an agent id with a lone surrogate is refused (it would merge with another id as U+FFFD)',
      run: async (ctx) => {
        const id = ctx.agentId('sur', '\uD800');
        await checkRejects(
          () => ctx.store.saveMessages(id, conversation(1)),
          'KODE_VALIDATION',
          'saveMessages',
        );
      },
    },
    {
      id: 'read-events',
      title: 'readEvents with an invalid agent id rejects when iterated, with a ValidationError',
      run: async (ctx) => {
        await checkRejects(collect(ctx.store.readEvents('')), 'KODE_VALIDATION', 'readEvents("")');
      },
    },
  ]),
];
