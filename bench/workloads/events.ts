import type { ReadEventsOptions, Timeline } from '../../src/types.js';
import type { BenchStore } from '../backends.js';
import type { Measurement } from '../bench-result.js';
import { timelines } from '../data.js';
import { medianOfRuns, timeMs } from '../measure.js';
import type { RawEventFilter } from '../raw/raw-baseline.js';
import { runAgentId, type Workload, withFreshBackend } from '../workload.js';

/**
 * (b) The event stream. The SDK fires `appendEvent` without awaiting it,
 * hundreds per step: a store must batch them (the raw baseline here is one
 * transaction holding every event, the physical limit). Awaited one by one,
 * each append is a durable commit (baseline: one autocommit per event at the
 * same durability). Then three reads of the full stream written in flight:
 * all of it, since the middle seq, and one channel.
 */

async function countEvents(store: BenchStore, agentId: string, options: ReadEventsOptions): Promise<number> {
  let count = 0;
  for await (const _ of store.readEvents(agentId, options)) count++;
  return count;
}

const READS: ReadonlyArray<{ name: string; filter: (total: number) => RawEventFilter }> = [
  { name: 'readEvents full', filter: () => ({}) },
  { name: 'readEvents since the middle', filter: (total) => ({ sinceSeq: Math.floor(total / 2) - 1 }) },
  { name: 'readEvents one channel (progress)', filter: () => ({ channel: 'progress' }) },
];

export const eventsWorkload: Workload = {
  id: 'b-events',
  title: 'events: appendEvent in flight / awaited, then readEvents',
  touchesEvents: true,
  async run(context) {
    const { inFlight, awaitedPerRun } = context.profile.events;
    const burst: Timeline[] = timelines(inFlight);
    const awaited: Timeline[] = timelines(awaitedPerRun);

    return withFreshBackend(context, 'events', async ({ store, raw }) => {
      const rawEvents = raw?.events;
      const eventsLabel = raw?.eventsLabel ?? raw?.label;
      const results: Measurement[] = [];

      context.phase('appends in flight');
      const inFlightRates = await medianOfRuns(
        context.profile.runs,
        {
          store: async (run) => {
            const agentId = runAgentId('events-burst', 'store', run);
            const events = run < 0 ? burst.slice(0, Math.ceil(burst.length / 10)) : burst;
            const ms = await timeMs(() =>
              Promise.all(events.map((entry) => store.appendEvent(agentId, entry))),
            );
            return { rate: (events.length / ms) * 1000 };
          },
          raw: rawEvents
            ? async (run) => {
                const agentId = runAgentId('events-burst', 'raw', run);
                const events = run < 0 ? burst.slice(0, Math.ceil(burst.length / 10)) : burst;
                const ms = await timeMs(() => rawEvents.appendAllAtOnce(agentId, events));
                return { rate: (events.length / ms) * 1000 };
              }
            : undefined,
        },
        (run) => context.phase(`${inFlight} appends in flight, ${run < 0 ? 'warm-up' : `run ${run + 1}`}`),
      );
      results.push({
        metric: `appendEvent × ${inFlight} in flight`,
        value: inFlightRates.store!.rate!,
        unit: 'events/s',
        raw: inFlightRates.raw?.rate ?? null,
        target: { kind: 'ratio-min', limit: 0.5 },
        note: `raw: every event in one transaction (${eventsLabel ?? 'none'})`,
      });

      const awaitedRates = await medianOfRuns(
        context.profile.runs,
        {
          store: async (run) => {
            const agentId = runAgentId('events-awaited', 'store', run);
            const events = run < 0 ? awaited.slice(0, Math.ceil(awaited.length / 10)) : awaited;
            const ms = await timeMs(async () => {
              for (const entry of events) await store.appendEvent(agentId, entry);
            });
            return { rate: (events.length / ms) * 1000 };
          },
          raw: rawEvents
            ? async (run) => {
                const agentId = runAgentId('events-awaited', 'raw', run);
                const events = run < 0 ? awaited.slice(0, Math.ceil(awaited.length / 10)) : awaited;
                const ms = await timeMs(async () => {
                  for (const entry of events) await rawEvents.appendOne(agentId, entry);
                });
                return { rate: (events.length / ms) * 1000 };
              }
            : undefined,
        },
        (run) => context.phase(`${awaitedPerRun} awaited appends, ${run < 0 ? 'warm-up' : `run ${run + 1}`}`),
      );
      results.push({
        metric: `appendEvent awaited one by one (${context.profile.runs} × ${awaitedPerRun})`,
        value: awaitedRates.store!.rate!,
        unit: 'events/s',
        raw: awaitedRates.raw?.rate ?? null,
        target: { kind: 'ratio-min', limit: 0.5 },
        note: `raw: one commit per event at the same durability (${eventsLabel ?? 'none'})`,
      });

      // Reads go over the last measured in-flight stream (every agent above holds one full burst).
      const storeAgent = runAgentId('events-burst', 'store', context.profile.runs - 1);
      const rawAgent = runAgentId('events-burst', 'raw', context.profile.runs - 1);
      for (const read of READS) {
        const filter = read.filter(inFlight);
        const options: ReadEventsOptions = {
          ...(filter.sinceSeq === undefined ? {} : { since: { seq: filter.sinceSeq, timestamp: 0 } }),
          ...(filter.channel === undefined ? {} : { channel: filter.channel }),
        };
        let matched = 0;
        const times = await medianOfRuns(
          context.profile.events.readRuns,
          {
            store: async () => ({
              ms: await timeMs(async () => {
                matched = await countEvents(store, storeAgent, options);
              }),
            }),
            raw: rawEvents
              ? async () => ({ ms: await timeMs(() => rawEvents.read(rawAgent, filter)) })
              : undefined,
          },
          (run) => context.phase(`${read.name}, ${run < 0 ? 'warm-up' : `run ${run + 1}`}`),
        );
        results.push({
          metric: read.name,
          value: times.store!.ms!,
          unit: 'ms',
          raw: times.raw?.ms ?? null,
          target: { kind: 'ratio-max', limit: 1.5 },
          note: `${matched} of ${inFlight} events`,
        });
      }
      return results;
    });
  },
};
