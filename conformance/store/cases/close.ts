import type { ExtendedStore } from '../../../src/types.js';
import { checkRejects, collect } from '../../runner/assertions.js';
import { agentInfo, conversation, snapshot, timeline, todoSnapshot, toolCall } from '../sample-data.js';
import { defineCases, type StoreCase } from '../store-case.js';

/** Every public method, called on `store` for `id`. */
function everyCall(store: ExtendedStore, id: string): Array<[string, () => Promise<unknown>]> {
  return [
    ['saveMessages', () => store.saveMessages(id, conversation(1))],
    ['loadMessages', () => store.loadMessages(id)],
    ['saveToolCallRecords', () => store.saveToolCallRecords(id, [toolCall('t')])],
    ['loadToolCallRecords', () => store.loadToolCallRecords(id)],
    ['saveTodos', () => store.saveTodos(id, todoSnapshot(1))],
    ['loadTodos', () => store.loadTodos(id)],
    ['appendEvent', () => store.appendEvent(id, timeline(1))],
    ['readEvents', () => collect(store.readEvents(id))],
    ['loadHistoryWindows', () => store.loadHistoryWindows(id)],
    ['loadCompressionRecords', () => store.loadCompressionRecords(id)],
    ['loadRecoveredFiles', () => store.loadRecoveredFiles(id)],
    ['loadMediaCache', () => store.loadMediaCache(id)],
    ['saveSnapshot', () => store.saveSnapshot(id, snapshot('s', '2026-11-22T15:32:16.863Z'))],
    ['loadSnapshot', () => store.loadSnapshot(id, 's')],
    ['listSnapshots', () => store.listSnapshots(id)],
    ['saveInfo', () => store.saveInfo(id, agentInfo(id))],
    ['loadInfo', () => store.loadInfo(id)],
    ['exists', () => store.exists(id)],
    ['delete', () => store.delete(id)],
    ['list', () => store.list()],
    ['querySessions', () => store.querySessions({})],
    ['queryMessages', () => store.queryMessages({})],
    ['queryToolCalls', () => store.queryToolCalls({})],
    ['aggregateStats', () => store.aggregateStats(id)],
    ['healthCheck', () => store.healthCheck()],
    ['checkConsistency', () => store.checkConsistency(id)],
    ['getMetrics', () => store.getMetrics()],
    ['acquireAgentLock', () => store.acquireAgentLock(id, 100)],
    ['batchFork', () => store.batchFork(id, 1)],
  ];
}

export const closeCases: StoreCase[] = defineCases('close', [
  {
    id: 'idempotent',
    title: 'close can be called twice (and concurrently) and resolves each time',
    run: async (ctx) => {
      await Promise.all([ctx.store.close(), ctx.store.close()]);
      await ctx.store.close();
    },
  },
  {
    id: 'later-calls-reject',
    title: 'every call after close rejects with StoreClosedError (code KODE_STORE_CLOSED)',
    run: async (ctx) => {
      const id = ctx.agentId('closed');
      await ctx.store.saveMessages(id, conversation(1));
      await ctx.store.close();
      for (const [name, call] of everyCall(ctx.store, id)) {
        await checkRejects(call, 'KODE_STORE_CLOSED', `${name} after close`);
      }
    },
  },
  {
    id: 'pending-appends-settle',
    title: 'appends in flight when close is called all settle (none hangs)',
    run: async (ctx) => {
      const id = ctx.agentId('inflight');
      const appends = Array.from({ length: 50 }, (_, i) => ctx.store.appendEvent(id, timeline(i)));
      await ctx.store.close();
      await Promise.allSettled(appends);
    },
  },
  {
    id: 'peer-unaffected',
    title: 'closing one store object leaves another object on the same data working',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('peer');
      await ctx.store.saveMessages(id, conversation(2));
      await peer.close();
      await ctx.store.saveMessages(id, conversation(3));
      await checkRejects(() => peer.loadMessages(id), 'KODE_STORE_CLOSED', 'closed peer');
    },
  },
]);
