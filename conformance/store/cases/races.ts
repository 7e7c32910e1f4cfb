import type { ExtendedStore, Message, Timeline } from '../../../src/types.js';
import { check, checkEqual, collect, sleep } from '../../runner/assertions.js';
import { agentInfo, conversation, timeline } from '../sample-data.js';
import { defineCases, type StoreCase } from '../store-case.js';
import { checkEverything, saveEverything } from './lifecycle.js';

/** Marks each entry with the writer that appended it, so order can be checked per writer. */
function writerEvents(writer: string, count: number): Timeline[] {
  return Array.from({ length: count }, (_, i) => timeline(i, 'progress', { delta: `${writer}:${i}` }));
}

function writerOf(entry: Timeline): string {
  return String((entry.event as { delta?: string }).delta).split(':')[0] ?? '';
}

/** Two store objects on the same database, racing. */
export const raceCases: StoreCase[] = defineCases('races', [
  {
    id: 'peer-sees-writes',
    title: 'what one store object wrote (and awaited) another object on the same database reads',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('shared');
      await saveEverything(ctx, id);
      await checkEverything(ctx, id, peer);
      await peer.saveMessages(id, conversation(5));
      checkEqual(await ctx.store.loadMessages(id), conversation(5), 'messages written by the peer');
    },
  },
  {
    id: 'appenders-same-agent',
    title:
      'two store objects appending to one agent at once: nothing lost, nothing doubled, each writer in order',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('append');
      const a = writerEvents('a', 200);
      const b = writerEvents('b', 200);
      await Promise.all([
        ...a.map((e) => ctx.store.appendEvent(id, e)),
        ...b.map((e) => peer.appendEvent(id, e)),
      ]);
      const read = await collect(ctx.store.readEvents(id));
      checkEqual(read.length, 400, 'entries');
      checkEqual(
        read.filter((e) => writerOf(e) === 'a'),
        a,
        "writer a's entries in order",
      );
      checkEqual(
        read.filter((e) => writerOf(e) === 'b'),
        b,
        "writer b's entries in order",
      );
      checkEqual(await collect(peer.readEvents(id)), read, 'the peer reads the same stream');
    },
  },
  {
    id: 'writers-distinct-agents',
    title: 'two store objects writing different agents at once lose nothing',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const ids = Array.from({ length: 10 }, (_, i) => ctx.agentId(`w${i}`));
      await Promise.all(
        ids.map(async (id, i) => {
          const store: ExtendedStore = i % 2 ? peer : ctx.store;
          for (let n = 1; n <= 6; n++) await store.saveMessages(id, conversation(n, 0, id));
          await store.saveInfo(id, agentInfo(id, { messageCount: 6 }));
        }),
      );
      for (const id of ids) {
        checkEqual(await ctx.store.loadMessages(id), conversation(6, 0, id), `messages of ${id}`);
        checkEqual((await peer.loadInfo(id))?.messageCount, 6, `info of ${id}`);
      }
    },
  },
  {
    id: 'writers-same-agent',
    title: 'two store objects replacing one conversation at once leave one whole list, never a mix',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('same');
      const lists: Message[][] = [conversation(6, 0, 'a'), conversation(4, 0, 'b'), conversation(8, 0, 'c')];
      await ctx.store.saveMessages(id, conversation(3, 0, 'start'));
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? peer : ctx.store).saveMessages(id, lists[i % 3] as Message[]),
        ),
      );
      const final = await ctx.store.loadMessages(id);
      check(
        lists.some((list) => JSON.stringify(list) === JSON.stringify(final)),
        `the stored conversation is a mix of concurrent saves: ${final.map((m) => (m.content[0] as { text?: string }).text).join(',')}`,
      );
      checkEqual(await peer.loadMessages(id), final, 'the peer reads the same conversation');
    },
  },
  {
    id: 'incremental-saves-interleaved',
    title:
      "one object's incremental saves stay correct when another object rewrote the conversation in between",
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('cache');
      await ctx.store.saveMessages(id, conversation(4));
      await peer.saveMessages(id, conversation(2, 0, 'peer'));
      await ctx.store.saveMessages(id, conversation(5));
      checkEqual(await peer.loadMessages(id), conversation(5), 'after the interleaved saves');
      await peer.saveMessages(id, conversation(5).slice(0, 1));
      await ctx.store.saveMessages(id, conversation(5));
      checkEqual(await ctx.store.loadMessages(id), conversation(5), 'after a peer shrink');
    },
  },
  {
    id: 'lock-guarded-read-modify-write',
    title: 'read-modify-write of AgentInfo under the agent lock from two objects loses no update',
    requires: ['crossInstanceLocks'],
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('rmw');
      await ctx.store.saveInfo(id, agentInfo(id, { messageCount: 0 }));
      const bump = async (store: ExtendedStore) => {
        const release = await store.acquireAgentLock(id, 10_000);
        try {
          const info = await store.loadInfo(id);
          await sleep(1);
          await store.saveInfo(id, agentInfo(id, { messageCount: (info?.messageCount ?? 0) + 1 }));
        } finally {
          await release();
        }
      };
      await Promise.all(Array.from({ length: 16 }, (_, i) => bump(i % 2 ? peer : ctx.store)));
      checkEqual(
        (await ctx.store.loadInfo(id))?.messageCount,
        16,
        'messageCount after 16 guarded increments',
      );
    },
  },
  {
    id: 'delete-while-peer-writes',
    title: 'deleting one agent while another object writes a different agent leaves the other intact',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const [doomed, kept] = [ctx.agentId('doomed'), ctx.agentId('kept')];
      await saveEverything(ctx, doomed);
      await Promise.all([
        ctx.store.delete(doomed),
        (async () => {
          for (let n = 1; n <= 5; n++) await peer.saveMessages(kept, conversation(n));
        })(),
      ]);
      checkEqual(await ctx.store.loadMessages(kept), conversation(5), 'kept agent');
      checkEqual(await peer.exists(doomed), false, 'doomed agent');
    },
  },
  {
    id: 'fork-while-peer-appends',
    title: 'batchFork on one object while another appends events to the source: both complete, source intact',
    needs: ['createPeer'],
    run: async (ctx) => {
      const peer = await ctx.peer();
      const id = ctx.agentId('src');
      await ctx.store.saveInfo(id, agentInfo(id));
      await ctx.store.saveMessages(id, conversation(3));
      const entries = writerEvents('p', 50);
      const [forks] = await Promise.all([
        ctx.store.batchFork(id, 3),
        Promise.all(entries.map((e) => peer.appendEvent(id, e))),
      ]);
      checkEqual(forks.length, 3, 'forks');
      checkEqual(await collect(ctx.store.readEvents(id)), entries, 'source events');
      for (const fork of forks)
        checkEqual(await peer.loadMessages(fork), conversation(3), `messages of ${fork}`);
    },
  },
]);
