import type { Message } from '../../src/types.js';
import type { Measurement } from '../bench-result.js';
import { agentInfo, assistantMessage, userMessage } from '../data.js';
import { mean, medianOfRuns, type RunFigures } from '../measure.js';
import { runAgentId, type Workload, withFreshBackend } from '../workload.js';

/**
 * (a) A long conversation as the SDK saves it: after every step the whole
 * message array goes to `saveMessages`, then `saveInfo`. A store that
 * rewrites the conversation each time gets slower with every step; one that
 * writes only the new messages keeps a flat step cost. The raw baseline is
 * what a hand-written append-only store would do: the two new rows and the
 * info row in one transaction, one commit per step at the store's
 * durability. The store makes two durable commits per step (the SDK awaits
 * `saveMessages`, then `saveInfo`, and each must survive a crash once it
 * resolves), so where a commit costs more than the work around it this
 * ratio stays near 2 even for a store that adds nothing.
 */

/** Total time and growth of one conversation, from its per-step times. */
function conversationFigures(stepMs: readonly number[]): RunFigures {
  const window = Math.min(10, Math.floor(stepMs.length / 2));
  return {
    totalMs: stepMs.reduce((sum, ms) => sum + ms, 0),
    growth: mean(stepMs.slice(-window)) / mean(stepMs.slice(0, window)),
  };
}

export const conversationWorkload: Workload = {
  id: 'a-conversation',
  title: 'conversation: saveMessages(full array) + saveInfo per step',
  touchesEvents: false,
  async run(context) {
    const { steps, warmupSteps } = context.profile.conversation;
    // The messages exist before the clock starts: the SDK has them in memory too.
    const messages: Message[] = [];
    for (let i = 0; i < steps * 2; i++) messages.push(i % 2 === 0 ? userMessage(i) : assistantMessage(i));

    return withFreshBackend(context, 'conversation', async ({ store, raw }) => {
      const stepsOf = (run: number) => (run < 0 ? warmupSteps : steps);
      const figures = await medianOfRuns(
        context.profile.runs,
        {
          store: async (run) => {
            const agentId = runAgentId('conv', 'store', run);
            const stepMs: number[] = [];
            for (let step = 1; step <= stepsOf(run); step++) {
              const sent = messages.slice(0, step * 2);
              const info = agentInfo(agentId, { messageCount: sent.length, seq: step * 10 });
              const started = performance.now();
              await store.saveMessages(agentId, sent);
              await store.saveInfo(agentId, info);
              stepMs.push(performance.now() - started);
            }
            return conversationFigures(stepMs);
          },
          raw: raw?.tables
            ? async (run) => {
                const tables = raw.tables!;
                const agentId = runAgentId('conv', 'raw', run);
                const stepMs: number[] = [];
                for (let step = 1; step <= stepsOf(run); step++) {
                  const fresh = messages.slice(step * 2 - 2, step * 2);
                  const info = agentInfo(agentId, { messageCount: step * 2, seq: step * 10 });
                  const started = performance.now();
                  await tables.appendStep(agentId, { firstPosition: step * 2 - 2, messages: fresh, info });
                  stepMs.push(performance.now() - started);
                }
                return conversationFigures(stepMs);
              }
            : undefined,
        },
        (run) => context.phase(run < 0 ? 'warm-up' : `run ${run + 1}/${context.profile.runs}`),
      );
      const store_ = figures.store!;
      const raw_ = figures.raw;
      const results: Measurement[] = [
        {
          metric: `total, ${steps} steps`,
          value: store_.totalMs!,
          unit: 'ms',
          raw: raw_?.totalMs ?? null,
          target: { kind: 'ratio-max', limit: 2 },
          note: 'raw: the 2 new rows and the info row in one transaction (one commit) per step',
        },
        {
          metric: 'step growth (last 10 ÷ first 10)',
          value: store_.growth!,
          unit: '×',
          target: { kind: 'max', limit: 1.5, unit: '' },
          ...(raw_ ? { note: `raw append-only: ${raw_.growth!.toFixed(2)}×` } : {}),
        },
      ];
      return results;
    });
  },
};
