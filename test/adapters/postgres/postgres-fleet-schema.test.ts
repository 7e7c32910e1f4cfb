import { afterAll, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { AGENT_TABLES } from '../../../adapters/postgres/postgres-schema.js';
import { adminQuery, describePostgres, useTestSchema } from '../../helpers/postgres.js';

/**
 * The README's claim for sharding by agent id ("Scaling on PostgreSQL"),
 * checked against the catalogue of a migrated schema: every primary key and
 * unique index of the agent tables begins with `agent_id`, and every foreign
 * key between them joins on `agent_id` alone, so that one agent's rows can
 * live together on one shard. The tables that are not per agent are named
 * here and in the README; a new table must be put on one side or the other.
 * The same holds with `kode_events` partitioned by hash of agent id
 * (`eventPartitions`), for the table and each of its partitions, whose
 * partition key is `agent_id` alone.
 */

/** Tables not keyed by agent: the schema's version row and the KV namespace (keyed by KV instance). */
const FLEET_WIDE_TABLES = [
  'kode_schema_version',
  'kode_kv_instances',
  'kode_kv_records',
  'kode_kv_namespaces',
];

describePostgres('PostgreSQL schema: ready to shard by agent id', () => {
  const place = useTestSchema('shard_keys');
  // Opened in the test, not while collecting: without a server the suite is skipped, and place.url throws.
  const stores: PostgresStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  for (const eventPartitions of [undefined, 4]) {
    const layout =
      eventPartitions === undefined ? 'events in one table' : `events in ${eventPartitions} hash partitions`;
    it(`keys every agent table by agent_id first; only the tables it names are fleet-wide (${layout})`, async () => {
      const schema =
        eventPartitions === undefined ? place.schema : place.also(`${place.schema}_p${eventPartitions}`);
      const store = new PostgresStore({ connection: place.url, schema, eventPartitions });
      stores.push(store);
      await store.open();
      await store.kv.listInstances(); // creates the KV tables
      const tables = await adminQuery<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`,
        [schema],
      );
      expect(tables.map((t) => t.name).sort()).toEqual([...AGENT_TABLES, ...FLEET_WIDE_TABLES].sort());

      // Partitioned tables and their partitions: only kode_events, by agent_id alone.
      const partitioned = await adminQuery<{
        table: string;
        strategy: string;
        key: string[];
        partitions: number;
      }>(
        `SELECT c.relname AS table, p.partstrat AS strategy,
            array(SELECT a.attname::text FROM unnest(p.partattrs::int2[]) AS k(attnum)
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) AS key,
            (SELECT count(*)::int FROM pg_inherits i WHERE i.inhparent = c.oid) AS partitions
          FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`,
        [schema],
      );
      expect(partitioned).toEqual(
        eventPartitions === undefined
          ? []
          : [{ table: 'kode_events', strategy: 'h', key: ['agent_id'], partitions: eventPartitions }],
      );

      // A partition's indexes count as its table's.
      const unique = await adminQuery<{ table: string; index: string; primary: boolean; columns: string[] }>(
        `SELECT coalesce(parent.relname, c.relname) AS table, i.relname AS index, x.indisprimary AS primary,
            array(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n) AS columns
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_inherits h ON h.inhrelid = c.oid LEFT JOIN pg_class parent ON parent.oid = h.inhparent
         WHERE n.nspname = $1 AND x.indisunique`,
        [schema],
      );
      for (const table of AGENT_TABLES) {
        const keys = unique.filter((u) => u.table === table);
        expect(
          keys.some((k) => k.primary),
          `${table} has a primary key`,
        ).toBe(true);
        for (const key of keys) expect(key.columns[0], `${key.index} of ${table}`).toBe('agent_id');
      }
      const eventKeys = unique.filter((u) => u.table === 'kode_events');
      expect(eventKeys, 'the primary key of kode_events and of each partition').toHaveLength(
        1 + (eventPartitions ?? 0),
      );

      const foreign = await adminQuery<{
        table: string;
        columns: string[];
        target: string;
        targetColumns: string[];
      }>(
        `SELECT c.relname AS table, t.relname AS target,
            array(SELECT a.attname::text FROM unnest(k.conkey) AS u(attnum)
                  JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum) AS columns,
            array(SELECT a.attname::text FROM unnest(k.confkey) AS u(attnum)
                  JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum) AS "targetColumns"
          FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class t ON t.oid = k.confrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND k.contype = 'f'`,
        [schema],
      );
      const agentForeignKeys = foreign.filter((f) => (AGENT_TABLES as readonly string[]).includes(f.table));
      expect(agentForeignKeys.length).toBeGreaterThan(0);
      for (const key of agentForeignKeys) {
        expect(key, `the foreign key of ${key.table}`).toMatchObject({
          target: 'kode_agents',
          columns: ['agent_id'],
          targetColumns: ['agent_id'],
        });
      }
    });
  }
});
