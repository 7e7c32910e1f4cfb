import { conversation } from '../data.js';
import { medianOfRuns, timeMs } from '../measure.js';
import { type Workload, withFreshBackend } from '../workload.js';

/**
 * (e) Resuming a long agent: `loadMessages` of a 2,000-message conversation.
 * The raw baseline selects the same rows in order and parses each.
 */
export const loadMessagesWorkload: Workload = {
  id: 'e-load-messages',
  title: 'loadMessages of a long conversation',
  touchesEvents: false,
  async run(context) {
    const { messages: count } = context.profile.loadMessages;
    const messages = conversation(count);
    const agentId = 'long-agent';

    return withFreshBackend(context, 'load_messages', async ({ store, raw }) => {
      context.phase(`saving ${count} messages`);
      await store.saveMessages(agentId, messages);
      await raw?.tables?.insertMessages(agentId, 0, messages);
      const times = await medianOfRuns(
        Math.max(5, context.profile.runs),
        {
          store: async () => ({ ms: await timeMs(() => store.loadMessages(agentId)) }),
          raw: raw?.tables
            ? async () => ({ ms: await timeMs(() => raw.tables!.loadMessages(agentId)) })
            : undefined,
        },
        (run) => context.phase(run < 0 ? 'warm-up' : `load ${run + 1}`),
      );
      return [
        {
          metric: `loadMessages (${count} messages)`,
          value: times.store!.ms!,
          unit: 'ms',
          raw: times.raw?.ms ?? null,
          target: { kind: 'ratio-max', limit: 1.5 },
        },
      ];
    });
  },
};
