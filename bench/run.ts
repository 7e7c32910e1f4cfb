import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { BACKEND_NAMES, type BackendName, postgresUrlFromEnv, resolveBackends } from './backends.js';
import { type BenchProfile, benchProfile } from './bench-profile.js';
import { type BenchResult, measured, type SkippedWorkload } from './bench-result.js';
import { describeMachine } from './machine.js';
import { peerSdk, peerWorkload } from './peer/peer-workload.js';
import { createBenchProgress } from './progress.js';
import { type BenchReport, renderResults, renderSummary, writeReport } from './report.js';
import type { Workload } from './workload.js';
import { batchForkWorkload } from './workloads/batch-fork.js';
import { conversationWorkload } from './workloads/conversation.js';
import { eventMemoryWorkload } from './workloads/event-memory.js';
import { eventsWorkload } from './workloads/events.js';
import { fleetWorkload } from './workloads/fleet.js';
import { kvWorkload } from './workloads/kv.js';
import { loadMessagesWorkload } from './workloads/load-messages.js';
import { partitionsWorkload } from './workloads/partitions.js';
import { postgresFleetWorkload } from './workloads/postgres-fleet.js';
import { retentionWorkload } from './workloads/retention.js';
import { scaleWorkload } from './workloads/scale.js';
import { toolCallsWorkload } from './workloads/tool-calls.js';

/**
 * `npm run bench`: issue 7's workloads on every available backend against
 * the raw drivers, one table at the end, `bench/results/latest.json`.
 *
 *   npm run bench                 # full run (about 26 minutes on 2 cores, the peer included)
 *   npm run bench -- --quick      # short run proving the code works
 *   npm run bench -- --large      # the 50,000-agent fleet, 10,000 agents × 300 steps (j-scale)
 *   npm run bench -- --only j --scale-agents 1000   # the scale workload at another size
 *   npm run bench -- --medium     # the peer comparison at a third of its sizes
 *   npm run bench -- --only a,d --backends sqlite,postgres
 *   npm run bench -- --only peer  # the SDK's own stores side by side (KODE_SDK_TARBALL)
 *
 * PostgreSQL: KODE_BENCH_POSTGRES_URL, else KODE_TEST_POSTGRES_URL, else
 * postgres://postgres@127.0.0.1:5432/test; skipped, with the reason, when
 * the server does not answer. Every workload works in its own schema or
 * file, removed afterwards.
 */

const WORKLOADS: readonly Workload[] = [
  conversationWorkload,
  eventsWorkload,
  toolCallsWorkload,
  fleetWorkload,
  loadMessagesWorkload,
  batchForkWorkload,
  kvWorkload,
  eventMemoryWorkload,
  retentionWorkload,
  postgresFleetWorkload,
  scaleWorkload,
  partitionsWorkload,
  peerWorkload,
];

/**
 * Where a run writes unless `--output` says otherwise: the committed full-run results are
 * `latest.json`, and a quick or large run writes beside them without replacing them.
 */
function defaultOutput(profile: BenchProfile['name']): string {
  const file = profile === 'full' ? 'latest.json' : `${profile}.json`;
  return fileURLToPath(new URL(`./results/${file}`, import.meta.url));
}

function parseBackends(value: string): BackendName[] {
  const names = value.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(BACKEND_NAMES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`unknown backend "${name}" (known: ${BACKEND_NAMES.join(', ')})`);
    }
  }
  return names as BackendName[];
}

/** Workloads by id (`a-conversation`) or by letter (`a`). */
function parseWorkloads(value: string): Workload[] {
  return value.split(',').map((name) => {
    const wanted = name.trim();
    const workload = WORKLOADS.find((w) => w.id === wanted || w.id.startsWith(`${wanted}-`));
    if (!workload) {
      throw new InvalidArgumentError(
        `unknown workload "${wanted}" (known: ${WORKLOADS.map((w) => w.id).join(', ')})`,
      );
    }
    return workload;
  });
}

interface RunOptions {
  quick?: boolean;
  large?: boolean;
  medium?: boolean;
  scaleAgents?: number;
  backends: BackendName[];
  /** Unset: every workload, but those `onRequest` only in a quick run. */
  only?: Workload[];
  output?: string;
}

async function runBench(options: RunOptions): Promise<number> {
  const chosen = benchProfile(options);
  const profile: BenchProfile =
    options.scaleAgents === undefined
      ? chosen
      : { ...chosen, scale: { ...chosen.scale, agents: options.scaleAgents } };
  const output = options.output ?? defaultOutput(profile.name);
  const started = Date.now();
  const loadAtStart = loadavg();
  const workspace = mkdtempSync(join(tmpdir(), 'kode-bench-'));
  const removeWorkspace = () => rmSync(workspace, { recursive: true, force: true });
  process.once('SIGINT', () => {
    removeWorkspace();
    process.exit(130);
  });
  let only = options.only ?? WORKLOADS.filter((workload) => !workload.onRequest || profile.name === 'quick');
  const progress = createBenchProgress();
  const results: BenchResult[] = [];
  const skipped: SkippedWorkload[] = [];
  const errors: SkippedWorkload[] = [];
  try {
    const postgresUrl = postgresUrlFromEnv();
    const { backends, skipped: unavailable } = await resolveBackends(
      options.backends,
      workspace,
      postgresUrl,
    );
    for (const { backend, reason } of unavailable) {
      progress.note(`skipping ${backend}: ${reason}`);
      for (const workload of only) skipped.push({ backend, workload: workload.id, reason });
    }
    const machine = await describeMachine(
      workspace,
      backends.some((b) => b.family === 'postgres') ? postgresUrl : undefined,
    );

    if (only.includes(peerWorkload)) {
      // The comparison with the SDK's own stores is optional: one line when the SDK is not there.
      const lookup = peerSdk();
      if ('skipped' in lookup) {
        progress.note(`skipping the peer comparison: ${lookup.skipped}`);
        skipped.push({ backend: 'all', workload: peerWorkload.id, reason: lookup.skipped });
        only = only.filter((workload) => workload !== peerWorkload);
      }
    }
    const tasks = only
      .flatMap((workload) => backends.map((backend) => ({ workload, backend })))
      .filter(({ workload, backend }) => !(workload === peerWorkload && backend.family === 'memory'));
    progress.start(tasks.length);
    for (const { workload, backend } of tasks) {
      progress.task(`${backend.name} · ${workload.id}`);
      if (backend.hybrid && !workload.touchesEvents) {
        skipped.push({
          backend: backend.name,
          workload: workload.id,
          reason: `no event path: the hybrid mode runs the same database code as ${backend.family}`,
        });
        continue;
      }
      try {
        const outcome = await workload.run({
          backend,
          profile,
          workspace,
          phase: (text) => progress.phase(text),
        });
        if ('skipped' in outcome) {
          progress.note(`skipped ${backend.name} ${workload.id}: ${outcome.skipped}`);
          skipped.push({ backend: backend.name, workload: workload.id, reason: outcome.skipped });
          continue;
        }
        for (const measurement of outcome) {
          // The memory store is the reference: its figures are shown, never judged.
          const judged = backend.family === 'memory' ? { ...measurement, target: null } : measurement;
          const result = measured(backend.name, workload.id, judged);
          result.durability = {
            store: backend.durability.store,
            raw: result.raw === null ? null : backend.durability.raw,
            ...measurement.peerDurability,
          };
          results.push(result);
        }
      } catch (error) {
        const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
        progress.note(`FAILED ${backend.name} ${workload.id}: ${reason}`);
        errors.push({ backend: backend.name, workload: workload.id, reason });
      }
    }
    progress.stop();

    const report: BenchReport = {
      machine,
      date: new Date(started).toISOString(),
      profile,
      durationSeconds: (Date.now() - started) / 1000,
      loadAverage: { atStart: loadAtStart, atEnd: loadavg() },
      results,
      skipped,
      errors,
    };
    process.stdout.write(`${renderResults(results)}\n${renderSummary(report)}\n`);
    writeReport(output, report);
    process.stdout.write(`results written to ${output}\n`);
    return errors.length > 0 ? 1 : 0;
  } finally {
    progress.stop();
    removeWorkspace();
  }
}

const program = new Command('bench')
  .description("kode-store benchmarks: the SDK's hot paths against the raw drivers (issue 7)")
  .option('--quick', 'a short run with small sizes (proves the code works; < 60 s)')
  .option(
    '--large',
    'the large fleet (50,000 agents, 1,000,000 messages) and 10,000 agents × 300 steps (j-scale)',
  )
  .option('--medium', 'the full run with the peer comparison at about a third of its sizes')
  .option('--scale-agents <n>', 'agents of the scale workload (j-scale), whatever the profile', (value) => {
    const agents = Number(value);
    if (!Number.isSafeInteger(agents) || agents < 10) throw new InvalidArgumentError('a whole number ≥ 10');
    return agents;
  })
  .option('--backends <list>', `comma-separated subset of ${BACKEND_NAMES.join(', ')}`, parseBackends, [
    ...BACKEND_NAMES,
  ])
  .option(
    '--only <list>',
    'comma-separated workloads, by id or letter (a..i, r, s, peer); default: all but s (it loads 10,000,000 events; a quick run includes it)',
    parseWorkloads,
  )
  .option(
    '--output <file>',
    'where to write the JSON results (default: bench/results/latest.json, quick.json or large.json)',
    (value) => resolve(value),
  )
  .action(async (options: RunOptions) => {
    if (options.quick && options.large) program.error('--quick and --large cannot be combined');
    if (options.medium && (options.quick || options.large)) {
      program.error('--medium cannot be combined with --quick or --large');
    }
    process.exitCode = await runBench(options);
  });

await program.parseAsync(process.argv);
