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

/**
 * Reads after a full collection and prints the output line: `read` returns
 * how many events it read, calling `sample` after each one it hands out
 * (the raw baseline's read, whose memory is not measured, calls it never).
 */
async function measure(read: (sample: () => void) => Promise<number>): Promise<void> {
  collectGarbage();
  const before = process.memoryUsage();
  let peakRssBytes = before.rss;
  let peakHeapBytes = before.heapUsed;
  let sampled = 0;
  const sample = () => {
    sampled++;
    if (sampled % SAMPLE_RSS_EVERY === 0) peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
    if (sampled % SAMPLE_HEAP_EVERY === 0)
      peakHeapBytes = Math.max(peakHeapBytes, process.memoryUsage().heapUsed);
  };
  const started = performance.now();
  const events = await read(sample);
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
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '') as EventMemoryChildInput;
  const raw = input.raw;
  if (raw) {
    const events = openRawEvents(raw.location);
    try {
      if (input.warmupEvents > 0) await events.readStreaming(input.agentId, raw.pageSize, input.warmupEvents);
      await measure(() => events.readStreaming(input.agentId, raw.pageSize));
    } finally {
      await events.close();
    }
    return;
  }
  const store = openStore(input.location);
  try {
    let warmed = 0;
    for await (const _ of store.readEvents(input.agentId)) {
      if (++warmed >= input.warmupEvents) break;
    }
    await measure(async (sample) => {
      let events = 0;
      for await (const _ of store.readEvents(input.agentId)) {
        events++;
        sample();
      }
      return events;
    });
  } finally {
    await store.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
