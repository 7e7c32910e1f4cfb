import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Timing: a warm-up, then the median of several runs. The subjects of one
 * comparison (the store and its raw baseline) run interleaved, run by run,
 * so that a slow patch of the machine (another process, a checkpoint, the
 * disk's cache flushing) falls on both rather than on one.
 */

/** The median of `values` (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new Error('mean of no values');
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** `q`-quantile (0..1) by nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * A full garbage collection, so that one subject's garbage is not collected
 * on the next subject's clock. `gc` is exposed at run time (the benchmark
 * runs under `tsx`, which passes no V8 flags).
 */
export const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  return () => gc?.();
})();

/** Milliseconds `body` took. */
export async function timeMs(body: () => Promise<unknown> | unknown): Promise<number> {
  const started = performance.now();
  await body();
  return performance.now() - started;
}

/** What one run of a subject measured: metric name → value. */
export type RunFigures = Record<string, number>;

/**
 * One subject of a comparison. `run` is called with the run index: `-1` for
 * the warm-up (whose figures are dropped; a subject may make it smaller),
 * then `0 .. runs-1`.
 */
export type Subject = (run: number) => Promise<RunFigures>;

/**
 * Runs a warm-up and `runs` measured runs of every subject, interleaved
 * (warm-up of each, then run 0 of each, ...), and returns per subject the
 * median of each figure over the measured runs.
 */
export async function medianOfRuns<K extends string>(
  runs: number,
  subjects: Record<K, Subject | undefined>,
  onRun: (run: number) => void = () => undefined,
): Promise<Record<K, RunFigures | undefined>> {
  const samples = new Map<K, Map<string, number[]>>();
  const names = (Object.keys(subjects) as K[]).filter((name) => subjects[name] !== undefined);
  for (let run = -1; run < runs; run++) {
    onRun(run);
    for (const name of names) {
      collectGarbage();
      const figures = await subjects[name]!(run);
      if (run < 0) continue;
      const perMetric = samples.get(name) ?? new Map<string, number[]>();
      samples.set(name, perMetric);
      for (const [metric, value] of Object.entries(figures)) {
        const list = perMetric.get(metric) ?? [];
        list.push(value);
        perMetric.set(metric, list);
      }
    }
  }
  const result = {} as Record<K, RunFigures | undefined>;
  for (const name of Object.keys(subjects) as K[]) {
    const perMetric = samples.get(name);
    result[name] = perMetric
      ? Object.fromEntries([...perMetric].map(([metric, values]) => [metric, median(values)]))
      : undefined;
  }
  return result;
}
