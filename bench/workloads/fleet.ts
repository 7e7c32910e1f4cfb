import pLimit from 'p-limit';
import type { Message, ToolCallRecord } from '../../src/types.js';
import type { BenchStore } from '../backends.js';
import type { Measurement } from '../bench-result.js';
import { agentInfo, BASE_MS, conversation, TEMPLATE_IDS, toolCallRecord } from '../data.js';
import { median, medianOfRuns, quantile, timeMs } from '../measure.js';
import type { RawAgentTables } from '../raw/raw-baseline.js';
import { type Workload, withFreshBackend } from '../workload.js';

/**
 * (d) A fleet: many agents, each with a short conversation, a few tool
 * calls and its info, saved with several agents in flight at once as a
 * process running a pool of agents does; then the cross-agent queries a
 * dashboard runs, which must stay fast however large the fleet grows.
 *
 * Populating is measured in chunks: the first few agents are the warm-up,
 * the rest is split into the measured runs, so the fleet ends at exactly the
 * configured size. The raw baseline makes the same three commits per agent
 * (messages, tool calls, info), as the SDK's three calls must each be
 * durable when they resolve.
 */

/** Distinct conversations and tool-call lists the agents reuse (the bytes, not the ids, repeat). */
const POOL = 64;

function fleetAgentId(index: number): string {
  return `fleet-${String(index).padStart(6, '0')}`;
}

function chunks(total: number, runs: number): { warmup: number[]; runs: number[][] } {
  const warm = Math.max(1, Math.min(50, Math.floor(total / 40)));
  const rest = Array.from({ length: total - warm }, (_, i) => warm + i);
  const size = Math.ceil(rest.length / runs);
  return {
    warmup: Array.from({ length: warm }, (_, i) => i),
    runs: Array.from({ length: runs }, (_, r) => rest.slice(r * size, (r + 1) * size)),
  };
}

export const fleetWorkload: Workload = {
  id: 'd-fleet',
  title: 'fleet: populate, then cross-agent queries',
  touchesEvents: false,
  async run(context) {
    const profile = context.profile.fleet;
    const messagePool: Message[][] = Array.from({ length: POOL }, (_, p) =>
      conversation(profile.messagesPerAgent, p * profile.messagesPerAgent),
    );
    const toolCallPool: ToolCallRecord[][] = Array.from({ length: POOL }, (_, p) =>
      Array.from({ length: profile.toolCallsPerAgent }, (_, j) =>
        toolCallRecord(p * profile.toolCallsPerAgent + j),
      ),
    );
    const agentData = (index: number) => ({
      agentId: fleetAgentId(index),
      messages: messagePool[index % POOL]!,
      toolCalls: toolCallPool[index % POOL]!,
      info: agentInfo(fleetAgentId(index), {
        templateId: TEMPLATE_IDS[index % TEMPLATE_IDS.length]!,
        messageCount: profile.messagesPerAgent,
        createdAtMs: BASE_MS + index * 1000,
      }),
    });
    const plan = chunks(profile.agents, context.profile.runs);
    const agentsOf = (run: number) => (run < 0 ? plan.warmup : plan.runs[run]!);

    return withFreshBackend(context, 'fleet', async ({ store, raw }) => {
      const populateStore = async (store_: BenchStore, indices: number[]) => {
        const limit = pLimit(profile.concurrency);
        await limit.map(indices, async (index) => {
          const { agentId, messages, toolCalls, info } = agentData(index);
          await store_.saveMessages(agentId, messages);
          await store_.saveToolCallRecords(agentId, toolCalls);
          await store_.saveInfo(agentId, info);
        });
      };
      const populateRaw = async (tables: RawAgentTables, indices: number[]) => {
        const limit = pLimit(profile.concurrency);
        await limit.map(indices, async (index) => {
          const { agentId, messages, toolCalls, info } = agentData(index);
          await tables.insertMessages(agentId, 0, messages);
          await tables.upsertToolCalls(agentId, 0, toolCalls);
          await tables.upsertInfo(agentId, info);
        });
      };
      const rates = await medianOfRuns(
        context.profile.runs,
        {
          store: async (run) => {
            const indices = agentsOf(run);
            return { rate: (indices.length / (await timeMs(() => populateStore(store, indices)))) * 1000 };
          },
          raw: raw?.tables
            ? async (run) => {
                const indices = agentsOf(run);
                return {
                  rate: (indices.length / (await timeMs(() => populateRaw(raw.tables!, indices)))) * 1000,
                };
              }
            : undefined,
        },
        (run) =>
          context.phase(`populate ${profile.agents} agents, ${run < 0 ? 'warm-up' : `chunk ${run + 1}`}`),
      );
      const target = { kind: 'max' as const, limit: profile.queryTargetMs, unit: 'ms' };
      const results: Measurement[] = [
        {
          metric: `populate ${profile.agents} agents (×${profile.messagesPerAgent} msgs, ×${profile.toolCallsPerAgent} calls)`,
          value: rates.store!.rate!,
          unit: 'agents/s',
          raw: rates.raw?.rate ?? null,
          target: { kind: 'ratio-min', limit: 0.5 },
          note: `${profile.concurrency} agents in flight; raw: the same 3 commits per agent`,
        },
      ];

      // Sessions of one template, walked page by page to the end.
      context.phase('querySessions by template, page by page');
      const templateId = TEMPLATE_IDS[0];
      const pageMs: number[] = [];
      let pages = 0;
      for (let walk = -1; walk < Math.max(3, Math.ceil(profile.queryRepeats / 4)); walk++) {
        pages = 0;
        for (let offset = 0; ; offset += profile.pageSize) {
          let got = 0;
          const ms = await timeMs(async () => {
            got = (await store.querySessions({ templateId, limit: profile.pageSize, offset })).length;
          });
          pages++;
          if (walk >= 0) pageMs.push(ms);
          if (got < profile.pageSize) break;
        }
      }
      results.push({
        metric: `querySessions by template, per page (${profile.pageSize}/page)`,
        value: median(pageMs),
        unit: 'ms',
        target,
        note: `${pages} pages per walk; p95 ${quantile(pageMs, 0.95).toFixed(2)} ms`,
      });

      const repeated = async (label: string, query: () => Promise<unknown>): Promise<number[]> => {
        context.phase(label);
        await query();
        const times: number[] = [];
        for (let i = 0; i < profile.queryRepeats; i++) times.push(await timeMs(query));
        return times;
      };
      const queries: Array<{ metric: string; query: () => Promise<unknown[] | object> }> = [
        {
          metric: 'queryMessages by role, limit 100',
          query: () => store.queryMessages({ role: 'assistant', limit: 100 }),
        },
        {
          metric: 'queryToolCalls by name + state',
          query: () => store.queryToolCalls({ toolName: 'fs_write', state: 'FAILED' }),
        },
        {
          metric: 'aggregateStats of one agent',
          query: () => store.aggregateStats(fleetAgentId(Math.floor(profile.agents / 2))),
        },
      ];
      for (const { metric, query } of queries) {
        let returned = 0;
        const times = await repeated(metric, async () => {
          const result = await query();
          returned = Array.isArray(result) ? result.length : 1;
        });
        results.push({
          metric,
          value: median(times),
          unit: 'ms',
          target,
          note: `${returned} returned; p95 ${quantile(times, 0.95).toFixed(2)} ms`,
        });
      }
      return results;
    });
  },
};
