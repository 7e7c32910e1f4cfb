import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_OPEN_FILES, FileEventLog } from '../../src/hybrid/file-event-log.js';
import {
  type FleetConfig,
  type FleetReport,
  fleetAgentId,
  fleetEvent,
} from '../child/file-event-log-fleet.js';

/**
 * A fleet of agents appending to one FileEventLog at once, in a child
 * process under a low `ulimit -n`: the log's descriptor bound, and what it
 * does when the process runs out of descriptors anyway.
 */

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '..', '..');
const FLEET = join(here, '..', 'child', 'file-event-log-fleet.ts');
const hasProcFs = existsSync('/proc/self/fd');
const NO_PROC_REASON = 'needs Linux /proc/self/fd to observe descriptors';

let root: string;
let baseDir: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kode-fleet-'));
  baseDir = join(root, 'store');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** Runs the fleet child under `ulimit -n <nofile>` and returns its report. */
async function runFleet(config: FleetConfig, nofile: number): Promise<FleetReport> {
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      `ulimit -n ${nofile} && exec "$0" --import tsx "$1" "$2"`,
      process.execPath,
      FLEET,
      JSON.stringify(config),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const code = await new Promise<number | null>((done) => child.on('close', done));
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout) as FleetReport;
}

describe.skipIf(!hasProcFs)(`FileEventLog: a fleet under a low descriptor limit (${NO_PROC_REASON})`, () => {
  it('5,000 agents appending at once under ulimit -n 256: no EMFILE, every append acknowledged and stored', async () => {
    const config: FleetConfig = { baseDir, agents: 5000, eventsPerAgent: 2, readEvery: 50, fsync: true };
    const report = await runFleet(config, 256);
    expect(report.failures).toEqual({});
    expect(report.acknowledged).toBe(config.agents * config.eventsPerAgent);
    expect(report.readsCompleted).toBe(config.agents / config.readEvery);
    expect(report.peakOpenUnderBaseDir).toBeLessThanOrEqual(DEFAULT_MAX_OPEN_FILES);
    expect(report.openUnderBaseDirAfterClose).toBe(0);
    const log = new FileEventLog({ baseDir });
    expect(await log.listAgentIds()).toHaveLength(config.agents);
    for (let agent = 0; agent < config.agents; agent++) {
      expect(await collect(log.read(fleetAgentId(agent)))).toEqual([
        fleetEvent(agent, 0),
        fleetEvent(agent, 1),
      ]);
    }
    await log.close();
  }, 180_000);

  it('closes every descriptor it opened when opening fails with EMFILE, and stores exactly what it acknowledged', async () => {
    // A bound above the process limit: the log itself runs into EMFILE.
    const config: FleetConfig = {
      baseDir,
      agents: 2000,
      eventsPerAgent: 1,
      readEvery: 20,
      fsync: true,
      maxOpenFiles: 100_000,
    };
    const report = await runFleet(config, 256);
    expect(report.firstFailure).toMatch(/EMFILE/);
    expect(report.failures.none).toBeUndefined();
    expect(report.openUnderBaseDirAfterClose).toBe(0);
    expect(report.closedOnGarbageCollection).toBe(0);
    const log = new FileEventLog({ baseDir });
    let stored = 0;
    for (let agent = 0; agent < config.agents; agent++) {
      const events = await collect(log.read(fleetAgentId(agent)));
      expect([[], [fleetEvent(agent, 0)]]).toContainEqual(events);
      stored += events.length;
    }
    expect(stored).toBe(report.acknowledged);
    expect(await log.listAgentIds()).toHaveLength(stored);
    await log.close();
  }, 180_000);
});
