import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresKvBackend } from '../../adapters/postgres/postgres-kv.js';
import type { SqliteDatabase } from '../../adapters/sqlite/sqlite-config.js';
import { SqliteKvBackend } from '../../adapters/sqlite/sqlite-kv.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import type { KvSetManyItem, KvStore } from '../../src/kv/kv-types.js';
import {
  describePostgres,
  type RecordedStatement,
  recordingPool,
  useTestSchema,
} from '../helpers/postgres.js';

/**
 * getRecordCount and getNamespaces on 100,000 records answer from the
 * namespace counters and the partial expiry index, never by reading the
 * records: shown by the query plans of the statements the backends send.
 */

const RECORDS = 100_000;
const NAMESPACES = 10;
const EXPIRING = 40;

/** 100,000 records in 10 namespaces, 40 of them with a TTL (half of which have passed by `later`). */
async function fill(kv: KvStore, instanceId: string, now: { time: number }): Promise<void> {
  await kv.createInstance({ name: 'plans', id: instanceId });
  const perNamespace = RECORDS / NAMESPACES;
  for (let n = 0; n < NAMESPACES; n++) {
    for (let start = 0; start < perNamespace; start += 1000) {
      const items: KvSetManyItem[] = [];
      for (let i = start; i < start + 1000; i++)
        items.push({ namespace: `ns${n}`, key: `key${String(i).padStart(6, '0')}`, value: { i, n } });
      await kv.setMany(instanceId, items);
    }
  }
  for (let i = 0; i < EXPIRING; i++) {
    await kv.set(
      instanceId,
      `ns${i % NAMESPACES}`,
      `key${String(i).padStart(6, '0')}`,
      { i },
      { ttlMs: i % 2 ? 1000 : 100_000 },
    );
  }
  now.time += 5000;
}

/** The answers every backend must give after `fill` (20 expiring records have passed). */
async function checkAnswers(kv: KvStore, instanceId: string): Promise<void> {
  expect(await kv.getRecordCount(instanceId)).toBe(RECORDS - EXPIRING / 2);
  // ns3 holds expiring records 3, 13, 23 and 33: all odd, all passed; ns2's are all still live.
  expect(await kv.getRecordCount(instanceId, 'ns3')).toBe(RECORDS / NAMESPACES - 4);
  expect(await kv.getRecordCount(instanceId, 'ns2')).toBe(RECORDS / NAMESPACES);
  expect(await kv.getNamespaces(instanceId)).toEqual(Array.from({ length: NAMESPACES }, (_, n) => `ns${n}`));
}

describe('KV counts and namespace lists on SQLite use the counters and indexes', () => {
  const directory = mkdtempSync(join(tmpdir(), 'kode-kv-plan-'));
  const db = new Database(join(directory, 'kv.db'));
  db.pragma('journal_mode = WAL');
  const now = { time: Date.now() };
  const instanceId = 'plans';

  beforeAll(async () => {
    await fill(createKvStore(new SqliteKvBackend(db), { now: () => now.time }), instanceId, now);
  }, 120_000);
  afterAll(() => {
    db.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** A database whose statements are recorded with the values they ran with. */
  function recording(): { db: SqliteDatabase; statements: Array<{ sql: string; args: unknown[] }> } {
    const statements: Array<{ sql: string; args: unknown[] }> = [];
    const proxy = new Proxy(db, {
      get(target, property) {
        if (property === 'prepare') {
          return (sql: string) => {
            const statement = target.prepare(sql);
            const record =
              (method: 'get' | 'all' | 'run') =>
              (...args: unknown[]) => {
                statements.push({ sql, args });
                return (statement[method] as (...a: unknown[]) => unknown)(...args);
              };
            return { reader: statement.reader, get: record('get'), all: record('all'), run: record('run') };
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { db: proxy as unknown as SqliteDatabase, statements };
  }

  it('answers exactly, and no statement of getRecordCount or getNamespaces scans kode_kv_records', async () => {
    const { db: recorded, statements } = recording();
    const kv = createKvStore(new SqliteKvBackend(recorded), { now: () => now.time });
    await kv.getRecordCount(instanceId); // opens (migrations) before recording starts
    statements.length = 0;
    await checkAnswers(kv, instanceId);
    const plans = statements
      .filter(({ sql }) => /^\s*SELECT/i.test(sql))
      .map(({ sql, args }) => ({
        sql,
        plan: (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map(
          (row) => row.detail,
        ),
      }));
    expect(plans.length).toBeGreaterThanOrEqual(3);
    for (const { sql, plan } of plans) {
      const onRecords = plan.filter((line) => /kode_kv_records|\br\b/.test(line));
      // SEARCH = an index range; SCAN = every row (or every index entry) of the table.
      for (const line of onRecords) expect(line, `${sql}\n${plan.join('\n')}`).toMatch(/^SEARCH /);
    }
    const all = plans.flatMap((p) => p.plan).join('\n');
    expect(all).toMatch(/SEARCH .*kode_kv_namespaces USING PRIMARY KEY/);
    expect(all).toMatch(/USING COVERING INDEX kode_kv_records_expiring/);
    console.info(
      `SQLite query plans on ${RECORDS} records:\n${plans.map((p) => `${p.sql.replace(/\s+/g, ' ').slice(0, 120)}\n  ${p.plan.join('\n  ')}`).join('\n')}`,
    );
  });

  it('a key-prefix listing reads an index range too', async () => {
    const { db: recorded, statements } = recording();
    const kv = createKvStore(new SqliteKvBackend(recorded), { now: () => now.time });
    await kv.getRecordCount(instanceId);
    statements.length = 0;
    const page = await kv.query({
      from: { instance: instanceId, namespace: 'ns4' },
      where: [{ field: 'key', operator: 'startsWith', value: 'key0001' }],
      select: ['key'],
    });
    expect(page.total).toBe(100);
    const [first] = statements.filter(({ sql }) => /^\s*SELECT/i.test(sql) && sql.includes('ORDER BY'));
    const plan = (
      db.prepare(`EXPLAIN QUERY PLAN ${first?.sql}`).all(first?.args[0]) as Array<{ detail: string }>
    ).map((r) => r.detail);
    expect(plan.join('\n')).toMatch(
      /SEARCH r USING INDEX sqlite_autoindex_kode_kv_records_1 \(instance_id=\? AND namespace=\? AND key>\? AND key<\?\)/,
    );
  });
});

/** A node of `EXPLAIN (ANALYZE, FORMAT JSON)`, as far as the plan tests read it. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function nodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(nodes)];
}

describePostgres('KV counts and namespace lists on PostgreSQL use the counters and indexes', () => {
  const target = useTestSchema('kv_plans');
  const now = { time: Date.now() };
  const instanceId = 'plans';
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: target.url, max: 4, options: '-c synchronous_commit=off' });
    await fill(
      createKvStore(new PostgresKvBackend(pool, { schema: target.schema }), { now: () => now.time }),
      instanceId,
      now,
    );
    // Fresh statistics, as autovacuum would eventually have: the planner then knows the table is large.
    await pool.query(`VACUUM ANALYZE ${pg.escapeIdentifier(target.schema)}.kode_kv_records`);
    await pool.query(`ANALYZE ${pg.escapeIdentifier(target.schema)}.kode_kv_namespaces`);
  }, 180_000);
  afterAll(async () => {
    await pool?.end();
  });

  it('answers exactly, and reads no more than the expiring rows of kode_kv_records', async () => {
    const recorded = recordingPool({ max: 2 });
    try {
      const kv = createKvStore(new PostgresKvBackend(recorded.pool, { schema: target.schema }), {
        now: () => now.time,
      });
      await kv.getRecordCount(instanceId); // opens (migrations) before recording starts
      recorded.statements.length = 0;
      await checkAnswers(kv, instanceId);
      const selects = recorded.statements.filter((s: RecordedStatement) => /^\s*SELECT/i.test(s.text));
      expect(selects.length).toBeGreaterThanOrEqual(3);
      const report: string[] = [];
      for (const statement of selects) {
        const [row] = (await pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`, statement.values))
          .rows as Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>;
        const plan = row?.['QUERY PLAN'][0]?.Plan as PlanNode;
        const onRecords = nodes(plan).filter((n) => n['Relation Name'] === 'kode_kv_records');
        const what = `${statement.text}\n${JSON.stringify(plan, null, 1)}`;
        for (const node of onRecords) {
          expect(node['Node Type'], what).not.toBe('Seq Scan');
          // Either TTL index serves (the planner picks by its estimates on a fresh table);
          // what matters is the bound below.
          expect(['kode_kv_records_expiring', 'kode_kv_records_by_expiry'], what).toContain(
            node['Index Name'],
          );
          // Rows read from the records table: at most the rows that have a TTL, never the 100,000.
          const read =
            (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1) + (node['Rows Removed by Filter'] ?? 0);
          expect(read, what).toBeLessThanOrEqual(EXPIRING);
        }
        report.push(
          `${statement.text.replace(/\s+/g, ' ').slice(0, 110)}\n  ${nodes(plan)
            .map(
              (n) =>
                `${n['Node Type']}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''}${n['Index Name'] ? ` using ${n['Index Name']}` : ''} (rows ${n['Actual Rows']} x${n['Actual Loops']})`,
            )
            .join('\n  ')}`,
        );
      }
      console.info(`PostgreSQL query plans on ${RECORDS} records:\n${report.join('\n')}`);
    } finally {
      await recorded.pool.end();
    }
  });

  it('a key-prefix listing reads an index range of the primary key', async () => {
    const recorded = recordingPool({ max: 2 });
    try {
      const kv = createKvStore(new PostgresKvBackend(recorded.pool, { schema: target.schema }), {
        now: () => now.time,
      });
      await kv.getRecordCount(instanceId);
      recorded.statements.length = 0;
      const page = await kv.query({
        from: { instance: instanceId, namespace: 'ns4' },
        where: [{ field: 'key', operator: 'startsWith', value: 'key0001' }],
        select: ['key'],
      });
      expect(page.total).toBe(100);
      const statement = recorded.statements.find((s: RecordedStatement) => s.text.includes('ORDER BY'));
      const [row] = (await pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement?.text}`, statement?.values))
        .rows as Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>;
      const all = nodes(row?.['QUERY PLAN'][0]?.Plan as PlanNode);
      const onRecords = all.filter((n) => n['Relation Name'] === 'kode_kv_records');
      // An index scan of the key range, or a bitmap built from it: either way only the 100 matching rows are read.
      expect(onRecords.map((n) => n['Node Type'])).not.toContain('Seq Scan');
      expect(all.some((n) => n['Index Name'] === 'kode_kv_records_pkey')).toBe(true);
      for (const node of onRecords) {
        expect((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0)).toBeLessThanOrEqual(100);
      }
    } finally {
      await recorded.pool.end();
    }
  });
});

describePostgres('KV key lookups on PostgreSQL past the statistics of a small instance', () => {
  const target = useTestSchema('kv_stale_stats');
  const instanceId = 'grown';
  const keyOf = (i: number) => `key${String(i).padStart(6, '0')}`;
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: target.url, max: 4, options: '-c synchronous_commit=off' });
    const kv = createKvStore(new PostgresKvBackend(pool, { schema: target.schema }));
    await kv.createInstance({ name: 'grown', id: instanceId });
    const records = `${pg.escapeIdentifier(target.schema)}.kode_kv_records`;
    // Statistics taken while the instance was small, and kept: autovacuum would refresh them later.
    await pool.query(`ALTER TABLE ${records} SET (autovacuum_enabled = false)`);
    await kv.setMany(
      instanceId,
      Array.from({ length: 100 }, (_, i) => ({ namespace: 'ns', key: keyOf(i), value: { i } })),
    );
    await pool.query(`ANALYZE ${records}`);
    for (let start = 100; start < 20_100; start += 1000) {
      await kv.setMany(
        instanceId,
        Array.from({ length: 1000 }, (_, i) => ({ namespace: 'ns', key: keyOf(start + i), value: { i } })),
      );
    }
  }, 180_000);
  afterAll(async () => {
    await pool?.end();
  });

  it('look up each key through the primary key, never reading the instance whole', async () => {
    const recorded = recordingPool({ max: 2 });
    try {
      const kv = createKvStore(new PostgresKvBackend(recorded.pool, { schema: target.schema }));
      await kv.getRecordCount(instanceId); // opens (migrations) before recording starts
      recorded.statements.length = 0;
      // 500 keys stored, 500 new.
      const keys = Array.from({ length: 1000 }, (_, i) => keyOf(19_600 + i));
      await kv.setMany(
        instanceId,
        keys.map((key) => ({ namespace: 'ns', key, value: { again: true } })),
      );
      expect(await kv.getMany(instanceId, 'ns', keys)).toHaveLength(1000);
      const lookups = recorded.statements.filter(
        (s: RecordedStatement) => /^\s*SELECT/i.test(s.text) && s.text.includes('unnest'),
      );
      expect(lookups.length).toBeGreaterThanOrEqual(2);
      for (const statement of lookups) {
        const [row] = (await pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`, statement.values))
          .rows as Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>;
        const plan = row?.['QUERY PLAN'][0]?.Plan as PlanNode;
        const what = `${statement.text}\n${JSON.stringify(plan, null, 1)}`;
        for (const node of nodes(plan).filter((n) => n['Relation Name'] === 'kode_kv_records')) {
          expect(node['Node Type'], what).toBe('Index Scan');
          // One lookup per key: at most one row read per key asked for, not the 20,000 stored.
          const read =
            (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1) + (node['Rows Removed by Filter'] ?? 0);
          expect(read, what).toBeLessThanOrEqual(keys.length);
        }
      }
    } finally {
      await recorded.pool.end();
    }
  });

  it('delete reads one row of the instance, not the instance whole', async () => {
    const recorded = recordingPool({ max: 2 });
    try {
      const kv = createKvStore(new PostgresKvBackend(recorded.pool, { schema: target.schema }));
      const before = await kv.getRecordCount(instanceId, 'ns');
      recorded.statements.length = 0;
      expect(await kv.delete(instanceId, 'ns', keyOf(150))).toBe(true);
      expect((await kv.get(instanceId, 'ns', keyOf(150))).exists).toBe(false);
      expect(await kv.getRecordCount(instanceId, 'ns')).toBe(before - 1);
      const statement = recorded.statements.find((s: RecordedStatement) => /DELETE FROM/.test(s.text));
      expect(statement, 'the DELETE statement of kv.delete').toBeDefined();
      // EXPLAIN ANALYZE runs the statement: in a transaction rolled back, on another stored key.
      const values = [...(statement?.values ?? [])];
      values[2] = [keyOf(151)];
      const client = await pool.connect();
      let plan: PlanNode;
      try {
        await client.query('BEGIN');
        const [row] = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement?.text}`, values))
          .rows as Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>;
        plan = row?.['QUERY PLAN'][0]?.Plan as PlanNode;
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
      const what = `${statement?.text}\n${JSON.stringify(plan, null, 1)}`;
      const reads = nodes(plan).filter(
        (n) => n['Relation Name'] === 'kode_kv_records' && n['Node Type'] !== 'ModifyTable',
      );
      expect(reads.length, what).toBeGreaterThan(0);
      for (const node of reads) {
        expect(['Index Scan', 'Tid Scan'], what).toContain(node['Node Type']);
        const read =
          (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1) + (node['Rows Removed by Filter'] ?? 0);
        expect(read, what).toBe(1);
      }
    } finally {
      await recorded.pool.end();
    }
  });
});
