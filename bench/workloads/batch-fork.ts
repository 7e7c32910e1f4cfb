import { agentInfo, conversation, todoSnapshot, toolCallRecord } from '../data.js';
import { medianOfRuns, timeMs } from '../measure.js';
import { type Workload, withFreshBackend } from '../workload.js';

/**
 * (f) `batchFork`: copies of a 600-message agent (its tool calls, info and
 * todos too) in one call. The raw baseline is the set-based copy the
 * database can do at best: one `INSERT ... SELECT` per table and fork, in one
 * transaction.
 */
export const batchForkWorkload: Workload = {
  id: 'f-batch-fork',
  title: 'batchFork of a long agent',
  touchesEvents: false,
  async run(context) {
    const { messages: count, toolCalls, copies } = context.profile.fork;
    const messages = conversation(count);
    const records = Array.from({ length: toolCalls }, (_, i) => toolCallRecord(i));
    const sourceId = 'fork-source';
    const info = agentInfo(sourceId, { messageCount: count });

    return withFreshBackend(context, 'batch_fork', async ({ store, raw }) => {
      context.phase(`saving the ${count}-message source agent`);
      await store.saveMessages(sourceId, messages);
      await store.saveToolCallRecords(sourceId, records);
      await store.saveTodos(sourceId, todoSnapshot());
      await store.saveInfo(sourceId, info);
      const tables = raw?.tables;
      if (tables) {
        await tables.insertMessages(sourceId, 0, messages);
        await tables.upsertToolCalls(sourceId, 0, records);
        await tables.upsertInfo(sourceId, info);
      }
      const copiesOf = (run: number) => (run < 0 ? Math.max(1, Math.floor(copies / 4)) : copies);
      const times = await medianOfRuns(
        context.profile.runs,
        {
          store: async (run) => ({ ms: await timeMs(() => store.batchFork(sourceId, copiesOf(run))) }),
          raw: tables
            ? async (run) => {
                const forkIds = Array.from(
                  { length: copiesOf(run) },
                  (_, i) => `${sourceId}/fork-${run}-${i}`,
                );
                return { ms: await timeMs(() => tables.copyAgent(sourceId, forkIds)) };
              }
            : undefined,
        },
        (run) => context.phase(run < 0 ? 'warm-up' : `fork ${copies} copies, run ${run + 1}`),
      );
      return [
        {
          metric: `batchFork ${copies} copies of ${count} messages + ${toolCalls} calls`,
          value: times.store!.ms!,
          unit: 'ms',
          raw: times.raw?.ms ?? null,
          target: { kind: 'ratio-max', limit: 2 },
          note: 'raw: INSERT ... SELECT per table and fork, one transaction',
        },
      ];
    });
  },
};
