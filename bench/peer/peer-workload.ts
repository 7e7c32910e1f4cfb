import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import type { ReadEventsOptions, Timeline, ToolCallRecord } from '../../src/types.js';
import type { Measurement } from '../bench-result.js';
import { agentInfo, conversation, TEMPLATE_IDS, timelines, toolCallRecord } from '../data.js';
import { median, medianOfRuns, type RunFigures, type Subject, timeMs } from '../measure.js';
import type { RawAgentTables, RawEventLog } from '../raw/raw-baseline.js';
import { runAgentId, type Workload, type WorkloadContext } from '../workload.js';
import { openPeerSide } from './peer-backend.js';
import { loadPeerSdk, type PeerSdk, type PeerStore } from './peer-sdk.js';

/**
 * The peer comparison (issue 20): the workloads on which the SDK's own
 * stores were measured, each run four ways, interleaved run by run:
 *
 * - `ours`: the package's store for the backend, with its defaults;
 * - `peer`: the SDK's store for the same database (`SqliteStore` or
 *   `PostgresStore`, events in their `JSONStore`), with its defaults;
 * - `rawOurs`: the raw driver at our durability, writing only what changed;
 * - `rawPeer`: the raw driver at the peer's durability (bench/peer/peer-backend.ts).
 *
 * A write counts as done when its promise resolves, for every side; events
 * the SDK fires without awaiting are awaited at the end of their step.
 */

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Longer than the JSONStore's 50 ms flush timer, with room for a loaded machine. */
const JSONSTORE_SETTLE_MS = 300;

/** The stores' shape the workloads call: ours and the peer's both implement the SDK's QueryableStore. */
type AnyStore = PeerStore;

interface Sides {
  ours: AnyStore;
  peer: AnyStore;
  peerLabel: string;
  rawOurs: { tables: RawAgentTables; events: RawEventLog };
  rawPeer: { tables: RawAgentTables; events: RawEventLog };
  peerDurability: { peer: string; rawPeer: string };
}

type Side = 'ours' | 'peer' | 'rawOurs' | 'rawPeer';

let sdkLookup: ReturnType<typeof loadPeerSdk> | undefined;

/** The SDK, or why the comparison is skipped (looked up once per run). */
export function peerSdk(): ReturnType<typeof loadPeerSdk> {
  sdkLookup ??= loadPeerSdk(REPO_ROOT);
  return sdkLookup;
}

/** Opens all four sides in files and schemas of their own, runs `body`, and removes them. */
async function withSides<T>(
  context: WorkloadContext,
  sdk: PeerSdk,
  label: string,
  body: (sides: Sides) => Promise<T>,
): Promise<T> {
  const opened = await context.backend.open(`peer_${label}`);
  try {
    const peerSide = await openPeerSide(context.backend, sdk, context.workspace, label);
    try {
      const { tables, events } = opened.raw ?? {};
      if (!tables || !events) throw new Error(`${context.backend.name} has no raw baseline`);
      return await body({
        ours: opened.store as unknown as AnyStore,
        peer: peerSide.store,
        peerLabel: peerSide.label,
        rawOurs: { tables, events },
        rawPeer: peerSide.raw,
        peerDurability: peerSide.durability,
      });
    } finally {
      await peerSide.dispose();
    }
  } finally {
    await opened.dispose();
  }
}

/** A measurement from the four sides' medians of `figure`. */
function row(
  sides: Sides,
  figures: Record<Side, RunFigures | undefined>,
  figure: string,
  m: Omit<Measurement, 'value' | 'raw' | 'peer' | 'peerDurability'>,
): Measurement {
  return {
    ...m,
    value: figures.ours![figure]!,
    raw: figures.rawOurs?.[figure] ?? null,
    peer: {
      store: sides.peerLabel,
      value: figures.peer![figure]!,
      rawAtPeerDurability: figures.rawPeer?.[figure] ?? null,
    },
    peerDurability: sides.peerDurability,
  };
}

/**
 * The records with ids of the agent's own: the peer's tool-call tables key
 * records by id alone (ids from the model are unique), so agents cannot share them.
 */
function ownRecords(agentId: string, records: readonly ToolCallRecord[]): ToolCallRecord[] {
  return records.map((record) => ({ ...record, id: `${agentId}:${record.id}` }));
}

/** Runs of a figure that takes milliseconds: at least 5 for a steady median, but one in a quick run. */
function cheapRuns(context: WorkloadContext): number {
  const { runs } = context.profile.peer;
  return runs > 1 ? Math.max(5, runs) : runs;
}

function phaseOf(
  context: WorkloadContext,
  what: string,
  runs = context.profile.peer.runs,
): (run: number) => void {
  return (run) => context.phase(`${what}, ${run < 0 ? 'warm-up' : `run ${run + 1}/${runs}`}`);
}

/**
 * A conversation as the SDK persists a step: events fired without awaiting,
 * then `saveMessages` of every message so far, `saveToolCallRecords` of every
 * record so far, `saveInfo`. The raw sides write the step's two messages,
 * its tool call and the info row in one transaction, and its events in one
 * append, each at their durability.
 */
async function conversationRows(context: WorkloadContext, sides: Sides): Promise<Measurement[]> {
  const { steps, warmupSteps, eventsPerStep } = context.profile.peer;
  const messages = conversation(steps * 2);
  const records: ToolCallRecord[] = Array.from({ length: steps }, (_, i) => toolCallRecord(i));
  const events: Timeline[] = timelines(steps * eventsPerStep);
  const stepsOf = (run: number) => (run < 0 ? warmupSteps : steps);
  const eventsOf = (step: number) => events.slice((step - 1) * eventsPerStep, step * eventsPerStep);
  const figures = (stepMs: number[]): RunFigures => ({
    totalMs: stepMs.reduce((sum, ms) => sum + ms, 0),
    lastMs: stepMs.slice(-10).reduce((sum, ms) => sum + ms, 0),
  });
  const viaStore =
    (store: AnyStore, side: Side): Subject =>
    async (run) => {
      const agentId = runAgentId('peer-conv', side, run);
      const calls = ownRecords(agentId, records);
      // The SDK saves an agent's info when it creates it, before any message (the peer's tables need the row).
      await store.saveInfo(agentId, agentInfo(agentId));
      const stepMs: number[] = [];
      for (let step = 1; step <= stepsOf(run); step++) {
        const info = agentInfo(agentId, { messageCount: step * 2, seq: step * eventsPerStep });
        const started = performance.now();
        const appended = eventsOf(step).map((entry) => store.appendEvent(agentId, entry));
        await store.saveMessages(agentId, messages.slice(0, step * 2));
        await store.saveToolCallRecords(agentId, calls.slice(0, step));
        await store.saveInfo(agentId, info);
        await Promise.all(appended);
        stepMs.push(performance.now() - started);
      }
      return figures(stepMs);
    };
  const viaRaw =
    (raw: Sides['rawOurs'], side: Side): Subject =>
    async (run) => {
      const agentId = runAgentId('peer-conv', side, run);
      const calls = ownRecords(agentId, records);
      await raw.tables.upsertInfo(agentId, agentInfo(agentId));
      const stepMs: number[] = [];
      for (let step = 1; step <= stepsOf(run); step++) {
        const info = agentInfo(agentId, { messageCount: step * 2, seq: step * eventsPerStep });
        const started = performance.now();
        await Promise.all([
          raw.events.appendAllAtOnce(agentId, eventsOf(step)),
          raw.tables.appendStep(agentId, {
            firstPosition: step * 2 - 2,
            messages: messages.slice(step * 2 - 2, step * 2),
            info,
            toolCalls: { firstPosition: step - 1, records: calls.slice(step - 1, step) },
          }),
        ]);
        stepMs.push(performance.now() - started);
      }
      return figures(stepMs);
    };
  const result = await medianOfRuns(
    context.profile.peer.runs,
    {
      ours: viaStore(sides.ours, 'ours'),
      peer: viaStore(sides.peer, 'peer'),
      rawOurs: viaRaw(sides.rawOurs, 'rawOurs'),
      rawPeer: viaRaw(sides.rawPeer, 'rawPeer'),
    },
    phaseOf(context, `conversation of ${steps} steps`),
  );
  const what = `saveMessages(all) + saveToolCallRecords(all) + saveInfo + ${eventsPerStep} events`;
  return [
    row(sides, result, 'totalMs', {
      metric: `conversation, ${steps} steps, total`,
      unit: 'ms',
      note: `per step: ${what}; raw: the step's 2 messages, its tool call and the info row in one transaction, its events in one append`,
    }),
    row(sides, result, 'lastMs', {
      metric: `conversation, last ${Math.min(10, steps)} of ${steps} steps`,
      unit: 'ms',
    }),
  ];
}

/** Tool-call records saved as the SDK does: the whole list after each change, growing by `perCall`. */
async function toolCallRows(context: WorkloadContext, sides: Sides): Promise<Measurement[]> {
  const { calls, perCall } = context.profile.peer.toolCalls;
  const all = Array.from({ length: calls * perCall }, (_, i) => toolCallRecord(i));
  const callsOf = (run: number) => (run < 0 ? Math.min(calls, 3) : calls);
  const viaStore =
    (store: AnyStore, side: Side): Subject =>
    async (run) => {
      const agentId = runAgentId('peer-tools', side, run);
      const calls = ownRecords(agentId, all);
      await store.saveInfo(agentId, agentInfo(agentId));
      let totalMs = 0;
      for (let k = 1; k <= callsOf(run); k++) {
        const list = calls.slice(0, k * perCall);
        totalMs += await timeMs(() => store.saveToolCallRecords(agentId, list));
      }
      return { totalMs };
    };
  const viaRaw =
    (tables: RawAgentTables, side: Side): Subject =>
    async (run) => {
      const agentId = runAgentId('peer-tools', side, run);
      const calls = ownRecords(agentId, all);
      await tables.upsertInfo(agentId, agentInfo(agentId));
      let totalMs = 0;
      for (let k = 1; k <= callsOf(run); k++) {
        const fresh = calls.slice((k - 1) * perCall, k * perCall);
        totalMs += await timeMs(() => tables.upsertToolCalls(agentId, (k - 1) * perCall, fresh));
      }
      return { totalMs };
    };
  const result = await medianOfRuns(
    context.profile.peer.runs,
    {
      ours: viaStore(sides.ours, 'ours'),
      peer: viaStore(sides.peer, 'peer'),
      rawOurs: viaRaw(sides.rawOurs.tables, 'rawOurs'),
      rawPeer: viaRaw(sides.rawPeer.tables, 'rawPeer'),
    },
    phaseOf(context, 'tool-call saves'),
  );
  return [
    row(sides, result, 'totalMs', {
      metric: `saveToolCallRecords growing to ${calls * perCall} over ${calls} saves, total`,
      unit: 'ms',
      note: 'raw: only the new records, one transaction per save',
    }),
  ];
}

/** The first `saveMessages` of a long conversation (an agent resumed from elsewhere, or imported). */
async function firstSaveRows(context: WorkloadContext, sides: Sides): Promise<Measurement[]> {
  const count = context.profile.peer.firstSaveMessages;
  const messages = conversation(count);
  const viaStore =
    (store: AnyStore, side: Side): Subject =>
    async (run) => {
      const agentId = runAgentId('peer-first', side, run);
      await store.saveInfo(agentId, agentInfo(agentId));
      return { ms: await timeMs(() => store.saveMessages(agentId, messages)) };
    };
  const viaRaw =
    (tables: RawAgentTables, side: Side): Subject =>
    async (run) => {
      const agentId = runAgentId('peer-first', side, run);
      await tables.upsertInfo(agentId, agentInfo(agentId));
      return { ms: await timeMs(() => tables.insertMessages(agentId, 0, messages)) };
    };
  const result = await medianOfRuns(
    cheapRuns(context),
    {
      ours: viaStore(sides.ours, 'ours'),
      peer: viaStore(sides.peer, 'peer'),
      rawOurs: viaRaw(sides.rawOurs.tables, 'rawOurs'),
      rawPeer: viaRaw(sides.rawPeer.tables, 'rawPeer'),
    },
    phaseOf(context, `first save of ${count} messages`, cheapRuns(context)),
  );
  return [
    row(sides, result, 'ms', {
      metric: `first saveMessages of ${count} messages`,
      unit: 'ms',
      note: 'raw: every row in one transaction',
    }),
  ];
}

async function countEvents(store: AnyStore, agentId: string, options: ReadEventsOptions): Promise<number> {
  let count = 0;
  for await (const _ of store.readEvents(agentId, options)) count++;
  return count;
}

/** Events appended one by one and awaited, then one channel read out of a longer stream. */
async function eventRows(context: WorkloadContext, sides: Sides): Promise<Measurement[]> {
  const { awaitedEvents, streamEvents } = context.profile.peer;
  const awaited = timelines(awaitedEvents);
  const awaitedOf = (run: number) => (run < 0 ? awaited.slice(0, Math.ceil(awaited.length / 10)) : awaited);
  const viaStore =
    (store: AnyStore, side: Side): Subject =>
    async (run) => {
      const agentId = runAgentId('peer-awaited', side, run);
      const events = awaitedOf(run);
      const ms = await timeMs(async () => {
        for (const entry of events) await store.appendEvent(agentId, entry);
      });
      return { rate: (events.length / ms) * 1000 };
    };
  const viaRaw =
    (log: RawEventLog, side: Side): Subject =>
    async (run) => {
      const agentId = runAgentId('peer-awaited', side, run);
      const events = awaitedOf(run);
      const ms = await timeMs(async () => {
        for (const entry of events) await log.appendOne(agentId, entry);
      });
      return { rate: (events.length / ms) * 1000 };
    };
  const rates = await medianOfRuns(
    context.profile.peer.runs,
    {
      ours: viaStore(sides.ours, 'ours'),
      peer: viaStore(sides.peer, 'peer'),
      rawOurs: viaRaw(sides.rawOurs.events, 'rawOurs'),
      rawPeer: viaRaw(sides.rawPeer.events, 'rawPeer'),
    },
    phaseOf(context, `${awaitedEvents} awaited appends`),
  );
  const results: Measurement[] = [
    row(sides, rates, 'rate', {
      metric: `appendEvent awaited one by one (${context.profile.peer.runs} × ${awaitedEvents})`,
      unit: 'events/s',
      note: 'raw: one commit or one write per event, at each side’s durability',
    }),
  ];

  // The stream is written untimed. The JSONStore rewrites a channel's whole
  // unflushed buffer to its .wal file on every append, so the peer is fed in
  // small batches; ours takes the whole stream in flight, as the SDK sends it.
  context.phase(`writing ${streamEvents} events`);
  const stream = timelines(streamEvents);
  const agentId = 'peer-stream';
  await Promise.all(stream.map((entry) => sides.ours.appendEvent(agentId, entry)));
  for (let i = 0; i < stream.length; i += 20) {
    await Promise.all(stream.slice(i, i + 20).map((entry) => sides.peer.appendEvent(agentId, entry)));
  }
  // The JSONStore's timer flush and a read's own flush can append the same buffered events
  // twice when they overlap (seen here: 6,556 events read back of 6,487 written); letting the
  // timer's flush finish first keeps the peer's read to the events written.
  await sleep(JSONSTORE_SETTLE_MS);
  await sides.rawOurs.events.appendAllAtOnce(agentId, stream);
  await sides.rawPeer.events.appendAllAtOnce(agentId, stream);
  let matched = 0;
  let peerMatched = 0;
  const reads = await medianOfRuns(
    cheapRuns(context),
    {
      ours: async () => ({
        ms: await timeMs(async () => {
          matched = await countEvents(sides.ours, agentId, { channel: 'progress' });
        }),
      }),
      peer: async () => ({
        ms: await timeMs(async () => {
          peerMatched = await countEvents(sides.peer, agentId, { channel: 'progress' });
        }),
      }),
      rawOurs: async () => ({
        ms: await timeMs(() => sides.rawOurs.events.read(agentId, { channel: 'progress' })),
      }),
      rawPeer: async () => ({
        ms: await timeMs(() => sides.rawPeer.events.read(agentId, { channel: 'progress' })),
      }),
    },
    phaseOf(context, 'readEvents of one channel', cheapRuns(context)),
  );
  results.push(
    row(sides, reads, 'ms', {
      metric: `readEvents one channel (${matched} of ${streamEvents} events)`,
      unit: 'ms',
      note:
        'raw at the peer’s layout: a file per channel' +
        (peerMatched === matched ? '' : `; the peer read back ${peerMatched} events (some twice)`),
    }),
  );
  return results;
}

/** A fleet populated with several agents in flight, then the dashboard's page of sessions and a role query. */
async function fleetRows(context: WorkloadContext, sides: Sides): Promise<Measurement[]> {
  const { agents, pageSize, queryRepeats } = context.profile.peer;
  const perRun = Math.ceil(agents / context.profile.peer.runs);
  const messagePool = Array.from({ length: 16 }, (_, p) => conversation(20, p * 20));
  const toolPool = Array.from({ length: 16 }, (_, p) =>
    Array.from({ length: 5 }, (_, j) => toolCallRecord(p * 5 + j)),
  );
  const indicesOf = (run: number) =>
    run < 0
      ? Array.from({ length: Math.min(20, perRun) }, (_, i) => agents + i)
      : Array.from({ length: Math.min(perRun, agents - run * perRun) }, (_, i) => run * perRun + i);
  const agentOf = (index: number) => {
    const agentId = `peer-fleet-${String(index).padStart(6, '0')}`;
    const info = agentInfo(agentId, {
      templateId: TEMPLATE_IDS[index % TEMPLATE_IDS.length]!,
      messageCount: 20,
      createdAtMs: Date.UTC(2026, 0, 1) + index * 1000,
    });
    return {
      agentId,
      info,
      messages: messagePool[index % 16]!,
      toolCalls: ownRecords(agentId, toolPool[index % 16]!),
    };
  };
  const concurrency = 8;
  const viaStore =
    (store: AnyStore): Subject =>
    async (run) => {
      const indices = indicesOf(run);
      const ms = await timeMs(() =>
        pLimit(concurrency).map(indices, async (index) => {
          const { agentId, info, messages, toolCalls } = agentOf(index);
          await store.saveInfo(agentId, info);
          await store.saveMessages(agentId, messages);
          await store.saveToolCallRecords(agentId, toolCalls);
        }),
      );
      return { rate: (indices.length / ms) * 1000 };
    };
  const viaRaw =
    (tables: RawAgentTables): Subject =>
    async (run) => {
      const indices = indicesOf(run);
      const ms = await timeMs(() =>
        pLimit(concurrency).map(indices, async (index) => {
          const { agentId, info, messages, toolCalls } = agentOf(index);
          await tables.upsertInfo(agentId, info);
          await tables.insertMessages(agentId, 0, messages);
          await tables.upsertToolCalls(agentId, 0, toolCalls);
        }),
      );
      return { rate: (indices.length / ms) * 1000 };
    };
  const populate = await medianOfRuns(
    context.profile.peer.runs,
    {
      ours: viaStore(sides.ours),
      peer: viaStore(sides.peer),
      rawOurs: viaRaw(sides.rawOurs.tables),
      rawPeer: viaRaw(sides.rawPeer.tables),
    },
    phaseOf(context, `populating ${agents} agents`),
  );
  const results: Measurement[] = [
    row(sides, populate, 'rate', {
      metric: `populate ${agents} agents (info, 20 messages, 5 tool calls; ${concurrency} in flight)`,
      unit: 'agents/s',
      note: 'raw: the same 3 commits per agent',
    }),
  ];

  // The fleet's first template: the other parts' agents have the fixture's own (agentInfo's default).
  const templateId = TEMPLATE_IDS[0]!;
  const queries: Array<{ metric: string; run: (store: AnyStore) => Promise<unknown[]> }> = [
    {
      metric: `querySessions by template, first page (${pageSize})`,
      run: (store) => store.querySessions({ templateId, limit: pageSize }),
    },
    {
      metric: 'queryMessages by role, limit 100',
      run: (store) => store.queryMessages({ role: 'assistant', limit: 100 }),
    },
  ];
  for (const query of queries) {
    const times: Record<'ours' | 'peer', number[]> = { ours: [], peer: [] };
    const returned: Record<'ours' | 'peer', number> = { ours: 0, peer: 0 };
    context.phase(query.metric);
    for (let repeat = -1; repeat < queryRepeats; repeat++) {
      // Interleaved, so that a slow moment of the machine falls on both.
      for (const side of ['ours', 'peer'] as const) {
        let got = 0;
        const ms = await timeMs(async () => {
          got = (await query.run(sides[side])).length;
        });
        returned[side] = got;
        if (repeat >= 0) times[side].push(ms);
      }
    }
    if (returned.ours !== returned.peer) {
      throw new Error(`${query.metric}: ours returned ${returned.ours} rows, the peer ${returned.peer}`);
    }
    results.push({
      metric: query.metric,
      value: median(times.ours),
      unit: 'ms',
      note: `${returned.ours} returned; no raw baseline for queries`,
      peer: { store: sides.peerLabel, value: median(times.peer), rawAtPeerDurability: null },
      peerDurability: sides.peerDurability,
    });
  }
  return results;
}

export const peerWorkload: Workload = {
  id: 'peer',
  title: "peer: the SDK's own stores on the workloads they were measured on (issue 20)",
  touchesEvents: true,
  async run(context) {
    if (context.backend.family === 'memory') return { skipped: 'the SDK has no in-memory store to compare' };
    if (context.profile.name === 'quick' && context.backend.hybrid) {
      // A quick run proves the comparison works; the hybrid modes run the same code with other event storage.
      return { skipped: 'a quick run compares the database modes only' };
    }
    const lookup = peerSdk();
    if ('skipped' in lookup) return { skipped: lookup.skipped };
    const { sdk } = lookup;
    // One set of stores for every part (each part writes agents of its own): opening four
    // stores with files and schemas costs more than a quick run's measurements.
    return withSides(context, sdk, 'peer', async (sides) => [
      ...(await conversationRows(context, sides)),
      ...(await toolCallRows(context, sides)),
      ...(await firstSaveRows(context, sides)),
      ...(await eventRows(context, sides)),
      ...(await fleetRows(context, sides)),
    ]);
  },
};
