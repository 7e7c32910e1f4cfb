import type { LatencySummary, StoreMetrics } from '../types.js';

export type OperationKind = 'save' | 'load' | 'query' | 'delete';

/** Latencies kept for percentiles: a ring of the most recent operations bounds memory on long-lived stores. */
const RESERVOIR_SIZE = 8192;

/** Counts a store's operations and their latencies since it opened. */
export class OperationMetrics {
  private readonly counts: Record<OperationKind, number> = { save: 0, load: 0, query: 0, delete: 0 };
  private readonly recent = new Float64Array(RESERVOIR_SIZE);
  private recorded = 0;
  private total = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = 0;

  /** Counts one operation and its latency. */
  record(kind: OperationKind, latencyMs: number): void {
    this.counts[kind]++;
    this.sample(latencyMs);
  }

  /** Counts one operation whose latency is not measured (see `StoreOperations.append`). */
  count(kind: OperationKind): void {
    this.counts[kind]++;
  }

  private sample(latencyMs: number): void {
    this.recent[this.recorded % RESERVOIR_SIZE] = latencyMs;
    this.recorded++;
    this.total += latencyMs;
    if (latencyMs < this.min) this.min = latencyMs;
    if (latencyMs > this.max) this.max = latencyMs;
  }

  operations(): StoreMetrics['operations'] {
    return {
      saves: this.counts.save,
      loads: this.counts.load,
      queries: this.counts.query,
      deletes: this.counts.delete,
    };
  }

  performance(): LatencySummary {
    if (this.recorded === 0) return { avgLatencyMs: 0, maxLatencyMs: 0, minLatencyMs: 0 };
    const sorted = this.recent.slice(0, Math.min(this.recorded, RESERVOIR_SIZE)).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return {
      avgLatencyMs: this.total / this.recorded,
      maxLatencyMs: this.max,
      minLatencyMs: this.min,
      p50LatencyMs: at(0.5),
      p95LatencyMs: at(0.95),
      p99LatencyMs: at(0.99),
    };
  }
}
