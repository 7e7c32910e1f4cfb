import type { BenchBackend, OpenedBackend } from './backends.js';
import type { BenchProfile } from './bench-profile.js';
import type { Measurement } from './bench-result.js';

/** What a workload gets to run on one backend. */
export interface WorkloadContext {
  readonly backend: BenchBackend;
  readonly profile: BenchProfile;
  /** A directory for files of this run (removed at the end). */
  readonly workspace: string;
  /** Reports what the workload is doing now (shown by the progress display). */
  phase(text: string): void;
}

/** A workload's figures, or why it could not run on this backend. */
export type WorkloadOutcome = Measurement[] | { skipped: string };

/** One of issue 7's workloads, (a) to (h). */
export interface Workload {
  /** `a-conversation`, `b-events`, ...: the letter of the issue and a name. */
  readonly id: string;
  readonly title: string;
  /**
   * Whether the workload goes through the event path. The hybrid backends
   * differ from their database mode only there, so the others run once per
   * database, on the database mode.
   */
  readonly touchesEvents: boolean;
  /** Runs only when `--only` names it, or in a quick run: its full sizes take long to load. */
  readonly onRequest?: boolean;
  run(context: WorkloadContext): Promise<WorkloadOutcome>;
}

/** Runs `body` on a fresh store (own file or schema) and its raw baselines, removing them afterwards. */
export async function withFreshBackend<T>(
  context: WorkloadContext,
  label: string,
  body: (opened: OpenedBackend) => Promise<T>,
): Promise<T> {
  const opened = await context.backend.open(label);
  try {
    return await body(opened);
  } finally {
    await opened.dispose();
  }
}

/** A unique agent id for one run of a subject (`run` -1 is the warm-up). */
export function runAgentId(prefix: string, subject: string, run: number): string {
  return `${prefix}-${subject}-${run < 0 ? 'warmup' : `run${run}`}`;
}
