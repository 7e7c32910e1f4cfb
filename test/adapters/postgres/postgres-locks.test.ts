import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import type { AgentInfo } from '../../../src/types.js';
import { adminQuery, describePostgres, lockInChildProcess, useTestSchema } from '../../helpers/postgres.js';

/**
 * PostgresStore's agent locks across processes: lease rows keyed by the exact
 * agent id, renewed while held, freed when the holder dies, and never holding
 * a pooled connection.
 */

const run = promisify(execFile);
const COUNTER_SCRIPT = fileURLToPath(new URL('../../child/postgres-lock-counter.ts', import.meta.url));

let counter = 0;
const agentId = (label: string) => `${label}-${process.pid}-${++counter}`;

const info = (id: string, messageCount = 0): AgentInfo => ({
  agentId: id,
  templateId: 'lock-test',
  createdAt: '2025-01-01T00:00:00.000Z',
  lineage: [],
  configVersion: 'v1',
  messageCount,
  lastSfpIndex: -1,
});

describePostgres('PostgresStore locks', () => {
  const place = useTestSchema('locks');
  const stores: PostgresStore[] = [];
  const open = (options: { max?: number; lockLeaseMs?: number; applicationName?: string } = {}) => {
    const store = new PostgresStore({
      connection: {
        connectionString: place.url,
        max: options.max ?? 4,
        applicationName: options.applicationName ?? 'kode-store-test-locks',
      },
      schema: place.schema,
      lockLeaseMs: options.lockLeaseMs ?? 15_000,
    });
    stores.push(store);
    return store;
  };
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
  });

  it('serialises 4 processes × 100 increments under one agent lock: exactly 400', async () => {
    const store = open();
    const id = agentId('counter');
    await store.saveInfo(id, info(id, 0));
    await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ['--import', 'tsx', COUNTER_SCRIPT, place.url, place.schema, id, '100'], {
          timeout: 50_000,
        }),
      ),
    );
    expect((await store.loadInfo(id))?.messageCount).toBe(400);
  }, 55_000);

  it("takes over a SIGKILLed holder's lock once its lease expires", async () => {
    // Long enough that the live child (renewing every third of it) keeps the lock while
    // this process tries for it, even when a loaded machine delays a renewal by seconds.
    const leaseMs = 3_000;
    const store = open({ lockLeaseMs: leaseMs });
    const id = agentId('killed');
    const holder = lockInChildProcess(place.schema, id, leaseMs);
    await holder.acquired;
    // Held by a live process: refused.
    await expect(store.acquireAgentLock(id, 100)).rejects.toMatchObject({ code: 'KODE_LOCK_TIMEOUT' });
    await holder.kill();
    const release = await store.acquireAgentLock(id, leaseMs * 10);
    const rows = await adminQuery<{ owner: string }>(
      `SELECT owner FROM "${place.schema}".kode_agent_locks WHERE agent_id = $1`,
      [id],
    );
    expect(rows[0]?.owner).toContain(`:${process.pid}`);
    await release();
  });

  it('keeps a lock past its lease while the holder is alive (renewal)', async () => {
    // Renewed every third of the lease: the holder loses it only if a renewal
    // (a timer, then a statement on the shared server) comes two thirds of a
    // lease late. 2 s leaves a loaded machine 1.3 s for that; 300 ms left it 200 ms.
    const leaseMs = 2_000;
    const holderStore = open({ lockLeaseMs: leaseMs });
    const other = open({ lockLeaseMs: leaseMs });
    const id = agentId('renewed');
    const release = await holderStore.acquireAgentLock(id);
    // Waits three leases: without renewal the lease would have lapsed and the other store would get it.
    await expect(other.acquireAgentLock(id, leaseMs * 3)).rejects.toMatchObject({
      code: 'KODE_LOCK_TIMEOUT',
    });
    await release();
    const releaseOther = await other.acquireAgentLock(id, 1_000);
    await releaseOther();
  });

  it('does not stall other operations while 12 locks are held on a pool of 10', async () => {
    const applicationName = `kode-store-test-locks-pool-${process.pid}`;
    // A lease long enough that no renewal (every third of it) runs in this test: a renewal's
    // UPDATE in flight when pg_stat_activity is read would count as a busy connection.
    const store = open({ max: 10, applicationName, lockLeaseMs: 600_000 });
    const id = agentId('busy');
    await store.saveInfo(id, info(id));
    const releases = [];
    for (let i = 0; i < 12; i++) releases.push(await store.acquireAgentLock(`${id}-${i}`, 2_000));
    // Locks are rows, not sessions: nothing sits idle in a transaction holding them.
    const busy = await adminQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`,
      [applicationName],
    );
    expect(busy[0]?.n).toBe(0);
    expect(await store.loadInfo(id)).toEqual(info(id));
    await Promise.all(releases.map((release) => release()));
  });

  it('waits for a lock without holding a connection: other calls on a pool of 1 go on meanwhile', async () => {
    const holder = open();
    const waiterStore = open({ max: 1 });
    const id = agentId('waiting');
    await holder.saveInfo(id, info(id));
    const release = await holder.acquireAgentLock(id);
    const waiting = waiterStore.acquireAgentLock(id, 10_000);
    // The only connection is free between polls, so these complete while the acquire waits.
    expect(await waiterStore.loadInfo(id)).toEqual(info(id));
    expect(await waiterStore.exists(id)).toBe(true);
    let settled = false;
    void waiting.then(() => {
      settled = true;
    });
    expect(settled).toBe(false);
    await release();
    const releaseWaiter = await waiting;
    await releaseWaiter();
  });

  it('never lets two agent ids share a lock, even ids whose 32-bit hashes collide', async () => {
    const store = open();
    const [pair] = await adminQuery<{ ids: string[] }>(`
      SELECT array_agg(s ORDER BY s) AS ids FROM (
        SELECT 'collide-' || i AS s FROM generate_series(1, 200000) AS i
      ) AS candidates
      GROUP BY hashtext(s) HAVING count(*) > 1 LIMIT 1`);
    const [a, b] = pair?.ids ?? [];
    expect(a && b).toBeTruthy();
    const releaseA = await store.acquireAgentLock(a as string, 1_000);
    const releaseB = await store.acquireAgentLock(b as string, 500);
    await expect(store.acquireAgentLock(a as string, 50)).rejects.toMatchObject({
      code: 'KODE_LOCK_TIMEOUT',
    });
    await Promise.all([releaseA(), releaseB()]);
  });

  it('refuses a bad timeout with ValidationError and rejects waiters when the store closes', async () => {
    const store = open();
    const id = agentId('bad-timeout');
    await expect(store.acquireAgentLock(id, -1)).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    await expect(store.acquireAgentLock(id, Number.NaN)).rejects.toMatchObject({ code: 'KODE_VALIDATION' });

    const holder = open();
    const release = await holder.acquireAgentLock(id);
    // Close at varying moments, so that some waiters are asleep and some have a
    // statement on its way: all of them end with StoreClosedError, none holds a lease.
    for (let round = 0; round < 15; round++) {
      const closing = open({ max: 1 });
      // Outcomes are captured at once: the waiters settle while close() runs.
      const outcomes = [0, 1, 2].map(() =>
        closing.acquireAgentLock(id, 10_000).then(
          () => 'acquired',
          (error: { code?: string }) => error.code,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, round % 5));
      await closing.close();
      expect(await Promise.all(outcomes)).toEqual([
        'KODE_STORE_CLOSED',
        'KODE_STORE_CLOSED',
        'KODE_STORE_CLOSED',
      ]);
    }
    await release();
    const rows = await adminQuery(`SELECT 1 FROM "${place.schema}".kode_agent_locks WHERE agent_id = $1`, [
      id,
    ]);
    expect(rows).toEqual([]);
  });
});
