import type { AgentInfo } from '../../../src/types.js';
import { check, checkEqual, checkRejects } from '../../runner/assertions.js';
import {
  agentInfo,
  fixture,
  snapshot,
  todoSnapshot,
  toolCall,
  toolResultMessage,
  toolUseMessage,
} from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

async function seedSource(ctx: CaseContext) {
  const source = ctx.agentId('src');
  const messages = [
    toolUseMessage('toolu_fx_1', 'fs_read', { path: 'a.ts' }),
    toolResultMessage('toolu_fx_1', { ok: true, data: [0, false, ''] }),
  ];
  const records = [toolCall('toolu_fx_1'), toolCall('toolcall-0', { state: 'FAILED', isError: true })];
  const info = agentInfo(source, { messageCount: 2, lineage: ['root-agent'], metadata: { userId: 'u1' } });
  await ctx.store.saveInfo(source, info);
  await ctx.store.saveMessages(source, messages);
  await ctx.store.saveToolCallRecords(source, records);
  await ctx.store.saveTodos(source, todoSnapshot(3));
  await ctx.store.saveSnapshot(source, snapshot('sfp-1', '2026-11-22T15:32:16.863Z', messages));
  return { source, messages, records, info };
}

export const forkCases: StoreCase[] = defineCases('fork', [
  {
    id: 'full-copies',
    title: 'batchFork makes count agents, each a full copy (messages, tool calls, todos, snapshots)',
    run: async (ctx) => {
      const { source, messages, records } = await seedSource(ctx);
      const forks = await ctx.store.batchFork(source, 3);
      checkEqual(forks.length, 3, 'number of forks');
      checkEqual(new Set(forks).size, 3, 'distinct fork ids');
      for (const fork of forks) {
        check(fork !== source, 'a fork reuses the source id');
        check(await ctx.store.exists(fork), `fork ${fork} exists`);
        checkEqual(await ctx.store.loadMessages(fork), messages, 'fork messages');
        checkEqual(await ctx.store.loadToolCallRecords(fork), records, 'fork tool calls');
        checkEqual(await ctx.store.loadTodos(fork), todoSnapshot(3), 'fork todos');
        checkEqual(
          await ctx.store.listSnapshots(fork),
          [snapshot('sfp-1', '2026-11-22T15:32:16.863Z', messages)],
          'fork snapshots',
        );
      }
    },
  },
  {
    id: 'lineage-extended',
    title: "each fork's info has its own agentId and the source appended to the lineage; the rest is copied",
    run: async (ctx) => {
      const { source, info } = await seedSource(ctx);
      const [fork] = await ctx.store.batchFork(source, 1);
      const forkInfo = await ctx.store.loadInfo(fork as string);
      check(forkInfo, 'fork has no info');
      checkEqual(forkInfo.agentId, fork, 'agentId');
      checkEqual(forkInfo.lineage, ['root-agent', source], 'lineage');
      checkEqual(
        [forkInfo.templateId, forkInfo.messageCount, forkInfo.metadata],
        [info.templateId, info.messageCount, info.metadata],
        'copied fields',
      );
    },
  },
  {
    id: 'tool-call-ids-unchanged',
    title: "fork tool-call ids are the source's, so tool_use blocks still match their records",
    run: async (ctx) => {
      const { source } = await seedSource(ctx);
      const [fork] = await ctx.store.batchFork(source, 2);
      const ids = (await ctx.store.loadToolCallRecords(fork as string)).map((r) => r.id);
      checkEqual(ids, ['toolu_fx_1', 'toolcall-0'], 'tool-call ids');
      checkEqual(
        (await ctx.store.queryToolCalls({ agentId: fork as string, sortOrder: 'asc' })).length,
        2,
        'queryable',
      );
    },
  },
  {
    id: 'source-unchanged',
    title: 'batchFork leaves the source agent exactly as it was',
    run: async (ctx) => {
      const { source, messages, records, info } = await seedSource(ctx);
      await ctx.store.batchFork(source, 2);
      checkEqual(await ctx.store.loadInfo(source), info, 'source info');
      checkEqual(await ctx.store.loadMessages(source), messages, 'source messages');
      checkEqual(await ctx.store.loadToolCallRecords(source), records, 'source tool calls');
    },
  },
  {
    id: 'forks-independent',
    title: 'changing a fork changes neither the source nor the other forks',
    run: async (ctx) => {
      const { source, messages } = await seedSource(ctx);
      const [a, b] = (await ctx.store.batchFork(source, 2)) as [string, string];
      await ctx.store.saveMessages(a, []);
      await ctx.store.saveToolCallRecords(a, []);
      await ctx.store.delete(b);
      checkEqual(await ctx.store.loadMessages(source), messages, 'source messages');
      checkEqual((await ctx.store.loadToolCallRecords(source)).length, 2, 'source tool calls');
      check(await ctx.store.exists(source), 'source exists');
    },
  },
  {
    id: 'fork-of-fork',
    title: 'forking a fork extends the lineage again',
    run: async (ctx) => {
      const { source } = await seedSource(ctx);
      const [child] = (await ctx.store.batchFork(source, 1)) as [string];
      const [grandchild] = (await ctx.store.batchFork(child, 1)) as [string];
      checkEqual((await ctx.store.loadInfo(grandchild))?.lineage, ['root-agent', source, child], 'lineage');
    },
  },
  {
    id: 'fixture-agent',
    title: 'forking a real SDK agent copies its conversation and records exactly',
    run: async (ctx) => {
      const agent = fixture().agents[0];
      check(agent, 'fixture agent');
      const id = ctx.agentId('fx');
      await ctx.store.saveInfo(id, { ...agent.info, agentId: id } as AgentInfo);
      await ctx.store.saveMessages(id, agent.messages);
      await ctx.store.saveToolCallRecords(id, agent.toolCalls);
      const [fork] = (await ctx.store.batchFork(id, 1)) as [string];
      checkEqual(await ctx.store.loadMessages(fork), agent.messages, 'messages');
      checkEqual(await ctx.store.loadToolCallRecords(fork), agent.toolCalls, 'tool calls');
    },
  },
  {
    id: 'unknown-source',
    title: 'forking an unknown agent rejects with NotFoundError (code KODE_NOT_FOUND) and creates nothing',
    run: async (ctx) => {
      const source = ctx.agentId('ghost');
      await checkRejects(() => ctx.store.batchFork(source, 2), 'KODE_NOT_FOUND', 'batchFork');
      checkEqual(await ctx.store.list(source), [], 'agents under the unknown id');
    },
  },
  {
    id: 'zero',
    title: 'batchFork with count 0 returns [] and creates nothing',
    run: async (ctx) => {
      const { source } = await seedSource(ctx);
      checkEqual(await ctx.store.batchFork(source, 0), [], 'forks');
      checkEqual(await ctx.store.list(source), [source], 'agents under the source id');
    },
  },
]);
