/**
 * Child process for the FileEventLog descriptor tests: many agents append at
 * once (un-awaited, as the SDK does), some of them read meanwhile, and the
 * process reports what it saw as one JSON line on stdout: appends
 * acknowledged, failures by error code, the most descriptors under the base
 * directory it ever saw open, those still open after `close()`, and those
 * Node closed on garbage collection (both: a handle leaked on an error path). Started by the test under a low `ulimit -n`.
 *
 * Usage: node --import tsx test/child/file-event-log-fleet.ts '<json config>'
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { FileEventLog } from '../../src/hybrid/file-event-log.js';
import { encodeJson } from '../../src/json-codec.js';
import type { Timeline } from '../../src/types.js';

export interface FleetConfig {
  baseDir: string;
  agents: number;
  eventsPerAgent: number;
  /** Passed to FileEventLog; absent for the default. */
  maxOpenFiles?: number;
  /** Passed to FileEventLog (default false here: the test is about descriptors, not durability). */
  fsync?: boolean;
  /** Every n-th agent also reads its events while the appends run (0: no reads). */
  readEvery: number;
}

export interface FleetReport {
  acknowledged: number;
  failures: Record<string, number>;
  firstFailure?: string;
  readsCompleted: number;
  readFailures: number;
  peakOpenUnderBaseDir: number;
  openUnderBaseDirAfterClose: number;
  closedOnGarbageCollection: number;
}

/** The event agent `agent` appends at `index`; the test reads both back from `event.delta`. */
export function fleetEvent(agent: number, index: number): Timeline {
  const bookmark = { seq: index, timestamp: 1_795_361_537_000 + index };
  return {
    cursor: index,
    bookmark,
    event: { channel: 'progress', type: 'text_chunk', step: 1, delta: `${agent}:${index}`, bookmark },
  } as Timeline;
}

export const fleetAgentId = (agent: number) => `fleet-${agent}`;

/** Descriptors of this process open on paths under `dir`; 0 when none is left to list them with. */
function openUnder(dir: string): number {
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return 0; // EMFILE: the log under test used them all (it then also fails appends, which are counted)
  }
  let count = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) count++;
    } catch {
      // closed while we looked
    }
  }
  return count;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as FleetConfig;
  let closedOnGarbageCollection = 0;
  process.on('warning', (warning) => {
    if (/closing file descriptor .* on garbage collection/i.test(warning.message))
      closedOnGarbageCollection++;
  });
  const log = new FileEventLog({
    baseDir: config.baseDir,
    fsync: config.fsync ?? false,
    ...(config.maxOpenFiles === undefined ? {} : { maxOpenFiles: config.maxOpenFiles }),
  });
  const report: FleetReport = {
    acknowledged: 0,
    failures: {},
    readsCompleted: 0,
    readFailures: 0,
    peakOpenUnderBaseDir: 0,
    openUnderBaseDirAfterClose: 0,
    closedOnGarbageCollection: 0,
  };
  const look = () => {
    report.peakOpenUnderBaseDir = Math.max(report.peakOpenUnderBaseDir, openUnder(config.baseDir));
  };
  let running = true;
  const sampler = (async () => {
    while (running) {
      look();
      await new Promise((next) => setImmediate(next));
    }
  })();
  const work: Promise<unknown>[] = [];
  for (let index = 0; index < config.eventsPerAgent; index++) {
    for (let agent = 0; agent < config.agents; agent++) {
      const line = encodeJson(fleetEvent(agent, index), 'event');
      work.push(
        log.append(fleetAgentId(agent), line).then(
          () => {
            report.acknowledged++;
            if (report.acknowledged % 97 === 0) look();
          },
          (error: { code?: string; message?: string }) => {
            const code = error.code ?? 'none';
            report.failures[code] = (report.failures[code] ?? 0) + 1;
            report.firstFailure ??= error.message;
          },
        ),
      );
    }
  }
  if (config.readEvery > 0) {
    for (let agent = 0; agent < config.agents; agent += config.readEvery) {
      work.push(
        (async () => {
          for await (const _ of log.read(fleetAgentId(agent))) look();
          report.readsCompleted++;
        })().catch(() => {
          report.readFailures++;
        }),
      );
    }
  }
  await Promise.all(work);
  running = false;
  await sampler;
  await log.close();
  // A handle dropped without close() is either still open here, or was
  // closed by the garbage collector meanwhile, with a warning.
  report.openUnderBaseDirAfterClose = openUnder(config.baseDir);
  report.closedOnGarbageCollection = closedOnGarbageCollection;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

// The test imports this module for fleetEvent; only a run as a script starts the fleet.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
