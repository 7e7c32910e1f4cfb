import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../adapters/mongo/index.js';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { agentInfo } from '../../conformance/store/sample-data.js';
import type { AgentStore } from '../../src/agent/agent-store.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import type { RetentionRound, RetentionScheduleOptions } from '../../src/agent/retention-schedule.js';
import { describePostgres, useTestSchema } from '../helpers/postgres.js';

/**
 * The stores' `retention` constructor option: the schedule starts with the
 * store and runs its rounds, close() stops it, and bad schedule options
 * reject the first operation with a ValidationError.
 */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kode-retention-option-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A schedule that prunes agents inactive since the cut-off; `ran` settles at its first round that ran. */
function schedule(cutOff: number): { retention: RetentionScheduleOptions; ran: Promise<RetentionRound> } {
  let settle: (round: RetentionRound) => void = () => undefined;
  const ran = new Promise<RetentionRound>((resolve) => {
    settle = resolve;
  });
  return {
    retention: {
      policy: { prefix: 'agt-opt-', inactiveBefore: cutOff },
      intervalMs: 2,
      onRun: (round) => {
        if (round.ran) settle(round);
      },
    },
    ran,
  };
}

/** Writes an old agent, then starts `open`'s store with a schedule that prunes it. */
async function prunesOnSchedule(open: (retention: RetentionScheduleOptions) => AgentStore, seed: AgentStore) {
  await seed.saveInfo('agt-opt-old', agentInfo('agt-opt-old'));
  await seed.close();
  await sleep(5);
  const { retention, ran } = schedule(Date.now());
  const store = open(retention);
  try {
    const round = await ran;
    expect(round.result?.agents).toBe(1);
    expect(await store.exists('agt-opt-old')).toBe(false);
  } finally {
    await store.close();
  }
}

const badOptions: unknown[] = [
  { policy: { inactiveBefore: 1 }, intervalMs: 0 },
  { policy: { events: {} }, intervalMs: 1000 },
  { policy: { inactiveBefore: 1 }, intervalMs: 1000, batchSize: 0 },
];

describe('the retention store option', () => {
  it('SqliteStore runs the schedule it was given, and close() stops it', async () => {
    const path = join(dir, 'scheduled.db');
    await prunesOnSchedule((retention) => new SqliteStore({ path, retention }), new SqliteStore({ path }));
  });

  it.each(badOptions)('SqliteStore rejects its first operation for retention %j', async (retention) => {
    const store = new SqliteStore({
      path: join(dir, 'bad.db'),
      retention: retention as RetentionScheduleOptions,
    });
    await expect(store.exists('agt-opt-a')).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    await store.close();
  });

  it.each(badOptions)('MongoStore rejects its first operation for retention %j', async (retention) => {
    // Port 1: nothing listens, and the options' error comes before any connection.
    const store = new MongoStore({
      uri: 'mongodb://127.0.0.1:1/',
      retention: retention as RetentionScheduleOptions,
    });
    await expect(store.exists('agt-opt-a')).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    await store.close();
  });
});

describePostgres('the retention store option on PostgreSQL', () => {
  const place = useTestSchema('retention_option');
  it('PostgresStore runs the schedule it was given, and close() stops it', async () => {
    await prunesOnSchedule(
      (retention) => new PostgresStore({ connection: place.url, schema: place.schema, retention }),
      new PostgresStore({ connection: place.url, schema: place.schema }),
    );
  });

  it.each(badOptions)('PostgresStore rejects its first operation for retention %j', async (retention) => {
    const store = new PostgresStore({
      connection: place.url,
      schema: place.schema,
      retention: retention as RetentionScheduleOptions,
    });
    await expect(store.exists('agt-opt-a')).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    await store.close();
  });
});

describe('a schedule whose policy is a function of the round start', () => {
  it('calls it at the start of each round, so relative times move with the rounds', async () => {
    const path = join(dir, 'relative.db');
    const store = new SqliteStore({ path });
    await store.saveInfo('agt-opt-rel', agentInfo('agt-opt-rel'));
    const starts: number[] = [];
    const rounds: RetentionRound[] = [];
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const written = Date.now();
    const schedule = store.scheduleRetention({
      // Inactive for 1 ms before the round: only a round started after the write removes the agent.
      policy: (now) => {
        starts.push(now);
        return { prefix: 'agt-opt-', inactiveBefore: now - 1 };
      },
      intervalMs: 2,
      onRun: (round) => {
        rounds.push(round);
        if (rounds.length === 3) finish();
      },
    });
    await done;
    await schedule.stop();
    // The first call is the check when the schedule starts; then one per round, at its start.
    expect(starts.slice(1, 4)).toEqual(rounds.map((round) => round.startedAt));
    expect(starts[0]).toBeGreaterThanOrEqual(written);
    expect(rounds.reduce((sum, round) => sum + (round.result?.agents ?? 0), 0)).toBe(1);
    expect(await store.exists('agt-opt-rel')).toBe(false);
    await store.close();
  });

  it('refuses a function that throws or gives a bad policy, with a ValidationError', () => {
    const store = new MemoryStore();
    const cause = new Error('no policy');
    expect(() =>
      store.scheduleRetention({
        policy: () => {
          throw cause;
        },
        intervalMs: 1000,
      }),
    ).toThrow(expect.objectContaining({ code: 'KODE_VALIDATION', cause }));
    expect(() => store.scheduleRetention({ policy: () => ({ events: {} }), intervalMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'KODE_VALIDATION' }),
    );
  });
});
