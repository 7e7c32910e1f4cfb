import { checkEqual, collect, sleep, waitPast } from '../../runner/assertions.js';
import { conversation, timeline } from '../sample-data.js';
import { defineCases, type StoreCase } from '../store-case.js';
import { checkEverything, saveEverything } from './lifecycle.js';

/** Close and open again on the same data: everything is still there. */
export const durabilityCases: StoreCase[] = defineCases('reopen', [
  {
    id: 'everything-survives',
    title: 'every kind of record survives close and reopen',
    needs: ['reopen'],
    run: async (ctx) => {
      const id = ctx.agentId('durable');
      await saveEverything(ctx, id);
      const reopened = await ctx.reopen();
      await checkEverything(ctx, id, reopened);
    },
  },
  {
    id: 'unawaited-appends-survive',
    title: 'appends fired without awaiting just before close are all there after reopen, in order',
    needs: ['reopen'],
    run: async (ctx) => {
      const id = ctx.agentId('appends');
      const entries = Array.from({ length: 200 }, (_, i) => timeline(i));
      const pending = entries.map((e) => ctx.store.appendEvent(id, e));
      const reopened = await ctx.reopen();
      await Promise.allSettled(pending);
      checkEqual(await collect(reopened.readEvents(id)), entries, 'events after reopen');
    },
  },
  {
    id: 'message-times-survive',
    title: 'first-saved message times survive reopen (createdAfter still finds only new messages)',
    needs: ['reopen'],
    run: async (ctx) => {
      const id = ctx.agentId('times');
      await ctx.store.saveMessages(id, conversation(3));
      await sleep(5);
      const boundary = Date.now();
      await waitPast(boundary + 5);
      const reopened = await ctx.reopen();
      await reopened.saveMessages(id, conversation(5));
      checkEqual(
        await reopened.queryMessages({ agentId: id, createdAfter: boundary, sortOrder: 'asc' }),
        conversation(5).slice(3),
        'messages after the boundary',
      );
    },
  },
  {
    id: 'incremental-save-after-reopen',
    title: 'an incremental save right after reopen (no cache yet) stores exactly the new list',
    needs: ['reopen'],
    run: async (ctx) => {
      const id = ctx.agentId('cache');
      await ctx.store.saveMessages(id, conversation(6));
      const reopened = await ctx.reopen();
      await reopened.saveMessages(id, [...conversation(3), ...conversation(2, 0, 'new')]);
      checkEqual(
        await reopened.loadMessages(id),
        [...conversation(3), ...conversation(2, 0, 'new')],
        'messages',
      );
    },
  },
  {
    id: 'locks-free-after-reopen',
    title: 'a lock held when the store closed is free after reopen',
    needs: ['reopen'],
    run: async (ctx) => {
      const id = ctx.agentId('lock');
      await ctx.store.acquireAgentLock(id, 1_000);
      const reopened = await ctx.reopen();
      const release = await reopened.acquireAgentLock(id, 5_000);
      await release();
    },
  },
]);
