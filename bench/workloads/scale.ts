import pLimit from 'p-limit';
import type { Message, Timeline } from '../../src/types.js';
import type { BenchStore } from '../backends.js';
import type { Measurement } from '../bench-result.js';
import { agentInfo, conversation, timelines } from '../data.js';
import { collectGarbage, mean } from '../measure.js';
import type { RawAgentTables, RawEventLog } from '../raw/raw-baseline.js';
import { type Workload, withFreshBackend } from '../workload.js';

/**
 * (j) Scale (issue 20, part 3): a fleet of agents each holding a whole
 * conversation, `steps` steps each, the SDK's step (as in a-conversation:
 * the whole message list to `saveMessages`, then `saveInfo`, with the
 * step's events appended without awaiting them, as the SDK's event bus
 * does), `concurrency` agents at a time. The database grows to
 * agents × steps × 2 messages; what must not grow is the cost of a step.
 *
 * The agents run a tenth at a time (a decile), each decile timed as a
 * whole: its cost per step is its wall time ÷ its steps, so every decile
 * has the same start and tail and only the database under it differs.
 * After each decile of the store, the raw driver runs the same number of
 * agents into its own tables (one transaction with the two new message rows
 * and the info row, one with the step's events: a hand-written append-only
 * store at the same durability), so both databases grow in step.
 *
 * `npm run bench -- --large --only j` is 10,000 agents × 300 steps
 * (3,000,000 steps per backend); `--scale-agents N` runs another number.
 */

/** Events the SDK emits per step here (the peer comparison's count). */
const EVENTS_PER_STEP = 6;
const DECILES = 10;

function scaleAgentId(index: number): string {
  return `scale-${String(index).padStart(6, '0')}`;
}

/** What every agent of the run says: the same bytes, different ids. */
interface Script {
  steps: number;
  messages: Message[];
  events: Timeline[];
}

async function storeAgent(store: BenchStore, agentId: string, script: Script): Promise<number> {
  const started = performance.now();
  for (let step = 1; step <= script.steps; step++) {
    const sent = script.messages.slice(0, step * 2);
    const info = agentInfo(agentId, { messageCount: sent.length, seq: step * EVENTS_PER_STEP });
    const events = script.events
      .slice((step - 1) * EVENTS_PER_STEP, step * EVENTS_PER_STEP)
      .map((entry) => store.appendEvent(agentId, entry));
    await store.saveMessages(agentId, sent);
    await store.saveInfo(agentId, info);
    // The next step starts once this one's events are stored: a backlog must not hide in a queue.
    await Promise.all(events);
  }
  return performance.now() - started;
}

async function rawAgent(
  tables: RawAgentTables,
  events: RawEventLog,
  agentId: string,
  script: Script,
): Promise<number> {
  const started = performance.now();
  for (let step = 1; step <= script.steps; step++) {
    const fresh = script.messages.slice(step * 2 - 2, step * 2);
    const info = agentInfo(agentId, { messageCount: step * 2, seq: step * EVENTS_PER_STEP });
    const stepEvents = script.events.slice((step - 1) * EVENTS_PER_STEP, step * EVENTS_PER_STEP);
    await Promise.all([
      tables.appendStep(agentId, { firstPosition: step * 2 - 2, messages: fresh, info }),
      events.appendAllAtOnce(agentId, stepEvents),
    ]);
  }
  return performance.now() - started;
}

/** Runs `run` for agents `from .. to-1`, `concurrency` at a time; resolves with the wall time and the mean agent time. */
async function timeAgents(
  from: number,
  to: number,
  concurrency: number,
  run: (index: number) => Promise<number>,
): Promise<{ wallMs: number; agentMs: number }> {
  collectGarbage();
  const limit = pLimit(concurrency);
  const started = performance.now();
  const agentMs = await Promise.all(Array.from({ length: to - from }, (_, i) => limit(() => run(from + i))));
  return { wallMs: performance.now() - started, agentMs: mean(agentMs) };
}

export const scaleWorkload: Workload = {
  id: 'j-scale',
  title: 'scale: many agents × a whole conversation each, cost per step from the first agent to the last',
  touchesEvents: true,
  async run(context) {
    const { agents, steps, concurrency } = context.profile.scale;
    if (context.backend.family === 'memory') {
      return { skipped: 'the reference store keeps every agent in the heap: nothing grows but the process' };
    }
    if (context.backend.hybrid) {
      return { skipped: 'measured on the database modes, where every step and event is a row (issue 20)' };
    }
    const script: Script = {
      steps,
      messages: conversation(steps * 2),
      events: timelines(steps * EVENTS_PER_STEP),
    };
    const perDecile = Math.max(1, Math.floor(agents / DECILES));
    const total = perDecile * DECILES;
    return withFreshBackend(context, 'scale', async ({ store, raw }) => {
      const rawTables = raw?.tables;
      const rawEvents = raw?.events;
      // A warm-up pair of agents outside the deciles (JIT, statements, connections).
      const warmupSteps = Math.min(steps, 20);
      const warmup: Script = { ...script, steps: warmupSteps };
      await storeAgent(store, 'scale-warmup', warmup);
      if (rawTables && rawEvents) await rawAgent(rawTables, rawEvents, 'scale-warmup', warmup);

      const storeMs: number[] = [];
      const rawMs: number[] = [];
      const storeLatency: number[] = [];
      for (let decile = 0; decile < DECILES; decile++) {
        const from = decile * perDecile;
        const to = from + perDecile;
        context.phase(`decile ${decile + 1}/${DECILES}: agents ${from}..${to - 1} × ${steps} steps`);
        const ours = await timeAgents(from, to, concurrency, (index) =>
          storeAgent(store, scaleAgentId(index), script),
        );
        storeMs.push(ours.wallMs / (perDecile * steps));
        storeLatency.push(ours.agentMs / steps);
        if (rawTables && rawEvents) {
          context.phase(`decile ${decile + 1}/${DECILES}: raw`);
          const theirs = await timeAgents(from, to, concurrency, (index) =>
            rawAgent(rawTables, rawEvents, scaleAgentId(index), script),
          );
          rawMs.push(theirs.wallMs / (perDecile * steps));
        }
      }
      const size = `${total} agents × ${steps} steps, ${concurrency} agents at a time`;
      const list = (values: readonly number[]) => values.map((ms) => ms.toFixed(2)).join(' ');
      const results: Measurement[] = [
        {
          metric: `ms per step, first decile (${size})`,
          value: storeMs[0]!,
          unit: 'ms',
          raw: rawMs[0] ?? null,
          note:
            'wall time of the decile ÷ its steps; a step = saveMessages(whole list) + saveInfo + ' +
            `${EVENTS_PER_STEP} events; raw: messages + info in one transaction, the events in another`,
        },
        {
          metric: `ms per step, last decile (${size})`,
          value: storeMs[DECILES - 1]!,
          unit: 'ms',
          raw: rawMs[DECILES - 1] ?? null,
          note: `every decile, ms per step: ours ${list(storeMs)}${rawMs.length > 0 ? `; raw ${list(rawMs)}` : ''}`,
        },
        {
          metric: 'step cost growth (last decile ÷ first)',
          value: storeMs[DECILES - 1]! / storeMs[0]!,
          unit: '×',
          target: { kind: 'max', limit: 1.5, unit: '' },
          note:
            (rawMs.length > 0 ? `raw: ${(rawMs[DECILES - 1]! / rawMs[0]!).toFixed(2)}×; ` : '') +
            `an agent's own mean step, by decile: ${list(storeLatency)} ms`,
        },
      ];
      return results;
    });
  },
};
