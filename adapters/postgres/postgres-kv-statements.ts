import type { PostgresConnection } from './postgres-connection.js';
import { preparedStatements } from './postgres-statements.js';

/** A record's columns but its JSON texts, under the names of `KvRecordRow`. */
export const RECORD_COLUMNS = `r.instance_id AS "instanceId", r.namespace, r.key, r.id, r.version,
  r.created_at AS "createdAt", r.updated_at AS "updatedAt", r.expires_at AS "expiresAt",
  r.created_by AS "createdBy", r.updated_by AS "updatedBy"`;
const FULL_RECORD = `${RECORD_COLUMNS}, r.value, r.metadata`;
const INSTANCE_COLUMNS = 'id, name, description, created_at AS "createdAt", updated_at AS "updatedAt"';

/**
 * The KV backend's fixed statements, built once per backend (the schema name
 * is part of them) and prepared like the agent store's, under names starting
 * `kode_kv_`.
 */
export function buildKvStatements(db: PostgresConnection) {
  return preparedStatements(db, kvStatementTexts(db), 'kode_kv_');
}

/** The table of the records, for the query APIs' dynamic SQL. */
export function kvRecordsTable(db: PostgresConnection): string {
  return db.table('kode_kv_records');
}

function kvStatementTexts(db: PostgresConnection) {
  const records = kvRecordsTable(db);
  const instances = db.table('kode_kv_instances');
  const counters = db.table('kode_kv_namespaces');
  const keys = 'unnest($2::text[], $3::text[]) AS k(namespace, key)';
  const notJsonbRows = (withNamespace: boolean) => `SELECT ${FULL_RECORD} FROM ${records} r
      WHERE r.instance_id = $1 ${withNamespace ? 'AND r.namespace = $2' : ''} AND NOT r.jsonb_ok
        AND (r.expires_at IS NULL OR r.expires_at > $${withNamespace ? 3 : 2})`;
  return {
    insertInstance: `INSERT INTO ${instances} (id, name, description, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id`,
    getInstance: `SELECT ${INSTANCE_COLUMNS} FROM ${instances} WHERE id = $1`,
    instanceExists: `SELECT 1 FROM ${instances} WHERE id = $1`,
    lockInstance: `SELECT 1 FROM ${instances} WHERE id = $1 FOR KEY SHARE`,
    listInstances: `SELECT ${INSTANCE_COLUMNS} FROM ${instances} ORDER BY created_at, id`,
    updateInstance: `UPDATE ${instances} SET name = COALESCE($2, name), description = COALESCE($3, description),
      updated_at = GREATEST($4::bigint, updated_at + 1) WHERE id = $1 RETURNING ${INSTANCE_COLUMNS}`,
    deleteInstance: `DELETE FROM ${instances} WHERE id = $1 RETURNING id`,
    // Each key looked up on its own through the primary key, whatever the
    // statistics say: a join let the planner, with statistics taken while
    // the instance was small, hash the instance's every record for each
    // call (setMany filling an instance slowed to ~100 records/s past 40,000
    // records). LIMIT 1 (a key is at most one row) keeps the LATERAL
    // subquery from being flattened back into a join
    // (test/kv/kv-query-plans.test.ts).
    getLiveRecords: `SELECT ${FULL_RECORD} FROM ${keys} CROSS JOIN LATERAL (
        SELECT * FROM ${records} AS r WHERE r.instance_id = $1 AND r.namespace = k.namespace AND r.key = k.key
          AND (r.expires_at IS NULL OR r.expires_at > $4)
        LIMIT 1
      ) AS r`,
    // Locked in key order, so two multi-key writers cannot deadlock on each other's rows.
    lockRecords: `SELECT ${FULL_RECORD} FROM (
        SELECT * FROM ${keys} ORDER BY k.namespace COLLATE "C", k.key COLLATE "C"
      ) AS k CROSS JOIN LATERAL (
        SELECT * FROM ${records} AS r WHERE r.instance_id = $1 AND r.namespace = k.namespace AND r.key = k.key
        LIMIT 1 FOR UPDATE
      ) AS r`,
    // Rows and their namespace counters change in one statement; the namespaces
    // whose counter reached zero come back, for the caller to drop.
    deleteRecords: `WITH gone AS (
        DELETE FROM ${records} r USING ${keys}
        WHERE r.instance_id = $1 AND r.namespace = k.namespace AND r.key = k.key RETURNING r.namespace
      ), tally AS (
        SELECT namespace, count(*) AS n FROM gone GROUP BY namespace
      )
      UPDATE ${counters} c SET record_count = c.record_count - tally.n FROM tally
      WHERE c.instance_id = $1 AND c.namespace = tally.namespace
      RETURNING c.namespace, c.record_count AS "recordCount"`,
    updateRecord: `UPDATE ${records} SET id = $4, value = $5, metadata = $6, jsonb_ok = $7, version = $8,
      created_at = $9, updated_at = $10, expires_at = $11, created_by = $12, updated_by = $13
      WHERE instance_id = $1 AND namespace = $2 AND key = $3`,
    insertRecords: `WITH added AS (
        INSERT INTO ${records} (instance_id, namespace, key, id, value, metadata, jsonb_ok, version,
          created_at, updated_at, expires_at, created_by, updated_by)
        SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[],
          $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[])
        ON CONFLICT (instance_id, namespace, key) DO NOTHING RETURNING namespace
      ), counted AS (
        INSERT INTO ${counters} (instance_id, namespace, record_count)
        SELECT $1, namespace, count(*) FROM added GROUP BY namespace ORDER BY namespace
        ON CONFLICT (instance_id, namespace) DO UPDATE SET record_count = ${counters}.record_count + excluded.record_count
        RETURNING 1
      )
      SELECT count(*) AS n FROM added`,
    dropEmptyCounter: `DELETE FROM ${counters} WHERE instance_id = $1 AND namespace = $2 AND record_count <= 0`,
    dropEmptyCounters: `DELETE FROM ${counters} c USING unnest($1::text[], $2::text[]) AS g(instance_id, namespace)
      WHERE c.instance_id = g.instance_id AND c.namespace = g.namespace AND c.record_count <= 0`,
    // One statement: the rows go, the counter drops by what went (a delta, so
    // a row another writer inserts meanwhile keeps its count).
    deleteNamespace: `WITH gone AS (
        DELETE FROM ${records} WHERE instance_id = $1 AND namespace = $2 RETURNING expires_at
      ), tally AS (
        SELECT count(*) AS stored, count(*) FILTER (WHERE expires_at IS NULL OR expires_at > $3) AS live FROM gone
      ), adjusted AS (
        UPDATE ${counters} c SET record_count = c.record_count - tally.stored FROM tally
        WHERE c.instance_id = $1 AND c.namespace = $2 RETURNING 1
      )
      SELECT EXISTS (SELECT 1 FROM ${instances} WHERE id = $1) AS present, (SELECT live FROM tally) AS live,
        (SELECT count(*) FROM adjusted) AS adjusted`,
    // A counter minus the expired rows still stored (found by the partial index on expires_at).
    countNamespace: `SELECT EXISTS (SELECT 1 FROM ${instances} WHERE id = $1) AS present,
      COALESCE((SELECT record_count FROM ${counters} WHERE instance_id = $1 AND namespace = $2), 0)
      - (SELECT count(*) FROM ${records} WHERE instance_id = $1 AND namespace = $2 AND expires_at <= $3) AS n`,
    countInstance: `SELECT EXISTS (SELECT 1 FROM ${instances} WHERE id = $1) AS present,
      COALESCE((SELECT sum(record_count) FROM ${counters} WHERE instance_id = $1), 0)
      - (SELECT count(*) FROM ${records} WHERE instance_id = $1 AND expires_at <= $2) AS n`,
    namespaces: `SELECT c.namespace FROM ${counters} c
      WHERE c.instance_id = $1 AND c.record_count > (SELECT count(*) FROM ${records} r
        WHERE r.instance_id = c.instance_id AND r.namespace = c.namespace AND r.expires_at <= $2)
      ORDER BY c.namespace`,
    // The rows jsonb cannot read, which queries evaluate in JavaScript (postgres-kv-query.ts).
    notJsonbRowsInNamespace: notJsonbRows(true),
    notJsonbRowsInInstance: notJsonbRows(false),
    sweep: `WITH gone AS (
        DELETE FROM ${records} WHERE expires_at <= $1 RETURNING instance_id, namespace
      ), groups AS (
        SELECT instance_id, namespace, count(*) AS n FROM gone GROUP BY instance_id, namespace
      ), adjusted AS (
        UPDATE ${counters} c SET record_count = c.record_count - g.n FROM groups g
        WHERE c.instance_id = g.instance_id AND c.namespace = g.namespace RETURNING 1
      )
      SELECT instance_id AS "instanceId", namespace, n, (SELECT count(*) FROM adjusted) AS adjusted FROM groups`,
  };
}
