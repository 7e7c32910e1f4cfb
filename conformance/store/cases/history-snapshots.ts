import { checkEqual, sleep } from '../../runner/assertions.js';
import { compressionRecord, conversation, historyWindow, recoveredFile, snapshot } from '../sample-data.js';
import { defineCases, type StoreCase } from '../store-case.js';

export const historyCases: StoreCase[] = defineCases('history', [
  {
    id: 'windows-append',
    title: 'history windows append and load in saved order',
    run: async (ctx) => {
      const id = ctx.agentId('win');
      const windows = ['window-3', 'window-1', 'window-2'].map((w) => historyWindow(w));
      for (const w of windows) await ctx.store.saveHistoryWindow(id, w);
      checkEqual(await ctx.store.loadHistoryWindows(id), windows, 'windows');
    },
  },
  {
    id: 'windows-same-id-twice',
    title: 'saving a history window with an id already saved appends a second entry',
    run: async (ctx) => {
      const id = ctx.agentId('win');
      await ctx.store.saveHistoryWindow(id, historyWindow('window-1', conversation(1)));
      await ctx.store.saveHistoryWindow(id, historyWindow('window-1', conversation(2)));
      checkEqual(
        await ctx.store.loadHistoryWindows(id),
        [historyWindow('window-1', conversation(1)), historyWindow('window-1', conversation(2))],
        'windows',
      );
    },
  },
  {
    id: 'compressions-append',
    title: 'compression records append and load in saved order',
    run: async (ctx) => {
      const id = ctx.agentId('comp');
      const records = ['comp-9', 'comp-2', 'comp-5'].map(compressionRecord);
      for (const r of records) await ctx.store.saveCompressionRecord(id, r);
      checkEqual(await ctx.store.loadCompressionRecords(id), records, 'compression records');
    },
  },
  {
    id: 'recovered-files-append',
    title: 'recovered files append and load in saved order, the same path twice kept twice',
    run: async (ctx) => {
      const id = ctx.agentId('rec');
      const files = ['/w/b.ts', '/w/a.ts', '/w/b.ts'].map(recoveredFile);
      for (const f of files) await ctx.store.saveRecoveredFile(id, f);
      checkEqual(await ctx.store.loadRecoveredFiles(id), files, 'recovered files');
    },
  },
  {
    id: 'unknown-agent',
    title: 'history, compression and recovered-file loads of an unknown agent are []',
    run: async (ctx) => {
      const id = ctx.agentId('nobody');
      checkEqual(await ctx.store.loadHistoryWindows(id), [], 'windows');
      checkEqual(await ctx.store.loadCompressionRecords(id), [], 'compression records');
      checkEqual(await ctx.store.loadRecoveredFiles(id), [], 'recovered files');
    },
  },
]);

const T = (n: number) => `2026-11-22T15:32:1${n}.000Z`;

export const snapshotCases: StoreCase[] = defineCases('snapshots', [
  {
    id: 'list-oldest-first',
    title: 'listSnapshots returns snapshots oldest first (not by id)',
    run: async (ctx) => {
      const id = ctx.agentId('snaps');
      const snaps = [snapshot('sfp-9', T(1)), snapshot('sfp-10', T(2)), snapshot('a-first', T(3))];
      for (const s of snaps) {
        await ctx.store.saveSnapshot(id, s);
        // A clock tick between saves, so a store ordering by save time has distinct times.
        await sleep(3);
      }
      checkEqual(await ctx.store.listSnapshots(id), snaps, 'snapshots');
    },
  },
  {
    id: 'upsert',
    title: 'saving a snapshot with an existing id replaces it, without a second entry',
    run: async (ctx) => {
      const id = ctx.agentId('upsert');
      await ctx.store.saveSnapshot(id, snapshot('sfp-1', T(1), conversation(1)));
      const replaced = snapshot('sfp-1', T(1), conversation(3));
      await ctx.store.saveSnapshot(id, replaced);
      checkEqual(await ctx.store.loadSnapshot(id, 'sfp-1'), replaced, 'loadSnapshot');
      checkEqual(await ctx.store.listSnapshots(id), [replaced], 'listSnapshots');
    },
  },
  {
    id: 'upsert-keeps-place',
    title: 'an upserted snapshot keeps its place in the oldest-first list',
    run: async (ctx) => {
      const id = ctx.agentId('place');
      const [a, b] = [snapshot('sfp-a', T(1)), snapshot('sfp-b', T(2))];
      await ctx.store.saveSnapshot(id, a);
      await sleep(3);
      await ctx.store.saveSnapshot(id, b);
      await sleep(3);
      const a2 = { ...a, metadata: { label: 'updated' } };
      await ctx.store.saveSnapshot(id, a2);
      checkEqual(await ctx.store.listSnapshots(id), [a2, b], 'snapshots');
    },
  },
  {
    id: 'load-unknown-id',
    title: 'loadSnapshot of an unknown snapshot id is undefined',
    run: async (ctx) => {
      const id = ctx.agentId('snap');
      await ctx.store.saveSnapshot(id, snapshot('sfp-1', T(1)));
      checkEqual(await ctx.store.loadSnapshot(id, 'sfp-2'), undefined, 'unknown snapshot');
      checkEqual(await ctx.store.loadSnapshot(ctx.agentId('nobody'), 'sfp-1'), undefined, 'unknown agent');
    },
  },
  {
    id: 'unknown-agent-list',
    title: 'listSnapshots of an unknown agent is []',
    run: async (ctx) => checkEqual(await ctx.store.listSnapshots(ctx.agentId('nobody')), [], 'snapshots'),
  },
  {
    id: 'hostile-snapshot-ids',
    title: 'snapshot ids with slashes, dots, quotes and unicode work',
    run: async (ctx) => {
      const id = ctx.agentId('snap-ids');
      const ids = ['../x', 'a/b', "it's", '快照 1', 'sfp-%_*'];
      for (const [i, sid] of ids.entries()) await ctx.store.saveSnapshot(id, snapshot(sid, T(i)));
      for (const [i, sid] of ids.entries()) {
        checkEqual(await ctx.store.loadSnapshot(id, sid), snapshot(sid, T(i)), `snapshot ${sid}`);
      }
    },
  },
]);
