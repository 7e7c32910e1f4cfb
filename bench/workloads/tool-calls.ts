import type { ToolCallRecord } from '../../src/types.js';
import type { Measurement } from '../bench-result.js';
import { toolCallRecord } from '../data.js';
import { median, medianOfRuns, type RunFigures, timeMs } from '../measure.js';
import { runAgentId, type Workload, withFreshBackend } from '../workload.js';

/**
 * (c) Tool-call records as the SDK saves them: the whole list after every
 * change. Each save here appends a step's calls (the last one still
 * executing) and completes the call left executing by the previous save, so
 * an incremental store writes `perCall + 1` records whatever the list's
 * length. Then the full list is loaded.
 */

/**
 * Brings `records` to what call `k` (1-based) saves, as the SDK keeps them:
 * one object per call in a map, updated in place (its `updateToolRecord` is
 * an `Object.assign` on the stored object). The call left executing by the
 * previous save completes, and the step's `perCall` new records are added,
 * the last one still executing.
 */
function advance(records: ToolCallRecord[], k: number, perCall: number): void {
  const executing = records.length - 1;
  if (executing >= 0) Object.assign(records[executing]!, toolCallRecord(executing));
  const length = k * perCall;
  for (let i = records.length; i < length; i++) {
    records.push(toolCallRecord(i, i === length - 1 ? 'EXECUTING' : undefined));
  }
}

function figures(saveMs: readonly number[], loadMs: number): RunFigures {
  const window = Math.min(10, Math.floor(saveMs.length / 2));
  return {
    totalMs: saveMs.reduce((sum, ms) => sum + ms, 0),
    // Medians, not means: one slow fsync in a window of ten would otherwise
    // move the ratio more than the list's growth does.
    growth: median(saveMs.slice(-window)) / median(saveMs.slice(0, window)),
    loadMs,
  };
}

export const toolCallsWorkload: Workload = {
  id: 'c-tool-calls',
  title: 'tool calls: saveToolCallRecords of a growing list, then load',
  touchesEvents: false,
  async run(context) {
    const { calls, perCall } = context.profile.toolCalls;
    const final = calls * perCall;

    return withFreshBackend(context, 'tool_calls', async ({ store, raw }) => {
      const callsOf = (run: number) => (run < 0 ? Math.min(calls, 5) : calls);
      const result = await medianOfRuns(
        context.profile.runs,
        {
          store: async (run) => {
            const agentId = runAgentId('tools', 'store', run);
            const saveMs: number[] = [];
            const records: ToolCallRecord[] = [];
            for (let k = 0; k < callsOf(run); k++) {
              advance(records, k + 1, perCall);
              // A fresh array each time, as the SDK builds one from its record map's values.
              const list = [...records];
              saveMs.push(await timeMs(() => store.saveToolCallRecords(agentId, list)));
            }
            return figures(saveMs, await timeMs(() => store.loadToolCallRecords(agentId)));
          },
          raw: raw?.tables
            ? async (run) => {
                const tables = raw.tables!;
                const agentId = runAgentId('tools', 'raw', run);
                const saveMs: number[] = [];
                const records: ToolCallRecord[] = [];
                for (let k = 0; k < callsOf(run); k++) {
                  advance(records, k + 1, perCall);
                  // Only what changed: the call completed since the last save, and the new ones.
                  const from = Math.max(0, k * perCall - 1);
                  const changed = records.slice(from);
                  saveMs.push(await timeMs(() => tables.upsertToolCalls(agentId, from, changed)));
                }
                return figures(saveMs, await timeMs(() => tables.loadToolCalls(agentId)));
              }
            : undefined,
        },
        (run) => context.phase(run < 0 ? 'warm-up' : `run ${run + 1}/${context.profile.runs}`),
      );
      const store_ = result.store!;
      const raw_ = result.raw;
      const results: Measurement[] = [
        {
          metric: `save growing to ${final} over ${calls} calls, total`,
          value: store_.totalMs!,
          unit: 'ms',
          raw: raw_?.totalMs ?? null,
          note: 'raw: upserts only the changed and new records',
        },
        {
          metric: 'save growth (last 10 ÷ first 10)',
          value: store_.growth!,
          unit: '×',
          target: { kind: 'max', limit: 1.5, unit: '' },
          ...(raw_ ? { note: `raw: ${raw_.growth!.toFixed(2)}×` } : {}),
        },
        {
          metric: `loadToolCallRecords (${final})`,
          value: store_.loadMs!,
          unit: 'ms',
          raw: raw_?.loadMs ?? null,
        },
      ];
      return results;
    });
  },
};
