import type { Message } from '../../../src/types.js';
import { checkEqual, sleep, waitPast } from '../../runner/assertions.js';
import { conversation, textMessage } from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

/**
 * A message keeps the time it was first saved even when the save rewrites
 * the part of the list it sits in: the SDK inserts messages in the middle
 * (tool results next to their tool use) and context compression replaces the
 * head with a summary, so the rewritten tail of a save is mostly messages the
 * store already holds. Only messages whose text is new may be stamped anew.
 */

/** Returns a time that every earlier save is at or before and every later save is after. */
async function boundary(): Promise<number> {
  await sleep(5);
  const at = Date.now();
  await waitPast(at + 5);
  return at;
}

function after(ctx: CaseContext, agentId: string, time: number): Promise<Message[]> {
  return ctx.store.queryMessages({ agentId, createdAfter: time, sortOrder: 'asc' });
}

function before(ctx: CaseContext, agentId: string, time: number): Promise<Message[]> {
  return ctx.store.queryMessages({ agentId, createdBefore: time, sortOrder: 'asc' });
}

export const firstSavedTimeCases: StoreCase[] = defineCases('messages.first-saved-time', [
  {
    id: 'insert-in-middle',
    title: 'a message inserted in the middle is the only new one; the messages after it keep their time',
    run: async (ctx) => {
      const id = ctx.agentId('middle');
      const [m1, m2, m3] = conversation(3) as [Message, Message, Message];
      await ctx.store.saveMessages(id, [m1, m2, m3]);
      const t = await boundary();
      const inserted = textMessage('assistant', 'inserted');
      await ctx.store.saveMessages(id, [m1, inserted, m2, m3]);
      checkEqual(await after(ctx, id, t), [inserted], 'messages first saved after the boundary');
      checkEqual(await before(ctx, id, t), [m1, m2, m3], 'messages first saved before the boundary');
    },
  },
  {
    id: 'summary-replaces-head',
    title: 'replacing the first messages with a summary (context compression) re-stamps none of the rest',
    run: async (ctx) => {
      const id = ctx.agentId('summary');
      const messages = conversation(6);
      await ctx.store.saveMessages(id, messages);
      const t = await boundary();
      const summary = textMessage('system', 'summary of m0..m2');
      await ctx.store.saveMessages(id, [summary, ...messages.slice(3)]);
      checkEqual(await after(ctx, id, t), [summary], 'messages first saved after the boundary');
      checkEqual(await before(ctx, id, t), messages.slice(3), 'messages first saved before the boundary');
    },
  },
  {
    id: 'duplicates-paired-in-order',
    title: 'equal messages pair with stored ones occurrence by occurrence, in order; a surplus copy is new',
    run: async (ctx) => {
      const id = ctx.agentId('dups');
      const a = textMessage('user', 'again');
      const b = textMessage('assistant', 'between');
      const head = textMessage('system', 'head');
      await ctx.store.saveMessages(id, [a, b]);
      const t1 = await boundary();
      await ctx.store.saveMessages(id, [a, b, a]);
      const t2 = await boundary();
      // The whole list is past the common prefix: the 1st `again` pairs with
      // the one saved first, the 2nd with the one saved at t1, the 3rd is new.
      await ctx.store.saveMessages(id, [head, a, b, a, a]);
      checkEqual(await before(ctx, id, t1), [a, b], 'first save (positions 1 and 2)');
      checkEqual(await after(ctx, id, t2), [head, a], 'third save: the new head and the surplus copy');
      checkEqual(
        await ctx.store.queryMessages({ agentId: id, createdAfter: t1, createdBefore: t2, sortOrder: 'asc' }),
        [a],
        'second save: one copy',
      );
      // Newest first, ties by position: a copy paired out of order would change this.
      checkEqual(
        await ctx.store.queryMessages({ agentId: id }),
        [a, head, a, b, a],
        'all messages, newest first',
      );
    },
  },
  {
    id: 'survives-reopen',
    title:
      'a store object that never saw the list (no cache) keeps the first-saved times of a rewritten tail',
    needs: ['reopen'],
    run: async (ctx) => {
      const id = ctx.agentId('reopen');
      const messages = conversation(4);
      await ctx.store.saveMessages(id, messages);
      const t = await boundary();
      const reopened = await ctx.reopen();
      const inserted = textMessage('user', 'inserted after reopen');
      await reopened.saveMessages(id, [messages[0] as Message, inserted, ...messages.slice(1)]);
      checkEqual(
        await reopened.queryMessages({ agentId: id, createdAfter: t, sortOrder: 'asc' }),
        [inserted],
        'messages first saved after the boundary',
      );
    },
  },
]);
