import { describe, expect, it } from 'vitest';
import { MongoStore } from '../../../adapters/mongo/index.js';
import { nextBackoff } from '../../../adapters/mongo/mongo-connection.js';
import { claimLeasePipeline, renewLeasePipeline } from '../../../adapters/mongo/mongo-lock.js';
import { describeMongo, describeMongoWith, useTestDatabase, withAdminClient } from '../../helpers/mongo.js';

/**
 * Lease-document locks. The update pipelines and the backoff are plain data
 * and arithmetic, checked here; exclusion, expiry and renewal need a server.
 */

describe('lease pipelines', () => {
  it('claims only a free lease, judged by the server clock, for exactly this owner', () => {
    const [stage] = claimLeasePipeline('host:1:uuid', 2_000);
    const free = { $lte: [{ $ifNull: ['$expiresAt', new Date(0)] }, '$$NOW'] };
    expect(stage).toEqual({
      $set: {
        owner: { $cond: [free, { $literal: 'host:1:uuid' }, '$owner'] },
        expiresAt: { $cond: [free, { $add: ['$$NOW', 2_000] }, '$expiresAt'] },
      },
    });
  });

  it('an owner string starting with "$" stays a literal, never a field path', () => {
    const [stage] = claimLeasePipeline('$expiresAt', 1_000);
    expect(JSON.stringify(stage)).toContain('{"$literal":"$expiresAt"}');
  });

  it('renewal extends from the server clock', () => {
    expect(renewLeasePipeline(900)).toEqual([{ $set: { expiresAt: { $add: ['$$NOW', 900] } } }]);
  });
});

describe('backoff while waiting for a lock', () => {
  it('grows by half, caps at the maximum and never sleeps past the deadline', () => {
    expect(nextBackoff(10, 1_000)).toBe(15);
    expect(nextBackoff(400, 1_000)).toBe(500);
    expect(nextBackoff(400, 120)).toBe(120);
    expect(nextBackoff(10, -5)).toBe(0);
  });
});

describeMongo('lease locks against a server', () => {
  const place = useTestDatabase('locks');
  // A live holder renews every third of its lease; it loses the lock only if a renewal
  // (a timer, then a round trip to the server) comes two thirds of a lease late. 3 s
  // leaves a loaded machine 2 s for that.
  const LEASE_MS = 3_000;
  const open = (leaseMs = LEASE_MS) =>
    new MongoStore({ uri: place.url, dbName: place.dbName, lockLeaseMs: leaseMs });

  it('a lock taken through one store object times out in another, and is free once released', async () => {
    const [a, b] = [open(), open()];
    const release = await a.acquireAgentLock('agent', 1_000);
    await expect(b.acquireAgentLock('agent', 300)).rejects.toMatchObject({
      code: 'KODE_LOCK_TIMEOUT',
      timeoutMs: 300,
    });
    await release();
    const again = await b.acquireAgentLock('agent', 1_000);
    await again();
    await Promise.all([a.close(), b.close()]);
  });

  it('a live holder keeps its lock well past one lease (renewal), and a lost holder frees it one lease later', async () => {
    const [holder, waiter] = [open(), open()];
    await holder.acquireAgentLock('renewed', 1_000);
    // Past one lease: without renewal the lock would be free by now.
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 1.5));
    await expect(waiter.acquireAgentLock('renewed', 100)).rejects.toMatchObject({
      code: 'KODE_LOCK_TIMEOUT',
    });
    // Simulate a dead holder: the lease document stays, nobody renews it.
    await withAdminClient(async (client) => {
      await client
        .db(place.dbName)
        .collection<{ _id: string }>('kode_locks')
        .updateOne({ _id: 'renewed' }, { $set: { owner: 'dead-process' } });
    });
    const release = await waiter.acquireAgentLock('renewed', LEASE_MS * 5);
    await release();
    await Promise.all([holder.close(), waiter.close()]);
  });

  it('the lock collection has its TTL index for clean-up', async () => {
    const store = open();
    await store.open();
    const indexes = await withAdminClient((client) =>
      client.db(place.dbName).collection('kode_locks').indexes(),
    );
    expect(indexes.find((index) => index.name === 'locks_expiry')).toMatchObject({ expireAfterSeconds: 0 });
    await store.close();
  });

  describeMongoWith('ttlMonitor', "the server's TTL monitor", () => {
    it('removes a lease document that expired and was never released (the monitor runs every 60 s)', async () => {
      const store = open();
      await store.open();
      type Lease = { _id: string; owner: string; expiresAt: Date };
      const abandoned = async () =>
        withAdminClient((client) =>
          client.db(place.dbName).collection<Lease>('kode_locks').countDocuments({ _id: 'abandoned' }),
        );
      await withAdminClient((client) =>
        client
          .db(place.dbName)
          .collection<Lease>('kode_locks')
          .insertOne({ _id: 'abandoned', owner: 'dead-process', expiresAt: new Date(Date.now() - 1_000) }),
      );
      // Polls a count, never a duration: up to two monitor passes and a margin.
      let left = await abandoned();
      for (let poll = 0; poll < 140 && left > 0; poll++) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        left = await abandoned();
      }
      expect(left).toBe(0);
      await store.close();
    }, 160_000);
  });
});
