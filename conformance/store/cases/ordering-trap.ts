import type { AgentInfo } from '../../../src/types.js';
import { check, checkEqual, collect } from '../../runner/assertions.js';
import {
  agentInfo,
  compressionRecord,
  conversation,
  fixture,
  historyWindow,
  mediaRecord,
  recoveredFile,
  snapshot,
  timeline,
  todoSnapshot,
  toolCall,
} from '../sample-data.js';
import { defineCases, type StoreCase } from '../store-case.js';

/** The SDK saves messages before it saves info; nothing may depend on info existing first. */
export const orderingTrapCases: StoreCase[] = defineCases('no-ordering-trap', [
  {
    id: 'messages-before-info',
    title: 'messages saved before any AgentInfo load back, and a later saveInfo keeps them',
    run: async (ctx) => {
      const id = ctx.agentId('msg-first');
      const messages = conversation(3);
      await ctx.store.saveMessages(id, messages);
      checkEqual(await ctx.store.loadMessages(id), messages, 'messages before info');
      await ctx.store.saveInfo(id, agentInfo(id, { messageCount: 3 }));
      checkEqual(await ctx.store.loadMessages(id), messages, 'messages after info');
    },
  },
  {
    id: 'every-save-before-info',
    title: 'every kind of record can be saved and loaded for an agent that has no AgentInfo',
    run: async (ctx) => {
      const id = ctx.agentId('no-info');
      const s = ctx.store;
      await s.saveToolCallRecords(id, [toolCall('toolu_1')]);
      await s.saveTodos(id, todoSnapshot(1));
      await s.appendEvent(id, timeline(1));
      await s.saveHistoryWindow(id, historyWindow('window-1'));
      await s.saveCompressionRecord(id, compressionRecord('comp-1'));
      await s.saveRecoveredFile(id, recoveredFile('/workspace/a.ts'));
      await s.saveMediaCache(id, [mediaRecord('k1')]);
      await s.saveSnapshot(id, snapshot('sfp-1', '2026-11-22T15:32:16.863Z'));
      checkEqual(await s.loadToolCallRecords(id), [toolCall('toolu_1')], 'tool calls');
      checkEqual(await s.loadTodos(id), todoSnapshot(1), 'todos');
      checkEqual(await collect(s.readEvents(id)), [timeline(1)], 'events');
      checkEqual((await s.loadHistoryWindows(id)).length, 1, 'history windows');
      checkEqual((await s.loadCompressionRecords(id)).length, 1, 'compression records');
      checkEqual((await s.loadRecoveredFiles(id)).length, 1, 'recovered files');
      checkEqual(await s.loadMediaCache(id), [mediaRecord('k1')], 'media cache');
      checkEqual((await s.listSnapshots(id)).length, 1, 'snapshots');
      checkEqual(await s.loadInfo(id), undefined, 'info');
      check(await s.exists(id), 'exists is false for an agent with data but no info');
    },
  },
  {
    id: 'stats-and-consistency-without-info',
    title: 'aggregateStats works for an agent with messages but no AgentInfo',
    run: async (ctx) => {
      const id = ctx.agentId('stats');
      await ctx.store.saveMessages(id, conversation(2));
      const stats = await ctx.store.aggregateStats(id);
      checkEqual(stats.totalMessages, 2, 'totalMessages');
      await ctx.store.checkConsistency(id);
    },
  },
  {
    id: 'partial-info',
    title: 'a partial AgentInfo (optional fields missing) is accepted and returned exactly as saved',
    run: async (ctx) => {
      const id = ctx.agentId('partial');
      const info = { agentId: id, templateId: 'fx-helper', createdAt: '2026-11-22T15:32:16.863Z' };
      await ctx.store.saveInfo(id, info as AgentInfo);
      checkEqual(await ctx.store.loadInfo(id), info, 'partial info');
    },
  },
  {
    id: 'extended-info',
    title: "an extended AgentInfo (the pool's bookkeeping record) is returned exactly as saved",
    run: async (ctx) => {
      const id = ctx.agentId('pool');
      const { poolMetaInfo } = fixture();
      await ctx.store.saveInfo(id, poolMetaInfo as unknown as AgentInfo);
      checkEqual(await ctx.store.loadInfo(id), poolMetaInfo, 'pool meta record');
    },
  },
  {
    id: 'extra-fields-kept',
    title: 'extra fields on a full AgentInfo are kept, in their place',
    run: async (ctx) => {
      const id = ctx.agentId('extra');
      const info = { ...agentInfo(id), poolSlot: 3, tags: ['a', 'b'], nested: { deep: { x: null } } };
      await ctx.store.saveInfo(id, info);
      checkEqual(await ctx.store.loadInfo(id), info, 'extended info');
    },
  },
  {
    id: 'info-upsert-replaces',
    title: 'a second saveInfo replaces the first wholesale (no merge of old fields)',
    run: async (ctx) => {
      const id = ctx.agentId('upsert');
      await ctx.store.saveInfo(id, { ...agentInfo(id), breakpoint: 'PRE_MODEL', extra: 1 } as AgentInfo);
      const second = agentInfo(id, { messageCount: 9, metadata: { v: 2 } });
      await ctx.store.saveInfo(id, second);
      checkEqual(await ctx.store.loadInfo(id), second, 'info after the second save');
    },
  },
  {
    id: 'partial-info-queryable',
    title: 'querySessions finds an agent whose AgentInfo is partial',
    run: async (ctx) => {
      const id = ctx.agentId('partial-q');
      await ctx.store.saveInfo(id, { agentId: id, templateId: 't' } as AgentInfo);
      const sessions = await ctx.store.querySessions({ agentId: id });
      checkEqual(sessions.length, 1, 'sessions found');
      checkEqual(sessions[0]?.agentId, id, 'agentId');
    },
  },
  {
    id: 'events-before-info',
    title: 'events appended before any AgentInfo read back',
    run: async (ctx) => {
      const id = ctx.agentId('ev-first');
      await ctx.store.appendEvent(id, timeline(0, 'monitor'));
      checkEqual(await collect(ctx.store.readEvents(id)), [timeline(0, 'monitor')], 'events');
    },
  },
]);
