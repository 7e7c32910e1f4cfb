import type { ToolCallRecord } from '../../src/types.js';
import type { Measurement } from '../bench-result.js';
import { toolCallRecord } from '../data.js';
import { mean, medianOfRuns, type RunFigures, timeMs } from '../measure.js';
import { runAgentId, type Workload, withFreshBackend } from '../workload.js';

/**
 * (c) Tool-call records as the SDK saves them: the whole list after every
 * change. Each save here appends a step's calls (the last one still
 * executing) and completes the call left executing by the previous save, so
 * an incremental store writes `perCall + 1` records whatever the list's
 * length. Then the full list is loaded.
 */

/** The list as saved by call `k` (1-based): `k × perCall` records, the last one still executing. */
function listAt(k: number, perCall: number): ToolCallRecord[] {
  const length = k * perCall;
  return Array.from({ length }, (_, i) => toolCallRecord(i, i === length - 1 ? 'EXECUTING' : undefined));
}

function figures(saveMs: readonly number[], loadMs: number): RunFigures {
  const window = Math.min(10, Math.floor(saveMs.length / 2));
  return {
    totalMs: saveMs.reduce((sum, ms) => sum + ms, 0),
    growth: mean(saveMs.slice(-window)) / mean(saveMs.slice(0, window)),
    loadMs,
  };
}

export const toolCallsWorkload: Workload = {
  id: 'c-tool-calls',
  title: 'tool calls: saveToolCallRecords of a growing list, then load',
  touchesEvents: false,
  async run(context) {
    const { calls, perCall } = context.profile.toolCalls;
    const lists = Array.from({ length: calls }, (_, i) => listAt(i + 1, perCall));
    const final = calls * perCall;

    return withFreshBackend(context, 'tool_calls', async ({ store, raw }) => {
      const callsOf = (run: number) => (run < 0 ? Math.min(calls, 5) : calls);
      const result = await medianOfRuns(
        context.profile.runs,
        {
          store: async (run) => {
            const agentId = runAgentId('tools', 'store', run);
            const saveMs: number[] = [];
            for (let k = 0; k < callsOf(run); k++) {
              // A fresh array each time, as the SDK builds one from its record map.
              const list = [...lists[k]!];
              saveMs.push(await timeMs(() => store.saveToolCallRecords(agentId, list)));
            }
            return figures(saveMs, await timeMs(() => store.loadToolCallRecords(agentId)));
          },
          raw: raw?.tables
            ? async (run) => {
                const tables = raw.tables!;
                const agentId = runAgentId('tools', 'raw', run);
                const saveMs: number[] = [];
                for (let k = 0; k < callsOf(run); k++) {
                  // Only what changed: the call completed since the last save, and the new ones.
                  const from = Math.max(0, k * perCall - 1);
                  const changed = lists[k]!.slice(from);
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
