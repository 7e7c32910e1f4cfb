import type { ExtendedStore } from '../../../src/types.js';
import { check, checkEqual, collect } from '../../runner/assertions.js';
import { agentInfo, conversation, timeline } from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';
import { saveEverything } from './lifecycle.js';

/**
 * The SDK keeps appending monitor events (`step_complete`, `state_changed`,
 * `breakpoint_changed`) for a moment after a step resolves, also while
 * `AgentPool.delete()` runs. Such late events must not bring the agent back:
 * events alone never make a deleted id exist again; only a write of anything
 * else (as a new agent's `saveInfo`) starts a new agent under that id.
 */

/** The monitor events the SDK emits after a step's promise resolved. */
function lateEvents(from: number): ReturnType<typeof timeline>[] {
  return [
    timeline(from, 'monitor', { type: 'step_complete' }),
    timeline(from + 1, 'monitor', { type: 'state_changed', state: 'READY' }),
    timeline(from + 2, 'monitor', { type: 'breakpoint_changed', previous: 'POST_TOOL', current: 'READY' }),
  ];
}

async function checkGone(ctx: CaseContext, id: string, store: ExtendedStore = ctx.store): Promise<void> {
  check(!(await store.exists(id)), `exists(${id}) is true again after late events`);
  check(!(await store.list(id)).includes(id), `list() names ${id} again after late events`);
  checkEqual(await collect(store.readEvents(id)), [], 'events of the deleted agent');
  checkEqual(await store.loadInfo(id), undefined, 'info of the deleted agent');
}

export const deletedStaysDeletedCases: StoreCase[] = defineCases('delete.stays-deleted', [
  {
    id: 'awaited-late-events',
    title: 'events appended (and awaited) after delete resolved do not make the agent exist or listed again',
    run: async (ctx) => {
      const id = ctx.agentId('ghost');
      await saveEverything(ctx, id);
      await ctx.store.delete(id);
      for (const entry of lateEvents(10)) await ctx.store.appendEvent(id, entry);
      await checkGone(ctx, id);
    },
  },
  {
    id: 'unawaited-late-events',
    title: 'un-awaited events fired after delete resolved are acknowledged and leave no trace',
    run: async (ctx) => {
      const id = ctx.agentId('ghost');
      await saveEverything(ctx, id);
      await ctx.store.delete(id);
      const late = lateEvents(10).map((entry) => ctx.store.appendEvent(id, entry));
      const outcomes = await Promise.allSettled(late);
      checkEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'fulfilled', 'fulfilled'],
        'late appends resolve (the SDK caches and retries rejected ones)',
      );
      await checkGone(ctx, id);
    },
  },
  {
    id: 'events-concurrent-with-delete',
    title: 'events fired while delete runs (before and after the call) leave no agent behind',
    run: async (ctx) => {
      const id = ctx.agentId('ghost');
      await ctx.store.saveInfo(id, agentInfo(id));
      await ctx.store.saveMessages(id, conversation(2));
      const before = Array.from({ length: 20 }, (_, i) => ctx.store.appendEvent(id, timeline(i, 'progress')));
      const deleting = ctx.store.delete(id);
      const during = lateEvents(30).map((entry) => ctx.store.appendEvent(id, entry));
      await deleting;
      const after = lateEvents(40).map((entry) => ctx.store.appendEvent(id, entry));
      await Promise.allSettled([...before, ...during, ...after]);
      await checkGone(ctx, id);
    },
  },
  {
    id: 'only-events-agent',
    title: 'an agent that only ever had events stays deleted when more events arrive',
    run: async (ctx) => {
      const id = ctx.agentId('ghost');
      await ctx.store.appendEvent(id, timeline(1));
      await ctx.store.delete(id);
      await ctx.store.appendEvent(id, timeline(2));
      await checkGone(ctx, id);
    },
  },
  {
    id: 'new-agent-under-same-id',
    title:
      'after late events, a new agent saved under the same id works normally and holds none of the late events',
    run: async (ctx) => {
      const id = ctx.agentId('reborn');
      await saveEverything(ctx, id);
      await ctx.store.delete(id);
      for (const entry of lateEvents(10)) await ctx.store.appendEvent(id, entry);
      // A new agent starts as the SDK starts one: its info first.
      await ctx.store.saveInfo(id, agentInfo(id, { messageCount: 1 }));
      await ctx.store.saveMessages(id, conversation(1, 7));
      await ctx.store.appendEvent(id, timeline(100));
      check(await ctx.store.exists(id), 'the new agent exists');
      checkEqual(await ctx.store.list(id), [id], 'the new agent is listed once');
      checkEqual(await ctx.store.loadMessages(id), conversation(1, 7), 'messages of the new agent');
      checkEqual(await collect(ctx.store.readEvents(id)), [timeline(100)], 'events of the new agent');
      await ctx.store.delete(id);
      await checkGone(ctx, id);
    },
  },
  {
    id: 'peer-late-events',
    title:
      'late events arriving through another store object on the same database do not bring the agent back',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('ghost');
      await saveEverything(ctx, id);
      await peer.appendEvent(id, timeline(5));
      await ctx.store.delete(id);
      for (const entry of lateEvents(10)) await peer.appendEvent(id, entry);
      await checkGone(ctx, id);
      await checkGone(ctx, id, peer);
    },
  },
  {
    id: 'peer-appends-racing-delete',
    title:
      'a peer streaming events while this object deletes the agent: once both settle, nothing of the agent is left',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('ghost');
      await saveEverything(ctx, id);
      const streaming = Array.from({ length: 200 }, (_, i) => peer.appendEvent(id, timeline(i, 'progress')));
      await ctx.store.delete(id);
      await Promise.allSettled(streaming);
      // Whatever the peer wrote before the delete took effect was deleted with it;
      // whatever came after was discarded: either way the id is gone everywhere.
      await checkGone(ctx, id);
      await checkGone(ctx, id, peer);
    },
  },
]);
