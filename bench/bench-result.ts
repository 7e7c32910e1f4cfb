/**
 * One line of the report and of `bench/results/latest.json`, and the
 * targets of issue 7 that decide its `pass`.
 */

/** A measured figure: the store's value, the raw baseline's, their ratio and whether the target holds. */
export interface BenchResult {
  backend: string;
  /** `a-conversation`, `b-events`, ... */
  workload: string;
  metric: string;
  value: number;
  unit: string;
  /** The raw baseline's value in the same unit, same run; null where there is none. */
  raw: number | null;
  /** `value / raw`; null without a raw baseline. */
  ratio: number | null;
  /** The target in words (`≤ 2× raw`, `≤ 5 ms`); null when the figure is for information. */
  target: string | null;
  /** Whether the target holds; null without a target. */
  pass: boolean | null;
  /** What the figure is, when the metric name does not say it all (sizes, the baseline used). */
  note?: string;
  /** How durable each side's writes are: what a resolved write survives. */
  durability?: Durability;
  /** On the peer comparison's rows: the SDK's own store and a raw baseline at its durability. */
  peer?: PeerFigures;
}

/** What each side of a row guarantees once a write resolves. */
export interface Durability {
  store: string;
  /** The raw baseline's; null without one. */
  raw: string | null;
  /** The SDK store's, on the peer comparison's rows. */
  peer?: string;
  /** The raw baseline at the SDK store's durability, on the peer comparison's rows. */
  rawPeer?: string;
}

/**
 * The peer side of a row. Ratios are ours ÷ theirs in the row's unit, as
 * `ratio` is: below 1 is faster for a time, slower for a rate.
 */
export interface PeerFigures {
  /** Which store, e.g. `SDK SqliteStore 2.7.5`. */
  store: string;
  value: number;
  /** `value` (ours) ÷ the peer's. */
  ratio: number;
  /** The raw baseline at the peer's durability; null where there is none (queries). */
  rawAtPeerDurability: number | null;
  /** `value` (ours) ÷ `rawAtPeerDurability`. */
  ratioAtPeerDurability: number | null;
}

/** Whether ours is faster than `other` for a figure in `unit` (rates: more is faster; times: less). */
export function oursFaster(value: number, other: number, unit: string): boolean {
  return unit.endsWith('/s') ? value > other : value < other;
}

/** A workload that did not run on a backend, and why. */
export interface SkippedWorkload {
  backend: string;
  workload: string;
  reason: string;
}

/**
 * A target:
 * - `ratio-max`: the store's value (a time) may be at most `limit` × the raw one;
 * - `ratio-min`: the store's value (a rate) must be at least `limit` × the raw one;
 * - `max`: the value itself may be at most `limit` (in its unit).
 */
export type Target =
  | { kind: 'ratio-max'; limit: number }
  | { kind: 'ratio-min'; limit: number }
  | { kind: 'max'; limit: number; unit: string };

/** The target in words, as the table and the JSON show it. */
export function describeTarget(target: Target): string {
  switch (target.kind) {
    case 'ratio-max':
      return `≤ ${target.limit}× raw`;
    case 'ratio-min':
      return `≥ ${target.limit}× raw`;
    case 'max':
      return `≤ ${target.limit} ${target.unit}`.trimEnd();
  }
}

/** What `measured` needs: everything but the derived ratio, target text and pass. */
export interface Measurement {
  metric: string;
  value: number;
  unit: string;
  raw?: number | null;
  target?: Target | null;
  note?: string;
  /** The peer's figures, on the peer comparison's rows. */
  peer?: { store: string; value: number; rawAtPeerDurability: number | null };
  /** The peer's side of the durability, on the peer comparison's rows (ours and raw come from the backend). */
  peerDurability?: { peer: string; rawPeer: string };
}

/**
 * Builds a result row: the ratio against the raw value and the verdict of
 * the target. A ratio target without a raw value cannot be judged, so its
 * `pass` is null (the memory reference store has no raw baseline).
 */
export function measured(backend: string, workload: string, m: Measurement): BenchResult {
  const raw = m.raw ?? null;
  const ratio = raw !== null && raw > 0 ? m.value / raw : null;
  const target = m.target ?? null;
  let pass: boolean | null = null;
  if (target?.kind === 'max') pass = m.value <= target.limit;
  else if (target && ratio !== null) {
    pass = target.kind === 'ratio-max' ? ratio <= target.limit : ratio >= target.limit;
  }
  return {
    backend,
    workload,
    metric: m.metric,
    value: m.value,
    unit: m.unit,
    raw,
    ratio,
    target: target && (target.kind === 'max' || raw !== null) ? describeTarget(target) : null,
    pass,
    ...(m.note === undefined ? {} : { note: m.note }),
    ...(m.peer === undefined
      ? {}
      : {
          peer: {
            store: m.peer.store,
            value: m.peer.value,
            ratio: m.value / m.peer.value,
            rawAtPeerDurability: m.peer.rawAtPeerDurability,
            ratioAtPeerDurability:
              m.peer.rawAtPeerDurability === null || m.peer.rawAtPeerDurability <= 0
                ? null
                : m.value / m.peer.rawAtPeerDurability,
          },
        }),
  };
}
