import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { agentInfo, timeline } from '../../conformance/store/sample-data.js';
import { assertAgentId } from '../../src/agent/agent-id.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import {
  RETENTION_LEASE_KEY,
  type RetentionRound,
  type RetentionScheduleOptions,
} from '../../src/agent/retention-schedule.js';
import { ChildScript } from '../child/sqlite-child-process.js';

/**
 * Scheduled retention (`store.scheduleRetention`): rounds run in the
 * background, one process of those sharing a database runs them at a time,
 * errors never leave the schedule, and close() stops it. Rounds are awaited
 * through their callbacks; nothing depends on how long anything takes.
 */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kode-retention-schedule-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Resolves with the rounds seen once `count` have ended. */
function rounds(count: number): {
  options: Pick<RetentionScheduleOptions, 'onRun'>;
  done: Promise<RetentionRound[]>;
} {
  const seen: RetentionRound[] = [];
  let finish: (rounds: RetentionRound[]) => void = () => undefined;
  const done = new Promise<RetentionRound[]>((resolve) => {
    finish = resolve;
  });
  return {
    options: {
      onRun: (round) => {
        seen.push(round);
        if (seen.length === count) finish([...seen]);
      },
    },
    done,
  };
}

describe('store.scheduleRetention', () => {
  it('runs the policy in the background, round after round, and close() stops it', async () => {
    const store = new MemoryStore();
    for (let seq = 1; seq <= 5; seq++) await store.appendEvent('agt-a', timeline(seq));
    const { options, done } = rounds(2);
    const schedule = store.scheduleRetention({
      policy: { events: { keepNewest: 2 } },
      intervalMs: 5,
      ...options,
    });
    const [first, second] = await done;
    expect(first).toMatchObject({ ran: true, result: { events: 3 } });
    expect(second).toMatchObject({ ran: true, result: { events: 0 } });
    expect(schedule.metrics()).toMatchObject({ runs: 2, skipped: 0, failures: 0, holdsLease: true });
    await store.close();
    expect(schedule.metrics().holdsLease).toBe(false);
    // Stopping again is harmless.
    await schedule.stop();
  });

  it('lets one store of several sharing a database hold the turn; the others skip until it stops', async () => {
    const first = new MemoryStore();
    const second = new MemoryStore({ database: first.database });
    const leader = rounds(1);
    const a = first.scheduleRetention({
      policy: { events: { keepNewest: 1 } },
      intervalMs: 2,
      ...leader.options,
    });
    await leader.done;
    const follower = rounds(2);
    const b = second.scheduleRetention({
      policy: { events: { keepNewest: 1 } },
      intervalMs: 2,
      ...follower.options,
    });
    expect((await follower.done).map((round) => round.ran)).toEqual([false, false]);
    expect(b.metrics()).toMatchObject({ runs: 0, skipped: 2, holdsLease: false });
    await a.stop();
    const takeover = rounds(1);
    const c = second.scheduleRetention({
      policy: { events: { keepNewest: 1 } },
      intervalMs: 2,
      ...takeover.options,
    });
    await b.stop();
    expect((await takeover.done)[0]?.ran).toBe(true);
    await c.stop();
    await first.close();
    await second.close();
  });

  it('reports a failing round to onError and the metrics, and goes on with the next', async () => {
    const path = join(dir, 'failing.db');
    const store = new SqliteStore({ path });
    await store.saveInfo('agt-a', agentInfo('agt-a'));
    // A real fault: the table the prune scans is gone.
    const raw = new Database(path);
    raw.exec('ALTER TABLE agents RENAME TO agents_away');
    const errors: unknown[] = [];
    let reached: () => void = () => undefined;
    const twoErrors = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const schedule = store.scheduleRetention({
      policy: { inactiveBefore: Date.now() },
      intervalMs: 2,
      onError: (error) => {
        errors.push(error);
        if (errors.length === 2) reached();
      },
      // A callback that throws changes nothing.
      onRun: () => {
        throw new Error('not the schedule');
      },
    });
    await twoErrors;
    expect(errors[0]).toMatchObject({
      name: expect.stringMatching(/Error$/),
      code: expect.stringMatching(/^KODE_/),
    });
    expect(schedule.metrics()).toMatchObject({ runs: 0, failures: 2 });
    raw.exec('ALTER TABLE agents_away RENAME TO agents');
    raw.close();
    const recovered = new Promise<void>((resolve) => {
      const poll = () => (schedule.metrics().runs > 0 ? resolve() : setImmediate(poll));
      poll();
    });
    await recovered;
    await store.close();
  });

  it('refuses bad options with ValidationError, and a read-only or closed store (UnsupportedError, StoreClosedError)', async () => {
    const store = new MemoryStore();
    const policy = { events: { keepNewest: 1 } };
    const bad: unknown[] = [
      null,
      { policy, intervalMs: 0 },
      { policy, intervalMs: 1.5 },
      { policy, intervalMs: 2 ** 31 },
      { policy, intervalMs: '60000' },
      { policy: { events: {} }, intervalMs: 1000 },
      { policy, intervalMs: 1000, batchSize: 0 },
      { policy, intervalMs: 1000, onRun: 'log' },
      { policy, intervalMs: 1000, onError: 1 },
    ];
    for (const options of bad) {
      expect(
        () => store.scheduleRetention(options as RetentionScheduleOptions),
        JSON.stringify(options),
      ).toThrow(expect.objectContaining({ code: 'KODE_VALIDATION' }));
    }
    await store.close();
    expect(() => store.scheduleRetention({ policy, intervalMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'KODE_STORE_CLOSED' }),
    );
    const path = join(dir, 'read-only.db');
    await new SqliteStore({ path }).close();
    const readOnly = new SqliteStore({ path, readOnly: true });
    expect(() => readOnly.scheduleRetention({ policy, intervalMs: 1000 })).toThrow(/read-only/);
    await readOnly.close();
  });

  it('takes its lease under a key no agent id can be, which no listing shows', async () => {
    expect(() => assertAgentId(RETENTION_LEASE_KEY, 'test')).toThrow(
      expect.objectContaining({ code: 'KODE_VALIDATION' }),
    );
    const store = new SqliteStore({ path: join(dir, 'lease.db') });
    await store.saveInfo('agt-a', agentInfo('agt-a'));
    const { options, done } = rounds(1);
    store.scheduleRetention({ policy: { events: { keepNewest: 1 } }, intervalMs: 2, ...options });
    await done;
    expect(await store.list()).toEqual(['agt-a']);
    expect((await store.getMetrics()).storage.totalAgents).toBe(1);
    await store.close();
  });
});

describe('scheduled retention: two processes on one SQLite file', () => {
  it('only one process runs the rounds; when it closes, the other takes over; each exits after close()', async () => {
    const path = join(dir, 'fleet.db');
    await new SqliteStore({ path }).open().then((store) => store.close());
    // The leader keeps the lease by renewing it every third of it while the other process
    // tries for it every 10 ms; a 2 s lease was lost (and [0, 3] failed) by a renewal 1.3 s
    // late on a loaded machine. No step here waits for a lease to run out: close gives it back.
    const one = ChildScript.start('sqlite-retention-scheduler.ts', [path, '10', '30000']);
    const two = ChildScript.start('sqlite-retention-scheduler.ts', [path, '10', '30000']);
    try {
      await Promise.all([one.waitFor('scheduled'), two.waitFor('scheduled')]);
      // Three rounds of each process: whichever took the lease first ran all of its own.
      const seen = async (child: ChildScript) => {
        const outcomes: string[] = [];
        for (let i = 0; i < 3; i++) outcomes.push(await child.waitFor('round '));
        return outcomes;
      };
      const [first, second] = await Promise.all([seen(one), seen(two)]);
      const ran = (outcomes: string[]) => outcomes.filter((line) => line === 'round ran').length;
      expect([ran(first), ran(second)].sort()).toEqual([0, 3]);
      const [leader, follower] = ran(first) === 3 ? [one, two] : [two, one];

      leader.send('close');
      await leader.waitFor('closed');
      // No timer of the schedule is left: the process ends by itself.
      expect(await leader.exited).toEqual({ code: 0, signal: null });
      // The lease was given back: the other process runs a round now.
      for (;;) if ((await follower.waitFor('round ')) === 'round ran') break;
      follower.send('close');
      await follower.waitFor('closed');
      expect(await follower.exited).toEqual({ code: 0, signal: null });
      expect(`${leader.errors}${follower.errors}`).toBe('');
    } finally {
      await Promise.all([one.kill(), two.kill()]);
    }
  }, 60_000);
});
