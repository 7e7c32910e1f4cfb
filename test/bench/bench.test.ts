import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeTarget, measured } from '../../bench/bench-result.js';
import { median, medianOfRuns, quantile } from '../../bench/measure.js';
import type { BenchReport } from '../../bench/report.js';
import { adminQuery, describePostgres, postgresUrl } from '../helpers/postgres.js';
import { sdkSource } from '../helpers/sdk.js';

/**
 * The benchmark code runs, once, in `--quick` mode, and its report has the
 * documented shape. Nothing here looks at how fast anything was: figures on
 * a shared CI machine prove nothing, and `npm run bench` is where they are
 * measured.
 */

const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
/** An address where no PostgreSQL answers, for the skip path and when the run has no server. */
const NO_SERVER = 'postgres://postgres@127.0.0.1:1/nothing';
const WORKLOADS = [
  'a-conversation',
  'b-events',
  'c-tool-calls',
  'd-fleet',
  'e-load-messages',
  'f-batch-fork',
  'g-kv',
  'h-event-memory',
  'r-retention',
  'j-scale',
];

interface BenchRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the benchmark; `sdk` names the KODE SDK for the peer comparison (none by default). */
function runBench(argv: string[], postgres: string | null, sdk: string | null = null): Promise<BenchRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...argv], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        KODE_BENCH_POSTGRES_URL: postgres ?? NO_SERVER,
        ...(sdk === null ? {} : { KODE_SDK_TARBALL: sdk }),
      },
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
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kode-bench-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('npm run bench -- --quick', () => {
  let run: BenchRun;
  let report: BenchReport;
  beforeAll(async () => {
    run = await runBench(['--quick', '--output', join(dir, 'quick.json')], postgresUrl, sdkSource);
    report = JSON.parse(await readFile(join(dir, 'quick.json'), 'utf8')) as BenchReport;
    // With the SDK and PostgreSQL this took 4-5 minutes on 2 cores shared with five other
    // sessions (load average ~20): the limit is for a stuck run, not a slow machine.
  }, 600_000);

  it('completes without a failed workload', () => {
    expect(run.stderr).not.toContain('FAILED');
    expect(report.errors).toEqual([]);
    expect(run.code).toBe(0);
  });

  it('prints one table with every column and says where the results went', () => {
    for (const header of ['backend', 'workload', 'metric', 'value', 'raw', 'ratio', 'target', 'pass']) {
      expect(run.stdout).toContain(header);
    }
    expect(run.stdout).toContain(`results written to ${join(dir, 'quick.json')}`);
  });

  it('reports progress as plain lines when stderr is not a terminal', () => {
    expect(run.stderr).toMatch(/^\[1\/\d+\] memory · a-conversation$/m);
  });

  it('writes { machine, date, results } with the documented fields', () => {
    expect(report.profile.name).toBe('quick');
    expect(Number.isNaN(Date.parse(report.date))).toBe(false);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    expect(report.machine.sqlite).toMatch(/^3\.\d+/);
    expect(report.machine.postgres === null).toBe(postgresUrl === null);
    for (const row of report.results) {
      expect(Object.keys(row)).toEqual(
        expect.arrayContaining([
          'backend',
          'workload',
          'metric',
          'value',
          'unit',
          'raw',
          'ratio',
          'target',
          'pass',
        ]),
      );
      expect(Number.isFinite(row.value) && row.value >= 0).toBe(true);
      if (row.raw === null) expect(row.ratio).toBeNull();
      else expect(row.ratio).toBeCloseTo(row.value / row.raw, 9);
      if (row.target === null) expect(row.pass).toBeNull();
      else expect(typeof row.pass).toBe('boolean');
      // Every row says what each side's writes survive.
      expect(row.durability?.store).toEqual(expect.any(String));
      expect(row.durability?.raw === null).toBe(row.raw === null);
    }
  });

  it('compares with the SDK’s own stores when KODE_SDK_TARBALL names the SDK, with both durabilities', () => {
    const peerRows = report.results.filter((r) => r.workload === 'peer');
    if (!sdkSource) {
      expect(peerRows).toEqual([]);
      expect(report.skipped).toContainEqual({ backend: 'all', workload: 'peer', reason: expect.any(String) });
      return;
    }
    for (const header of [
      'ours',
      'peer',
      'raw@ours',
      'raw@peer',
      '÷peer',
      '÷raw@ours',
      '÷raw@peer',
      'vs peer',
    ]) {
      expect(run.stdout).toContain(header);
    }
    const backends = new Set(peerRows.map((r) => r.backend));
    expect(report.skipped).toContainEqual({
      backend: 'sqlite-hybrid',
      workload: 'peer',
      reason: 'a quick run compares the database modes only',
    });
    expect(backends).toEqual(
      // A quick run compares the database modes only (the hybrid ones are said to be skipped).
      new Set(postgresUrl ? ['sqlite', 'postgres'] : ['sqlite']),
    );
    for (const row of peerRows) {
      expect(row.peer?.store).toMatch(/^SDK (Sqlite|Postgres)Store \d/);
      expect(row.peer!.ratio).toBeCloseTo(row.value / row.peer!.value, 9);
      expect(row.durability?.peer).toContain('never fsynced');
      expect(row.durability?.rawPeer).toContain('never fsynced');
      if (row.peer!.rawAtPeerDurability === null) expect(row.peer!.ratioAtPeerDurability).toBeNull();
      else expect(row.peer!.ratioAtPeerDurability).toBeCloseTo(row.value / row.peer!.rawAtPeerDurability, 9);
    }
    // Every write workload has both raw baselines; the queries have none.
    const conversation = peerRows.find((r) => r.backend === 'sqlite' && r.metric.startsWith('conversation'));
    expect(conversation?.raw).toBeGreaterThan(0);
    expect(conversation?.peer?.rawAtPeerDurability).toBeGreaterThan(0);
  });

  it('runs every workload on SQLite and compares it with raw better-sqlite3', () => {
    for (const workload of WORKLOADS) {
      expect(report.results.filter((r) => r.backend === 'sqlite' && r.workload === workload)).not.toEqual([]);
    }
    const conversation = report.results.find((r) => r.backend === 'sqlite' && r.metric.startsWith('total'));
    expect(conversation?.raw).toBeGreaterThan(0);
  });

  it('runs the event workloads on the hybrid mode against raw files, and says why the rest is not rerun', () => {
    const hybrid = report.results.filter((r) => r.backend === 'sqlite-hybrid' && r.workload !== 'peer');
    expect(new Set(hybrid.map((r) => r.workload))).toEqual(new Set(['b-events', 'h-event-memory']));
    const skip = report.skipped.find((s) => s.backend === 'sqlite-hybrid' && s.workload === 'd-fleet');
    expect(skip?.reason).toContain('same database code');
  });

  it('shows the memory reference without judging it', () => {
    const memory = report.results.filter((r) => r.backend === 'memory');
    expect(memory).not.toEqual([]);
    expect(memory.every((r) => r.target === null && r.pass === null && r.raw === null)).toBe(true);
  });

  it('includes PostgreSQL when a server answers, and skips it with the reason otherwise', () => {
    const rows = report.results.filter((r) => r.backend.startsWith('postgres'));
    if (postgresUrl) {
      expect(rows.some((r) => r.backend === 'postgres' && r.raw !== null)).toBe(true);
      expect(rows.some((r) => r.backend === 'postgres-hybrid')).toBe(true);
    } else {
      expect(rows).toEqual([]);
      expect(run.stderr).toContain('skipping postgres: PostgreSQL at');
    }
  });
});

describe('npm run bench: where results go', () => {
  it('writes a quick run to bench/results/quick.json and leaves the committed latest.json alone', async () => {
    const latest = join(REPO_ROOT, 'bench', 'results', 'latest.json');
    const quick = join(REPO_ROOT, 'bench', 'results', 'quick.json');
    const before = await readFile(latest);
    const run = await runBench(['--quick', '--only', 'e', '--backends', 'memory'], null);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`results written to ${quick}`);
    expect((JSON.parse(await readFile(quick, 'utf8')) as BenchReport).profile.name).toBe('quick');
    expect((await readFile(latest)).equals(before)).toBe(true);
  });
});

describe('npm run bench: the peer comparison without the SDK', () => {
  it('is skipped with one line, and the rest still runs', async () => {
    const output = join(dir, 'no-sdk.json');
    const run = await runBench(
      ['--quick', '--only', 'e,peer', '--backends', 'sqlite', '--output', output],
      null,
    );
    expect(run.code).toBe(0);
    const lines = run.stderr.split('\n').filter((line) => line.includes('peer comparison'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^skipping the peer comparison: KODE_SDK_TARBALL is not set/);
    const report = JSON.parse(await readFile(output, 'utf8')) as BenchReport;
    expect(new Set(report.results.map((r) => r.workload))).toEqual(new Set(['e-load-messages']));
    expect(report.skipped).toEqual([
      { backend: 'all', workload: 'peer', reason: expect.stringContaining('KODE_SDK_TARBALL is not set') },
    ]);
  });
});

describe('npm run bench: bad usage', () => {
  it('refuses an unknown workload, naming the known ones', async () => {
    const run = await runBench(['--only', 'z'], null);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('unknown workload "z"');
    expect(run.stderr).toContain('a-conversation');
  });

  it('refuses an unknown backend, naming the known ones', async () => {
    const run = await runBench(['--backends', 'oracle'], null);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('unknown backend "oracle"');
    expect(run.stderr).toContain('postgres-hybrid');
  });

  it('refuses --quick together with --large', async () => {
    const run = await runBench(['--quick', '--large'], null);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('--quick and --large cannot be combined');
  });

  it('skips PostgreSQL with the reason when no server answers, and still reports the rest', async () => {
    const output = join(dir, 'no-server.json');
    const run = await runBench(
      ['--quick', '--only', 'e', '--backends', 'memory,postgres', '--output', output],
      null,
    );
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      'skipping postgres: PostgreSQL at postgres://postgres@127.0.0.1:1/nothing is unreachable',
    );
    const report = JSON.parse(await readFile(output, 'utf8')) as BenchReport;
    expect(report.results.map((r) => r.backend)).toEqual(['memory']);
    expect(report.skipped).toEqual([
      { backend: 'postgres', workload: 'e-load-messages', reason: expect.stringContaining('unreachable') },
    ]);
  });
});

describePostgres('npm run bench: a workload that fails', () => {
  const role = `kode_bench_no_create_${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    // A role that may connect (the reachability probe passes) but not create schemas.
    await adminQuery(`CREATE ROLE ${role} LOGIN`);
  });
  afterAll(async () => {
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  });

  it('is reported with its error, the others still run, and the exit code is 1', async () => {
    const url = new URL(postgresUrl!);
    url.username = role;
    const output = join(dir, 'failing.json');
    const run = await runBench(
      ['--quick', '--only', 'e', '--backends', 'memory,postgres', '--output', output],
      url.toString(),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('FAILED postgres e-load-messages');
    const report = JSON.parse(await readFile(output, 'utf8')) as BenchReport;
    expect(report.errors).toEqual([
      {
        backend: 'postgres',
        workload: 'e-load-messages',
        reason: expect.stringContaining('permission denied'),
      },
    ]);
    expect(report.results.map((r) => r.backend)).toEqual(['memory']);
  });
});

describe('bench verdicts', () => {
  it('judges a time against "at most N× raw"', () => {
    const row = measured('sqlite', 'x', {
      metric: 'm',
      value: 3,
      unit: 'ms',
      raw: 2,
      target: { kind: 'ratio-max', limit: 1.5 },
    });
    expect(row).toMatchObject({ ratio: 1.5, target: '≤ 1.5× raw', pass: true });
    expect(
      measured('sqlite', 'x', { ...row, value: 3.2, target: { kind: 'ratio-max', limit: 1.5 } }).pass,
    ).toBe(false);
  });

  it('judges a rate against "at least N× raw"', () => {
    const slow = measured('sqlite', 'x', {
      metric: 'm',
      value: 40,
      unit: 'events/s',
      raw: 100,
      target: { kind: 'ratio-min', limit: 0.5 },
    });
    expect(slow).toMatchObject({ ratio: 0.4, target: '≥ 0.5× raw', pass: false });
  });

  it('judges an absolute limit without a raw value, and leaves a ratio target unjudged without one', () => {
    expect(
      measured('sqlite', 'x', {
        metric: 'm',
        value: 6,
        unit: 'ms',
        target: { kind: 'max', limit: 5, unit: 'ms' },
      }),
    ).toMatchObject({ raw: null, ratio: null, target: '≤ 5 ms', pass: false });
    expect(
      measured('sqlite', 'x', { metric: 'm', value: 6, unit: 'ms', target: { kind: 'ratio-max', limit: 2 } }),
    ).toMatchObject({ ratio: null, target: null, pass: null });
    expect(describeTarget({ kind: 'max', limit: 1.5, unit: '' })).toBe('≤ 1.5');
  });

  it('takes the median of the measured runs and drops the warm-up', async () => {
    const seen: number[] = [];
    const figures = await medianOfRuns(3, {
      a: async (run) => {
        seen.push(run);
        return { x: run < 0 ? 1000 : [5, 1, 3][run]! };
      },
      b: undefined,
    });
    expect(seen).toEqual([-1, 0, 1, 2]);
    expect(figures).toEqual({ a: { x: 3 }, b: undefined });
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95)).toBe(10);
    expect(() => median([])).toThrow('median of no values');
  });
});
