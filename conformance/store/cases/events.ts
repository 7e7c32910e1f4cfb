import type { Timeline } from '../../../src/types.js';
import { check, checkEqual, checkRejects, collect } from '../../runner/assertions.js';
import { timeline } from '../sample-data.js';
import { defineCases, type StoreCase } from '../store-case.js';

const CHANNELS = ['progress', 'monitor', 'control'] as const;

/** `count` entries cycling through the channels, seq = position. */
function mixed(count: number, from = 0): Timeline[] {
  return Array.from({ length: count }, (_, i) => timeline(from + i, CHANNELS[(from + i) % 3]));
}

export const eventCases: StoreCase[] = defineCases('events', [
  {
    id: 'append-order.awaited',
    title: 'awaited appends read back in append order across all channels',
    run: async (ctx) => {
      const id = ctx.agentId('ev');
      const entries = mixed(30);
      for (const e of entries) await ctx.store.appendEvent(id, e);
      checkEqual(await collect(ctx.store.readEvents(id)), entries, 'events');
    },
  },
  {
    id: 'append-order.unawaited-500',
    title: '500 appends fired without awaiting keep their call order',
    run: async (ctx) => {
      const id = ctx.agentId('burst');
      const entries = mixed(500);
      await Promise.all(entries.map((e) => ctx.store.appendEvent(id, e)));
      checkEqual(await collect(ctx.store.readEvents(id)), entries, '500 un-awaited events');
    },
  },
  {
    id: 'append-order.not-by-seq',
    title: 'events read back in append order even when seqs go backwards',
    run: async (ctx) => {
      const id = ctx.agentId('seqs');
      const entries = [timeline(5), timeline(3, 'monitor'), timeline(9, 'control'), timeline(1), timeline(7)];
      await Promise.all(entries.map((e) => ctx.store.appendEvent(id, e)));
      checkEqual(await collect(ctx.store.readEvents(id)), entries, 'events');
    },
  },
  {
    id: 'append-order.not-by-timestamp',
    title: 'events read back in append order even when timestamps go backwards',
    run: async (ctx) => {
      const id = ctx.agentId('ts');
      const entries = [1, 2, 3].map((seq) => ({
        ...timeline(seq),
        bookmark: { seq, timestamp: 1000 - seq },
      }));
      for (const e of entries) await ctx.store.appendEvent(id, e);
      checkEqual(await collect(ctx.store.readEvents(id)), entries, 'events');
    },
  },
  {
    id: 'read-your-writes',
    title: 'readEvents right after un-awaited appends sees all of them',
    run: async (ctx) => {
      const id = ctx.agentId('ryw');
      const entries = mixed(20);
      const pending = entries.map((e) => ctx.store.appendEvent(id, e));
      const read = await collect(ctx.store.readEvents(id));
      await Promise.allSettled(pending);
      checkEqual(read, entries, 'events');
    },
  },
  {
    id: 'since',
    title: 'since keeps only entries with bookmark.seq greater than since.seq',
    run: async (ctx) => {
      const id = ctx.agentId('since');
      const entries = mixed(12);
      for (const e of entries) await ctx.store.appendEvent(id, e);
      const since = { seq: 7, timestamp: 0 };
      checkEqual(await collect(ctx.store.readEvents(id, { since })), entries.slice(8), 'since seq 7');
      checkEqual(
        await collect(ctx.store.readEvents(id, { since: { seq: -1, timestamp: 0 } })),
        entries,
        'since -1',
      );
      checkEqual(
        await collect(ctx.store.readEvents(id, { since: { seq: 11, timestamp: 0 } })),
        [],
        'since last',
      );
    },
  },
  {
    id: 'since-ignores-timestamp',
    title: "since compares seq only, whatever the bookmark's timestamp",
    run: async (ctx) => {
      const id = ctx.agentId('since-ts');
      const entries = mixed(6);
      for (const e of entries) await ctx.store.appendEvent(id, e);
      const since = { seq: 2, timestamp: Number.MAX_SAFE_INTEGER };
      checkEqual(await collect(ctx.store.readEvents(id, { since })), entries.slice(3), 'since seq 2');
    },
  },
  {
    id: 'channel',
    title: 'channel keeps only entries whose event.channel matches, in append order',
    run: async (ctx) => {
      const id = ctx.agentId('chan');
      const entries = mixed(15);
      for (const e of entries) await ctx.store.appendEvent(id, e);
      for (const channel of CHANNELS) {
        checkEqual(
          await collect(ctx.store.readEvents(id, { channel })),
          entries.filter((e) => e.event.channel === channel),
          `channel ${channel}`,
        );
      }
    },
  },
  {
    id: 'since-and-channel',
    title: 'since and channel together keep entries matching both',
    run: async (ctx) => {
      const id = ctx.agentId('both');
      const entries = mixed(20);
      for (const e of entries) await ctx.store.appendEvent(id, e);
      checkEqual(
        await collect(ctx.store.readEvents(id, { since: { seq: 9, timestamp: 0 }, channel: 'monitor' })),
        entries.filter((e) => e.bookmark.seq > 9 && e.event.channel === 'monitor'),
        'since 9 on monitor',
      );
    },
  },
  {
    id: 'seq-reuse',
    title: 'reused seqs are all kept, in append order, and since filters every one of them',
    run: async (ctx) => {
      const id = ctx.agentId('reuse');
      const entries = [
        timeline(0, 'monitor', { type: 'tool_manual_updated', tools: ['a'], timestamp: 1 }),
        timeline(1),
        timeline(2),
        timeline(0, 'monitor', { type: 'tool_manual_updated', tools: ['a', 'b'], timestamp: 2 }),
        timeline(1, 'progress', { delta: 'resumed' }),
        timeline(2, 'progress', { delta: 'resumed again' }),
      ];
      for (const e of entries) await ctx.store.appendEvent(id, e);
      checkEqual(await collect(ctx.store.readEvents(id)), entries, 'all events');
      checkEqual(
        await collect(ctx.store.readEvents(id, { since: { seq: 0, timestamp: 0 } })),
        [entries[1], entries[2], entries[4], entries[5]],
        'since seq 0',
      );
    },
  },
  {
    id: 'identical-duplicates-kept',
    title: 'byte-identical entries appended twice are both kept',
    run: async (ctx) => {
      const id = ctx.agentId('dup');
      const entries = [timeline(1), timeline(1), timeline(2), timeline(2), timeline(2)];
      for (const e of entries) await ctx.store.appendEvent(id, e);
      checkEqual(await collect(ctx.store.readEvents(id)), entries, 'duplicates');
    },
  },
  {
    id: 'unknown-agent',
    title: 'readEvents of an unknown agent yields nothing',
    run: async (ctx) => checkEqual(await collect(ctx.store.readEvents(ctx.agentId('nobody'))), [], 'events'),
  },
  {
    id: 'isolated-per-agent',
    title: "one agent's events never show up in another's stream",
    run: async (ctx) => {
      const [a, b] = [ctx.agentId('a'), ctx.agentId('a')];
      await Promise.all([
        ...mixed(10).map((e) => ctx.store.appendEvent(a, e)),
        ...mixed(5, 100).map((e) => ctx.store.appendEvent(b, e)),
      ]);
      checkEqual(await collect(ctx.store.readEvents(a)), mixed(10), 'events of a');
      checkEqual(await collect(ctx.store.readEvents(b)), mixed(5, 100), 'events of b');
    },
  },
  {
    id: 'stream.stop-early',
    title: 'a reader that breaks out of for-await early leaves the store working and the stream intact',
    run: async (ctx) => {
      const id = ctx.agentId('break');
      const entries = mixed(50);
      for (const e of entries) await ctx.store.appendEvent(id, e);
      let seen = 0;
      for await (const _ of ctx.store.readEvents(id)) {
        if (++seen === 3) break;
      }
      checkEqual(seen, 3, 'entries seen before break');
      await ctx.store.appendEvent(id, timeline(50));
      await ctx.store.saveMessages(id, []);
      checkEqual(
        await collect(ctx.store.readEvents(id)),
        [...entries, timeline(50)],
        'stream after the break',
      );
    },
  },
  {
    id: 'stream.stop-early-repeatedly',
    title: 'many readers that stop early one after another do not exhaust the store',
    run: async (ctx) => {
      const id = ctx.agentId('breaks');
      for (const e of mixed(10)) await ctx.store.appendEvent(id, e);
      for (let i = 0; i < 40; i++) {
        for await (const _ of ctx.store.readEvents(id)) break;
      }
      checkEqual((await collect(ctx.store.readEvents(id))).length, 10, 'entries');
    },
  },
  {
    id: 'stream.concurrent-readers',
    title: 'concurrent readers each get the whole stream once, and the stored stream is unchanged',
    run: async (ctx) => {
      const id = ctx.agentId('readers');
      const entries = mixed(300);
      await Promise.all(entries.map((e) => ctx.store.appendEvent(id, e)));
      const reads = await Promise.all(Array.from({ length: 4 }, () => collect(ctx.store.readEvents(id))));
      for (const [i, read] of reads.entries()) checkEqual(read, entries, `reader ${i}`);
      checkEqual(await collect(ctx.store.readEvents(id)), entries, 'stream afterwards');
    },
  },
  {
    id: 'stream.interleaved-iterators',
    title: 'two iterators over one stream advanced in turn each see every entry once',
    run: async (ctx) => {
      const id = ctx.agentId('interleave');
      const entries = mixed(25);
      for (const e of entries) await ctx.store.appendEvent(id, e);
      const a = ctx.store.readEvents(id)[Symbol.asyncIterator]();
      const b = ctx.store.readEvents(id, { channel: 'progress' })[Symbol.asyncIterator]();
      const gotA: Timeline[] = [];
      const gotB: Timeline[] = [];
      for (;;) {
        const [x, y] = await Promise.all([a.next(), b.next()]);
        if (!x.done) gotA.push(x.value);
        if (!y.done) gotB.push(y.value);
        if (x.done && y.done) break;
      }
      checkEqual(gotA, entries, 'iterator a');
      checkEqual(
        gotB,
        entries.filter((e) => e.event.channel === 'progress'),
        'iterator b',
      );
    },
  },
  {
    id: 'stream.large',
    title:
      'a 6000-entry stream (pages of several sizes) reads back complete and in order, whole and filtered',
    run: async (ctx) => {
      const id = ctx.agentId('large');
      const entries = mixed(6000);
      await Promise.all(entries.map((e) => ctx.store.appendEvent(id, e)));
      const read = await collect(ctx.store.readEvents(id));
      checkEqual(read.length, 6000, 'entries read');
      checkEqual(read, entries, 'entries');
      const since = { seq: 1999, timestamp: 0 };
      checkEqual(
        await collect(ctx.store.readEvents(id, { since })),
        entries.filter((e) => e.bookmark.seq > 1999),
        'entries since seq 1999',
      );
      checkEqual(
        await collect(ctx.store.readEvents(id, { channel: 'monitor' })),
        entries.filter((e) => e.event.channel === 'monitor'),
        'monitor entries',
      );
    },
  },
  {
    id: 'iterable-reusable',
    title: 'the iterable readEvents returns can be iterated twice with the same result',
    run: async (ctx) => {
      const id = ctx.agentId('twice');
      for (const e of mixed(5)) await ctx.store.appendEvent(id, e);
      const iterable = ctx.store.readEvents(id);
      checkEqual(await collect(iterable), mixed(5), 'first pass');
      checkEqual(await collect(iterable), mixed(5), 'second pass');
    },
  },
  {
    id: 'function-field-dropped',
    title: "a permission_required event's live respond() callback is dropped, as JSON does; the rest is kept",
    run: async (ctx) => {
      const id = ctx.agentId('respond');
      const entry = timeline(22, 'control', {
        type: 'permission_required',
        call: { id: 'toolu_p', name: 'fs_write', state: 'APPROVAL_REQUIRED', approval: { required: true } },
        respond: async () => undefined,
      });
      await ctx.store.appendEvent(id, entry);
      const [read] = await collect(ctx.store.readEvents(id));
      const { respond: _dropped, ...kept } = entry.event as unknown as Record<string, unknown>;
      checkEqual(read, { ...entry, event: kept }, 'stored event');
    },
  },
  {
    id: 'non-serialisable-refused',
    title: 'an event holding a BigInt or a cycle is refused with a ValidationError and nothing is appended',
    run: async (ctx) => {
      const id = ctx.agentId('bad');
      await ctx.store.appendEvent(id, timeline(1));
      await checkRejects(
        () => ctx.store.appendEvent(id, timeline(2, 'progress', { delta: 10n })),
        'KODE_VALIDATION',
        'BigInt event',
      );
      const cyclic = timeline(3) as unknown as { event: Record<string, unknown> };
      cyclic.event.self = cyclic;
      await checkRejects(
        () => ctx.store.appendEvent(id, cyclic as unknown as Timeline),
        'KODE_VALIDATION',
        'cyclic event',
      );
      checkEqual(await collect(ctx.store.readEvents(id)), [timeline(1)], 'events');
    },
  },
  {
    id: 'failed-append-keeps-order',
    title: 'a refused append in a burst does not disturb the order of the others',
    run: async (ctx) => {
      const id = ctx.agentId('burst-bad');
      const entries = mixed(30);
      const outcomes = await Promise.allSettled(
        entries.map((e, i) =>
          ctx.store.appendEvent(id, i === 15 ? timeline(15, 'progress', { delta: Number.NaN }) : e),
        ),
      );
      check(outcomes[15]?.status === 'rejected', 'the NaN event was not refused');
      checkEqual(
        await collect(ctx.store.readEvents(id)),
        entries.filter((_, i) => i !== 15),
        'events',
      );
    },
  },
]);
