import {
  type PrunePolicy,
  type PruneResult,
  type RetentionStore,
  supportsRetention,
} from '../../../src/agent/retention.js';
import { FILE_TIME_SLACK_MS } from '../../../src/hybrid/file-event-log.js';
import type { AgentChannel, ExtendedStore, Timeline } from '../../../src/types.js';
import { check, checkEqual, checkRejects, collect, waitPast } from '../../runner/assertions.js';
import {
  agentInfo,
  compressionRecord,
  conversation,
  historyWindow,
  mediaRecord,
  recoveredFile,
  snapshot,
  timeline,
  todoSnapshot,
  toolCall,
} from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

/**
 * Retention (`store.prune`, issue 17): exactly what a policy names goes, a
 * dry run changes nothing, a write made while the prune runs survives, and
 * the events that stay read back in order. Every policy of these cases is
 * narrowed to ids of its own case (`prefix`), so other agents in a shared
 * database are never touched. A store without `prune` skips them.
 *
 * Times: a policy's dates are compared with the store's write times, so the
 * cases wait for the clock to pass a boundary (`boundary()`) between writes
 * that must fall on either side of it; nothing asserts how long anything took.
 * Hybrid mode's event files record no time per line, so there an event's
 * time is its `bookmark.timestamp`: the cases' events carry the time they
 * are appended (`appended()`), which makes both readings agree.
 */

type PruningStore = ExtendedStore & RetentionStore;

function pruning(ctx: CaseContext): PruningStore {
  const store = ctx.store;
  if (!supportsRetention(store)) throw new Error('unreachable: the case is skipped for stores without prune');
  return store;
}

function unsupported(store: object): string | undefined {
  return supportsRetention(store) ? undefined : 'the store has no prune() and compact() (optional API)';
}

/**
 * A time strictly after every write made so far and strictly before every
 * write made after it resolves (the clock is read at millisecond steps).
 * Hybrid mode judges appends by the event file's modification time, which a
 * store may only trust to within `FILE_TIME_SLACK_MS`: the boundary is then
 * that much later than the writes before it.
 */
async function boundary(ctx: CaseContext): Promise<number> {
  const start = Date.now() + (ctx.capabilities.fileEvents ? FILE_TIME_SLACK_MS : 0);
  await waitPast(start);
  const at = Date.now();
  await waitPast(at);
  return at;
}

/** Hybrid mode: the events of a deleted agent go with its event file, and are not counted. */
function fileEvents(ctx: CaseContext): boolean {
  return ctx.capabilities.fileEvents;
}

/** An event stamped with the time it is appended (its `bookmark.timestamp`, see the module comment). */
function appended(seq: number, channel: AgentChannel): Timeline {
  const entry = timeline(seq, channel);
  const now = Date.now();
  return {
    ...entry,
    bookmark: { ...entry.bookmark, timestamp: now },
    event: { ...entry.event, bookmark: { ...entry.event.bookmark, timestamp: now } } as Timeline['event'],
  };
}

async function saveAgent(
  store: ExtendedStore,
  id: string,
  templateId: string,
  events: Array<[number, AgentChannel]>,
  snapshots = 2,
): Promise<void> {
  await store.saveInfo(id, agentInfo(id, { templateId, messageCount: 2 }));
  await store.saveMessages(id, conversation(2));
  await store.saveToolCallRecords(id, [toolCall(`${id}-call`)]);
  for (const [seq, channel] of events) await store.appendEvent(id, appended(seq, channel));
  for (let i = 0; i < snapshots; i++) {
    await store.saveSnapshot(id, snapshot(`snap-${i}`, `2026-11-22T15:3${i}:00.000Z`));
  }
}

/** Everything the cases compare, per agent. */
async function dump(store: ExtendedStore, ids: string[]): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const id of ids) {
    out[id] = {
      exists: await store.exists(id),
      info: await store.loadInfo(id),
      messages: await store.loadMessages(id),
      toolCalls: await store.loadToolCallRecords(id),
      events: await collect(store.readEvents(id)),
      snapshots: (await store.listSnapshots(id)).map((s) => s.id),
    };
  }
  return out;
}

function seqs(events: Timeline[]): number[] {
  return events.map((e) => e.bookmark?.seq as number);
}

function counts(result: PruneResult) {
  const { agents, messages, toolCalls, events, snapshots, files } = result;
  return { agents, messages, toolCalls, events, snapshots, files };
}

/**
 * Agents under one prefix (and one outside it): `old` and `oldOther` are
 * written before the boundary, `fresh` on both sides of it.
 */
async function retentionScene(ctx: CaseContext) {
  const store = ctx.store;
  const base = ctx.agentId('scope');
  const ids = {
    old: `${base}-old`,
    oldOther: `${base}-old-other-template`,
    fresh: `${base}-fresh`,
    outside: ctx.agentId('outside'),
  };
  await saveAgent(store, ids.old, 'tpl-prune', [
    [1, 'progress'],
    [2, 'monitor'],
    [3, 'progress'],
  ]);
  await saveAgent(store, ids.oldOther, 'tpl-keep', [[1, 'progress']]);
  await saveAgent(store, ids.outside, 'tpl-prune', [[1, 'progress']]);
  await saveAgent(
    store,
    ids.fresh,
    'tpl-prune',
    [
      [1, 'progress'],
      [2, 'monitor'],
      [3, 'progress'],
      [4, 'progress'],
    ],
    3,
  );
  const at = await boundary(ctx);
  await store.appendEvent(ids.fresh, appended(5, 'progress'));
  await store.appendEvent(ids.fresh, appended(6, 'monitor'));
  const policy: PrunePolicy = {
    prefix: base,
    templateId: 'tpl-prune',
    inactiveBefore: at,
    snapshots: { keepNewest: 1 },
    events: { olderThan: at, keepNewest: 1 },
  };
  return { ids, policy, at };
}

/** What the scene's policy removes. */
function expectedSceneCounts(ctx: CaseContext) {
  return fileEvents(ctx)
    ? // Hybrid: the deleted agent's event file goes (its lines are not counted); 4 events of `fresh`.
      { agents: 1, messages: 2, toolCalls: 1, events: 4, snapshots: 2 + 2, files: 1 }
    : // 3 events of the deleted agent, the 4 of `fresh` from before the boundary.
      { agents: 1, messages: 2, toolCalls: 1, events: 3 + 4, snapshots: 2 + 2, files: 0 };
}

export const retentionCases: StoreCase[] = defineCases('retention', [
  {
    id: 'exact-policy',
    title:
      'prune removes exactly what the policy names (inactive agents, old events, extra snapshots) and nothing else',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const { ids, policy } = await retentionScene(ctx);
      const before = (await dump(store, [ids.oldOther, ids.outside, ids.fresh])) as Record<
        string,
        Record<string, unknown>
      >;
      const result = await store.prune(policy);
      checkEqual(counts(result), expectedSceneCounts(ctx), 'counts of what was removed');
      checkEqual(result.dryRun, false, 'result.dryRun');
      checkEqual(result.scannedAgents, 2, 'agents under the prefix with the template');

      check(!(await store.exists(ids.old)), 'the inactive agent still exists');
      check(!(await store.list(ids.old)).includes(ids.old), 'the inactive agent is still listed');
      checkEqual(await store.loadInfo(ids.old), undefined, 'info of the pruned agent');
      checkEqual(await collect(store.readEvents(ids.old)), [], 'events of the pruned agent');
      checkEqual(await store.listSnapshots(ids.old), [], 'snapshots of the pruned agent');

      const after = (await dump(store, [ids.oldOther, ids.outside, ids.fresh])) as Record<
        string,
        Record<string, unknown>
      >;
      checkEqual(after[ids.oldOther], before[ids.oldOther], 'agent of another template');
      checkEqual(after[ids.outside], before[ids.outside], 'agent outside the prefix');
      const fresh = after[ids.fresh] as Record<string, unknown>;
      const freshBefore = before[ids.fresh] as Record<string, unknown>;
      for (const part of ['exists', 'info', 'messages', 'toolCalls']) {
        checkEqual(fresh[part], freshBefore[part], `${part} of the active agent`);
      }
      checkEqual(fresh.snapshots, ['snap-2'], 'snapshots of the active agent (the newest one kept)');
      checkEqual(
        seqs(fresh.events as Timeline[]),
        [5, 6],
        'events of the active agent (those stored after the date)',
      );
    },
  },
  {
    id: 'any-write-is-activity',
    title: 'every kind of write keeps an agent active; a fork is judged by its own writes, not its source',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const base = ctx.agentId('kinds');
      const writes: Record<string, (id: string) => Promise<unknown>> = {
        info: (id) => store.saveInfo(id, agentInfo(id, { messageCount: 1 })),
        messages: (id) => store.saveMessages(id, conversation(3)),
        toolCalls: (id) => store.saveToolCallRecords(id, [toolCall(`${id}-late`)]),
        todos: (id) => store.saveTodos(id, todoSnapshot(2)),
        mediaCache: (id) => store.saveMediaCache(id, [mediaRecord('late')]),
        history: (id) => store.saveHistoryWindow(id, historyWindow('late')),
        compression: (id) => store.saveCompressionRecord(id, compressionRecord('late')),
        recovered: (id) => store.saveRecoveredFile(id, recoveredFile('src/late.ts')),
        snapshot: (id) => store.saveSnapshot(id, snapshot('late', '2026-11-22T16:00:00.000Z')),
        event: (id) => store.appendEvent(id, appended(9, 'monitor')),
      };
      for (const kind of [...Object.keys(writes), 'idle', 'source']) {
        await saveAgent(store, `${base}-${kind}`, 'tpl', [[1, 'progress']], 1);
      }
      const at = await boundary(ctx);
      for (const [kind, write] of Object.entries(writes)) await write(`${base}-${kind}`);
      const [forkId] = await store.batchFork(`${base}-source`, 1);
      const result = await store.prune({ prefix: base, inactiveBefore: at });
      checkEqual(result.agents, 2, 'agents removed (the untouched one and the fork source)');
      const left = await store.list(base);
      checkEqual(
        left,
        [...Object.keys(writes).map((kind) => `${base}-${kind}`), forkId as string].sort(),
        'agents that stay',
      );
    },
  },
  {
    id: 'keep-newest-and-channels',
    title: 'events: all but the newest N of the named channels go; other channels and the newest N stay',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const id = ctx.agentId('channels');
      const channels: AgentChannel[] = ['progress', 'monitor', 'progress', 'control', 'progress', 'monitor'];
      await saveAgent(
        store,
        id,
        'tpl',
        channels.map((c, i) => [i + 1, c]),
        0,
      );
      const policy: PrunePolicy = {
        prefix: id,
        events: { keepNewest: 1, channels: ['progress', 'monitor'] },
      };
      const stored = await collect(store.readEvents(id));
      const result = await store.prune(policy);
      // progress/monitor events 1,2,3,5,6 considered; the newest (6) stays.
      checkEqual(result.events, 4, 'events removed');
      const removedBytes = stored
        .filter((entry) => [1, 2, 3, 5].includes(entry.bookmark.seq))
        .map((entry) => Buffer.byteLength(JSON.stringify(entry), 'utf8'))
        .reduce((a, b) => a + b, 0);
      checkEqual(result.bytes, removedBytes, 'bytes removed (the UTF-8 JSON of the removed events)');
      checkEqual(seqs(await collect(store.readEvents(id))), [4, 6], 'events that stay');
      checkEqual((await store.loadMessages(id)).length, 2, 'messages are not events');
    },
  },
  {
    id: 'dry-run',
    title: 'a dry run reports what the prune would remove and changes nothing',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const { ids, policy } = await retentionScene(ctx);
      const all = [ids.old, ids.oldOther, ids.outside, ids.fresh];
      const before = await dump(store, all);
      const dry = await store.prune(policy, { dryRun: true });
      checkEqual(dry.dryRun, true, 'result.dryRun');
      checkEqual(await dump(store, all), before, 'the store after a dry run');
      checkEqual(counts(dry), expectedSceneCounts(ctx), 'counts of the dry run');
      const real = await store.prune(policy);
      checkEqual(counts(real), counts(dry), 'the real run removes what the dry run reported');
      check(dry.bytes > 0, 'the dry run reports the bytes it would remove');
      checkEqual(real.bytes, dry.bytes, 'bytes removed, as the dry run reported');
    },
  },
  {
    id: 'write-during-prune',
    title:
      'an agent written after the prune scanned it (and before its delete) is kept with everything it has',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const base = ctx.agentId('race');
      const doomed = `${base}-a`;
      const revived = `${base}-b`;
      await saveAgent(store, doomed, 'tpl', [[1, 'progress']]);
      await saveAgent(store, revived, 'tpl', [[1, 'progress']]);
      const at = await boundary(ctx);
      let wrote = false;
      const result = await store.prune(
        { prefix: base, inactiveBefore: at },
        {
          onProgress: async (progress) => {
            // Both agents were scanned as inactive; the late append comes before either delete.
            if (progress.phase !== 'scanned' || wrote) return;
            wrote = true;
            await store.appendEvent(revived, appended(2, 'monitor'));
          },
        },
      );
      check(wrote, 'onProgress was called after the scan');
      checkEqual(result.agents, 1, 'agents removed');
      checkEqual(result.keptActive, 1, 'agents kept because they were written during the prune');
      check(!(await store.exists(doomed)), 'the inactive agent still exists');
      check(await store.exists(revived), 'the agent written during the prune was removed');
      checkEqual(seqs(await collect(store.readEvents(revived))), [1, 2], 'events of the kept agent');
      checkEqual((await store.loadMessages(revived)).length, 2, 'messages of the kept agent');
      checkEqual((await store.listSnapshots(revived)).length, 2, 'snapshots of the kept agent');
    },
  },
  {
    id: 'read-since-after-prune',
    title: 'readEvents with since (and channel) after a prune returns what remains, in append order',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const id = ctx.agentId('since');
      const first: Array<[number, AgentChannel]> = [
        [1, 'progress'],
        [2, 'monitor'],
        [3, 'progress'],
        [4, 'control'],
      ];
      await saveAgent(store, id, 'tpl', first, 0);
      const at = await boundary(ctx);
      for (const [seq, channel] of [
        [5, 'progress'],
        [6, 'monitor'],
        [7, 'progress'],
      ] as Array<[number, AgentChannel]>) {
        await store.appendEvent(id, appended(seq, channel));
      }
      const policy: PrunePolicy = { prefix: id, events: { olderThan: at } };
      checkEqual((await store.prune(policy)).events, 4, 'events removed');
      checkEqual(seqs(await collect(store.readEvents(id))), [5, 6, 7], 'all events');
      checkEqual(
        seqs(await collect(store.readEvents(id, { since: { seq: 2, timestamp: 0 } }))),
        [5, 6, 7],
        'since 2',
      );
      checkEqual(
        seqs(await collect(store.readEvents(id, { since: { seq: 5, timestamp: 0 } }))),
        [6, 7],
        'since 5',
      );
      checkEqual(
        seqs(await collect(store.readEvents(id, { since: { seq: 4, timestamp: 0 }, channel: 'progress' }))),
        [5, 7],
        'since 4 on progress',
      );
      await store.appendEvent(id, appended(8, 'progress'));
      checkEqual(
        seqs(await collect(store.readEvents(id, { since: { seq: 6, timestamp: 0 } }))),
        [7, 8],
        'since 6 after a new append',
      );
    },
  },
  {
    id: 'appends-during-prune',
    title:
      'events appended while their agent is being pruned are all kept, in order, and read back with since',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const id = ctx.agentId('live');
      await saveAgent(
        store,
        id,
        'tpl',
        [1, 2, 3, 4, 5].map((seq) => [seq, 'progress'] as [number, AgentChannel]),
        0,
      );
      const at = await boundary(ctx);
      // Fired without awaiting, as the SDK does, before and after the prune starts.
      const early = [6, 7, 8].map((seq) => store.appendEvent(id, appended(seq, 'monitor')));
      const pruned = store.prune({ prefix: id, events: { olderThan: at } });
      const late = Array.from({ length: 20 }, (_, i) => store.appendEvent(id, appended(9 + i, 'progress')));
      const result = await pruned;
      await Promise.all([...early, ...late]);
      checkEqual(result.events, 5, 'events removed (those appended before the date)');
      const kept = Array.from({ length: 23 }, (_, i) => 6 + i);
      checkEqual(seqs(await collect(store.readEvents(id))), kept, 'every event appended during the prune');
      checkEqual(
        seqs(await collect(store.readEvents(id, { since: { seq: 20, timestamp: 0 } }))),
        kept.filter((seq) => seq > 20),
        'since 20',
      );
      await store.appendEvent(id, appended(29, 'control'));
      checkEqual(
        seqs(await collect(store.readEvents(id, { since: { seq: 27, timestamp: 0 } }))),
        [28, 29],
        'a later append comes after them',
      );
    },
  },
  {
    id: 'interrupt-and-rerun',
    title: 'a prune stopped by its signal keeps what it did, and running it again finishes the work',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const base = ctx.agentId('stop');
      const ids = [`${base}-1`, `${base}-2`, `${base}-3`];
      for (const id of ids) await saveAgent(store, id, 'tpl', [[1, 'progress']], 0);
      const at = await boundary(ctx);
      const controller = new AbortController();
      const reason = new Error('stop here');
      const error = await store
        .prune(
          { prefix: base, inactiveBefore: at },
          {
            batchSize: 1,
            onProgress: (p) => {
              if (p.phase === 'removed' && p.removed.agents === 1) controller.abort(reason);
            },
            signal: controller.signal,
          },
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      check(error !== undefined, 'the stopped prune resolved');
      checkEqual(
        (error as { cause?: unknown }).cause === reason,
        true,
        'the error carries the signal reason as cause',
      );
      checkEqual(await store.exists(ids[0] as string), false, 'the agent removed before the stop');
      checkEqual(await store.exists(ids[1] as string), true, 'an agent after the stop');
      const rest = await store.prune({ prefix: base, inactiveBefore: at });
      checkEqual(rest.agents, 2, 'agents removed by the second run');
      checkEqual(await store.list(base), [], 'agents left');
    },
  },
  {
    id: 'bad-policy',
    title: 'prune refuses a malformed policy with a ValidationError and removes nothing',
    unsupported,
    run: async (ctx) => {
      const store = pruning(ctx);
      const id = ctx.agentId('bad');
      await saveAgent(store, id, 'tpl', [[1, 'progress']], 1);
      const bad: unknown[] = [
        null,
        { inactiveBefore: 'yesterday' },
        { inactiveBefore: Number.NaN },
        { events: {} },
        { events: { keepNewest: -1 } },
        { events: { keepNewest: 1.5 } },
        { events: { olderThan: 1, channels: [] } },
        { events: { olderThan: 1, channels: [1] } },
        { snapshots: {} },
        { prefix: 7 },
        { templateId: 7 },
      ];
      for (const policy of bad) {
        await checkRejects(
          () => store.prune(policy as PrunePolicy),
          'KODE_VALIDATION',
          `prune(${JSON.stringify(policy)})`,
        );
      }
      await checkRejects(
        () => store.prune({ prefix: id }, { batchSize: 0 }),
        'KODE_VALIDATION',
        'batchSize 0',
      );
      check(await store.exists(id), 'the agent is still there');
    },
  },
]);
