import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import { ChildScript } from '../../child/sqlite-child-process.js';

let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kode-sqlite-locks-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A database file with the store's schema in place (child processes then race only for locks). */
async function freshDatabase(): Promise<string> {
  const dir = join(root, `t${++counter}`);
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'agents.db');
  const store = new SqliteStore(path);
  await store.list();
  await store.close();
  return path;
}

function lockRow(path: string, agentId: string): { owner: string; expires_at_ms: number } | undefined {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT owner, expires_at_ms FROM agent_locks WHERE agent_id = ?').get(agentId) as
      | { owner: string; expires_at_ms: number }
      | undefined;
  } finally {
    db.close();
  }
}

describe('SqliteStore locks across processes', () => {
  it('4 processes x 100 increments under acquireAgentLock end at exactly 400', async () => {
    const path = await freshDatabase();
    const counterFile = join(root, `counter-${counter}`);
    await writeFile(counterFile, '0');
    const children = Array.from({ length: 4 }, () =>
      ChildScript.start('sqlite-lock-counter.ts', [path, counterFile, '100']),
    );
    try {
      await Promise.all(children.map((child) => child.waitFor('ready')));
      for (const child of children) child.send('go');
      await Promise.all(children.map((child) => child.waitFor('done')));
      expect(Number(await readFile(counterFile, 'utf8'))).toBe(400);
      expect(lockRow(path, 'shared-counter')).toBeUndefined();
    } finally {
      await Promise.all(children.map((child) => child.kill()));
    }
  }, 120_000);

  it("takes over a SIGKILLed holder's lock once its lease has run out, not before", async () => {
    const path = await freshDatabase();
    // Long enough that the live child (renewing every third of it) keeps the lock while
    // this process tries for it, even when a loaded machine delays a renewal by seconds.
    const leaseMs = 3_000;
    const holder = ChildScript.start('sqlite-lock-holder.ts', [path, 'crashing', String(leaseMs)]);
    const store = new SqliteStore(path);
    try {
      await holder.waitFor('acquired');
      await expect(store.acquireAgentLock('crashing', 100)).rejects.toMatchObject({
        code: 'KODE_LOCK_TIMEOUT',
        agentId: 'crashing',
        timeoutMs: 100,
      });
      await holder.kill('SIGKILL');
      expect((await holder.exited).signal).toBe('SIGKILL');
      const orphan = lockRow(path, 'crashing');
      expect(orphan).toBeDefined();
      const release = await store.acquireAgentLock('crashing', 5 * leaseMs);
      // The dead holder's lease was honoured to its end, then handed over.
      expect(Date.now()).toBeGreaterThanOrEqual(orphan!.expires_at_ms);
      expect(lockRow(path, 'crashing')!.owner).not.toBe(orphan!.owner);
      await release();
      expect(lockRow(path, 'crashing')).toBeUndefined();
    } finally {
      await holder.kill();
      await store.close();
    }
  }, 60_000);

  it('hands the lock to a waiting caller when the other process releases it', async () => {
    const path = await freshDatabase();
    const holder = ChildScript.start('sqlite-lock-holder.ts', [path, 'handover']);
    const store = new SqliteStore(path);
    try {
      await holder.waitFor('acquired');
      let granted = false;
      const waiting = store.acquireAgentLock('handover', 30_000).then((release) => {
        granted = true;
        return release;
      });
      // The store keeps serving while one of its callers waits for a lock.
      await store.saveMessages('handover', [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
      expect(await store.loadMessages('handover')).toHaveLength(1);
      expect(granted).toBe(false);
      holder.send('release');
      await holder.waitFor('released');
      const release = await waiting;
      await release();
    } finally {
      await holder.kill();
      await store.close();
    }
  }, 60_000);
});

describe('SqliteStore locks across store objects', () => {
  it('renews a held lock so it outlives its lease', async () => {
    const path = await freshDatabase();
    const holder = new SqliteStore({ path, lockLeaseMs: 200 });
    const other = new SqliteStore({ path, lockLeaseMs: 200 });
    const release = await holder.acquireAgentLock('renewed');
    await expect(other.acquireAgentLock('renewed', 1000)).rejects.toMatchObject({
      code: 'KODE_LOCK_TIMEOUT',
    });
    await release();
    const second = await other.acquireAgentLock('renewed', 1000);
    await second();
    await holder.close();
    await other.close();
  });

  it('excludes per exact agent id', async () => {
    const path = await freshDatabase();
    const a = new SqliteStore(path);
    const b = new SqliteStore(path);
    const held = await a.acquireAgentLock('agent');
    const others = await Promise.all(
      ['agent/', 'Agent', 'agent ', 'agen', 'agent/fork-1', '%', 'agent\u{1F600}'].map((id) =>
        b.acquireAgentLock(id, 0),
      ),
    );
    await expect(b.acquireAgentLock('agent', 0)).rejects.toMatchObject({ code: 'KODE_LOCK_TIMEOUT' });
    for (const release of others) await release();
    await held();
    await a.close();
    await b.close();
  });

  it('makes release idempotent and never frees a later holder', async () => {
    const path = await freshDatabase();
    const a = new SqliteStore(path);
    const b = new SqliteStore(path);
    const first = await a.acquireAgentLock('once');
    await first();
    await first();
    const second = await b.acquireAgentLock('once', 1000);
    await first();
    await expect(a.acquireAgentLock('once', 0)).rejects.toMatchObject({ code: 'KODE_LOCK_TIMEOUT' });
    await second();
    await a.close();
    await b.close();
  });

  it('refuses a timeout that is not a non-negative number', async () => {
    const store = new SqliteStore(await freshDatabase());
    for (const timeoutMs of [-1, Number.NaN, '10']) {
      await expect(store.acquireAgentLock('x', timeoutMs as number)).rejects.toMatchObject({
        code: 'KODE_VALIDATION',
      });
    }
    await expect(store.acquireAgentLock('', 10)).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    await store.close();
  });

  it('releases held locks on close and fails its waiting callers', async () => {
    const path = await freshDatabase();
    const holder = new SqliteStore(path);
    const waiter = new SqliteStore(path);
    await holder.acquireAgentLock('closing');
    const waiting = waiter.acquireAgentLock('closing', 30_000);
    await waiter.close();
    await expect(waiting).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    await holder.close();
    expect(lockRow(path, 'closing')).toBeUndefined();
    const third = new SqliteStore(path);
    const release = await third.acquireAgentLock('closing', 0);
    await release();
    await third.close();
  });
});
