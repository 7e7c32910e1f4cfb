import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Measurement } from '../bench-result.js';
import { textChunkTimeline } from '../data.js';
import { median } from '../measure.js';
import { type Workload, withFreshBackend } from '../workload.js';
import type { EventMemoryChildInput, EventMemoryChildOutput } from './event-memory-child.js';

/**
 * (h) Streaming: `readEvents` over a very long stream must page through the
 * backend, never hold the stream in memory, whatever the size of the events
 * (pages are bounded by bytes as well as by count). The stream is written through
 * the store, then read by fresh child processes (one per run) that sample
 * their own RSS; the figure is the peak growth over the RSS before the read.
 * The same stream is written to the raw baseline, whose streaming read (rows
 * stepped one by one on SQLite, keyset pages on PostgreSQL, file chunks in
 * hybrid mode) gives the time per event to compare with, read by child
 * processes of the same kind (its memory is not what is measured).
 */

const CHILD = fileURLToPath(new URL('./event-memory-child.ts', import.meta.url));
/** The repository root: `--import tsx` resolves from the working directory. */
const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
const POPULATE_CHUNK = 10_000;
/** Rows per page of the raw PostgreSQL read (about 1.5 MB of 1.5 KB events). */
const RAW_PAGE_ROWS = 1_000;
const MIB = 1024 * 1024;

function runChild(input: EventMemoryChildInput): Promise<EventMemoryChildOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, JSON.stringify(input)], {
      cwd: REPOSITORY,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || line === '') {
        reject(new Error(`the reader process exited with ${code}: ${stderr.trim() || stdout.trim()}`));
        return;
      }
      resolve(JSON.parse(line) as EventMemoryChildOutput);
    });
  });
}

export const eventMemoryWorkload: Workload = {
  id: 'h-event-memory',
  title: 'readEvents over a very long stream: peak RSS growth',
  touchesEvents: true,
  async run(context) {
    const { events: total, eventBytes } = context.profile.eventMemory;
    const size = eventBytes >= 1024 ? `${(eventBytes / 1024).toFixed(1)} KB` : `${eventBytes} bytes`;
    const agentId = 'long-stream';

    if (context.backend.family === 'memory') {
      return {
        skipped:
          'MemoryStore keeps the whole stream in the heap of the process that wrote it: there is nothing to page through',
      };
    }
    return withFreshBackend(context, 'event_memory', async ({ store, location, raw }) => {
      const rawEvents = raw?.events;
      for (let from = 0; from < total; from += POPULATE_CHUNK) {
        if (from % 100_000 === 0) context.phase(`appending ${total} events: ${from}`);
        const count = Math.min(POPULATE_CHUNK, total - from);
        const chunk = Array.from({ length: count }, (_, i) => textChunkTimeline(from + i, eventBytes));
        await Promise.all(chunk.map((entry) => store.appendEvent(agentId, entry)));
        await rawEvents?.appendAllAtOnce(agentId, chunk);
      }
      // The readers open the data on their own.
      await store.close();
      const outputs: EventMemoryChildOutput[] = [];
      for (let run = 0; run < context.profile.runs; run++) {
        context.phase(`reading ${total} events in a child process, run ${run + 1}/${context.profile.runs}`);
        const output = await runChild({ location, agentId, warmupEvents: Math.min(1000, total) });
        if (output.events !== total) {
          throw new Error(`readEvents yielded ${output.events} events, ${total} were appended`);
        }
        outputs.push(output);
      }
      const rawReadMs: number[] = [];
      const rawLocation = raw?.eventsLocation;
      if (rawEvents && rawLocation) {
        for (let run = 0; run < context.profile.runs; run++) {
          context.phase(
            `reading ${total} raw events in a child process, run ${run + 1}/${context.profile.runs}`,
          );
          const output = await runChild({
            location,
            raw: { location: rawLocation, pageSize: RAW_PAGE_ROWS },
            agentId,
            warmupEvents: Math.min(1000, total),
          });
          if (output.events !== total) {
            throw new Error(`the raw read found ${output.events} events, ${total} were appended`);
          }
          rawReadMs.push(output.readMs);
        }
      }
      const perEventUs = (ms: number) => (ms * 1000) / total;
      const results: Measurement[] = [
        {
          metric: `peak RSS growth reading ${total} events of ~${size}`,
          value: median(outputs.map((o) => (o.peakRssBytes - o.rssBeforeBytes) / MIB)),
          unit: 'MiB',
          target: { kind: 'max', limit: 64, unit: 'MiB' },
          note:
            `RSS before the read ${median(outputs.map((o) => o.rssBeforeBytes / MIB)).toFixed(0)} MiB; ` +
            `V8 heap growth ${median(outputs.map((o) => (o.peakHeapBytes - o.heapBeforeBytes) / MIB)).toFixed(1)} MiB`,
        },
        {
          metric: `readEvents rate over ${total} events of ~${size}`,
          value: median(outputs.map((o) => (o.events / o.readMs) * 1000)),
          unit: 'events/s',
        },
        {
          metric: `readEvents time per event over ${total} events of ~${size}`,
          value: median(outputs.map((o) => perEventUs(o.readMs))),
          unit: 'µs',
          raw: rawReadMs.length > 0 ? perEventUs(median(rawReadMs)) : null,
          target: { kind: 'ratio-max', limit: 1.5 },
          note: `raw: ${raw?.eventsLabel ?? raw?.label ?? 'none'}, read streaming (${
            context.backend.hybrid
              ? 'the file in 256 KiB chunks'
              : context.backend.family === 'postgres'
                ? `keyset pages of ${RAW_PAGE_ROWS} rows`
                : 'statement.iterate(), row by row'
          }) in a child process like the store's`,
        },
      ];
      return results;
    });
  },
};
