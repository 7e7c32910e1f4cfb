import { openRawEvents, openStore, type StoreLocation } from '../backends.js';
import type { RawEventsLocation } from '../raw/raw-baseline.js';

/**
 * The child process of workload (h): opens the store over the data the
 * parent wrote, then reads the whole stream with `readEvents` while sampling
 * its own resident set size. A process of its own, so that nothing the parent
 * allocated counts. Given a raw baseline instead, it times that baseline's
 * streaming read of the same stream: the two times are then taken in like
 * processes (the parent's heap, full of what it wrote, slows a read there by
 * more than the difference being measured).
 *
 * Usage: node --expose-gc --import tsx bench/workloads/event-memory-child.ts '<json EventMemoryChildInput>'
 * Prints one JSON line (`EventMemoryChildOutput`) on stdout.
 */

export interface EventMemoryChildInput {
  location: StoreLocation;
  /** Read this raw baseline (pages of `pageSize` rows where it pages) instead of the store; time only. */
  raw?: { location: RawEventsLocation; pageSize: number };
  agentId: string;
  /** Events read before the baseline is taken, so that opening and JIT do not count as growth. */
  warmupEvents: number;
}

export interface EventMemoryChildOutput {
  events: number;
  readMs: number;
  rssBeforeBytes: number;
  peakRssBytes: number;
  /** The V8 heap in use before the read and at its highest sample: tells garbage from other memory. */
  heapBeforeBytes: number;
  peakHeapBytes: number;
}

/** How often the reader samples its RSS (cheap) and its heap (a little less cheap). */
const SAMPLE_RSS_EVERY = 500;
const SAMPLE_HEAP_EVERY = 10_000;

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

/** Times the raw baseline's streaming read; its memory is not what the workload measures. */
async function readRaw(input: EventMemoryChildInput, raw: NonNullable<EventMemoryChildInput['raw']>) {
  const events = openRawEvents(raw.location);
  try {
    if (input.warmupEvents > 0) await events.readStreaming(input.agentId, raw.pageSize, input.warmupEvents);
    collectGarbage();
    const before = process.memoryUsage();
    const started = performance.now();
    const count = await events.readStreaming(input.agentId, raw.pageSize);
    const readMs = performance.now() - started;
    const after = process.memoryUsage();
    const output: EventMemoryChildOutput = {
      events: count,
      readMs,
      rssBeforeBytes: before.rss,
      peakRssBytes: after.rss,
      heapBeforeBytes: before.heapUsed,
      peakHeapBytes: after.heapUsed,
    };
    process.stdout.write(`${JSON.stringify(output)}\n`);
  } finally {
    await events.close();
  }
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '') as EventMemoryChildInput;
  if (input.raw) return readRaw(input, input.raw);
  const store = openStore(input.location);
  try {
    let warmed = 0;
    for await (const _ of store.readEvents(input.agentId)) {
      if (++warmed >= input.warmupEvents) break;
    }
    collectGarbage();
    const before = process.memoryUsage();
    let peakRssBytes = before.rss;
    let peakHeapBytes = before.heapUsed;
    let events = 0;
    const started = performance.now();
    for await (const _ of store.readEvents(input.agentId)) {
      events++;
      if (events % SAMPLE_RSS_EVERY === 0) peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
      if (events % SAMPLE_HEAP_EVERY === 0)
        peakHeapBytes = Math.max(peakHeapBytes, process.memoryUsage().heapUsed);
    }
    const readMs = performance.now() - started;
    const after = process.memoryUsage();
    const output: EventMemoryChildOutput = {
      events,
      readMs,
      rssBeforeBytes: before.rss,
      peakRssBytes: Math.max(peakRssBytes, after.rss),
      heapBeforeBytes: before.heapUsed,
      peakHeapBytes: Math.max(peakHeapBytes, after.heapUsed),
    };
    process.stdout.write(`${JSON.stringify(output)}\n`);
  } finally {
    await store.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
