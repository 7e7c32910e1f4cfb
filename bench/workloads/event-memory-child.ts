import { openStore, type StoreLocation } from '../backends.js';
import { timelines } from '../data.js';

/**
 * The child process of workload (h): opens the store over data the parent
 * wrote (or, for the in-memory store, writes it first), then reads the
 * whole stream with `readEvents` while sampling its own resident set size.
 * A process of its own, so that nothing the parent allocated counts.
 *
 * Usage: node --expose-gc --import tsx bench/workloads/event-memory-child.ts '<json EventMemoryChildInput>'
 * Prints one JSON line (`EventMemoryChildOutput`) on stdout.
 */

export interface EventMemoryChildInput {
  location: StoreLocation;
  agentId: string;
  /** Events to append first (only for a store whose data lives in this process). */
  populate?: number;
  /** Events read before the baseline is taken, so that opening and JIT do not count as growth. */
  warmupEvents: number;
}

export interface EventMemoryChildOutput {
  events: number;
  readMs: number;
  rssBeforeBytes: number;
  peakRssBytes: number;
}

/** How often the reader samples its RSS. */
const SAMPLE_EVERY = 500;
const POPULATE_CHUNK = 10_000;

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '') as EventMemoryChildInput;
  const store = openStore(input.location);
  try {
    for (let from = 0; from < (input.populate ?? 0); from += POPULATE_CHUNK) {
      const chunk = timelines(Math.min(POPULATE_CHUNK, input.populate! - from), from);
      await Promise.all(chunk.map((entry) => store.appendEvent(input.agentId, entry)));
    }
    let warmed = 0;
    for await (const _ of store.readEvents(input.agentId)) {
      if (++warmed >= input.warmupEvents) break;
    }
    collectGarbage();
    const rssBeforeBytes = process.memoryUsage.rss();
    let peakRssBytes = rssBeforeBytes;
    let events = 0;
    const started = performance.now();
    for await (const _ of store.readEvents(input.agentId)) {
      if (++events % SAMPLE_EVERY === 0) {
        const rss = process.memoryUsage.rss();
        if (rss > peakRssBytes) peakRssBytes = rss;
      }
    }
    const readMs = performance.now() - started;
    peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
    const output: EventMemoryChildOutput = { events, readMs, rssBeforeBytes, peakRssBytes };
    process.stdout.write(`${JSON.stringify(output)}\n`);
  } finally {
    await store.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
