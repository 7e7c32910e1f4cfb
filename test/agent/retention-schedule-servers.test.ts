import { expect, it } from 'vitest';
import { MongoStore } from '../../adapters/mongo/index.js';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { timeline } from '../../conformance/store/sample-data.js';
import type { AgentStore } from '../../src/agent/agent-store.js';
import type { RetentionRound } from '../../src/agent/retention-schedule.js';
import { describeMongo, useTestDatabase } from '../helpers/mongo.js';
import { describePostgres, useTestSchema } from '../helpers/postgres.js';

/**
 * The schedule's lease on the server backends: two stores over one database
 * (as two processes of a fleet would be) take turns through the backend's own
 * agent locks under a key no agent id can be, so exactly one runs the rounds,
 * the other takes over once it stops, and the key never shows as an agent.
 * (test/agent/retention-schedule.test.ts covers the schedule itself, and two
 * processes on one SQLite file.)
 */

/** Resolves with the first `count` rounds `onRun` reports. */
function rounds(count: number): { onRun: (round: RetentionRound) => void; done: Promise<RetentionRound[]> } {
  const seen: RetentionRound[] = [];
  let finish: (value: RetentionRound[]) => void = () => undefined;
  const done = new Promise<RetentionRound[]>((resolve) => {
    finish = resolve;
  });
  return {
    onRun: (round) => {
      seen.push(round);
      if (seen.length === count) finish([...seen]);
    },
    done,
  };
}

async function oneHolderAtATime(open: () => AgentStore): Promise<void> {
  const first = open();
  const second = open();
  try {
    for (let seq = 1; seq <= 4; seq++) await first.appendEvent('agt-sched', timeline(seq));
    const policy = { events: { keepNewest: 1 } };
    const leader = rounds(1);
    const a = first.scheduleRetention({ policy, intervalMs: 5, onRun: leader.onRun });
    expect((await leader.done)[0]).toMatchObject({ ran: true, result: { events: 3 } });

    const follower = rounds(2);
    const b = second.scheduleRetention({ policy, intervalMs: 5, onRun: follower.onRun });
    expect((await follower.done).map((round) => round.ran)).toEqual([false, false]);
    expect(b.metrics()).toMatchObject({ runs: 0, holdsLease: false });

    // The lease key is no agent.
    expect(await second.list()).toEqual(['agt-sched']);
    expect((await second.getMetrics()).storage.totalAgents).toBe(1);

    // Once the holder stops, the other takes the next turn.
    const takeover = rounds(1);
    await b.stop();
    await a.stop();
    const c = second.scheduleRetention({ policy, intervalMs: 5, onRun: takeover.onRun });
    expect((await takeover.done)[0]?.ran).toBe(true);
    await c.stop();
  } finally {
    await first.close();
    await second.close();
  }
}

describePostgres('scheduled retention on PostgreSQL', () => {
  const place = useTestSchema('retention_schedule');
  it('lets one store of two sharing a schema hold the turn, and hands it over when it stops', async () => {
    await oneHolderAtATime(() => new PostgresStore({ connection: place.url, schema: place.schema }));
  });
});

describeMongo('scheduled retention on MongoDB', () => {
  const place = useTestDatabase('retention_schedule');
  it('lets one store of two sharing a database hold the turn, and hands it over when it stops', async () => {
    await oneHolderAtATime(() => new MongoStore({ uri: place.url, dbName: place.dbName }));
  });
});
