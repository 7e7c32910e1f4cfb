import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import type { MessageFilters, ToolCallFilters } from '../../../src/types.js';
import {
  adminQuery,
  describePostgres,
  type RecordedStatement,
  recordingPool,
  requirePostgresUrl,
  useTestSchema,
} from '../../helpers/postgres.js';

/**
 * SPEC §3: a query must not scan every row to answer. A filter on a value
 * that is rare (a system message among user/assistant turns, a failed call
 * among completed ones, an error, a call without approval) or absent must
 * seek an index of its own, not walk the time index checking each entry.
 * Shown on 200,000 messages and 50,000 tool calls with the store's own SQL:
 * EXPLAIN (ANALYZE, BUFFERS) of each statement, under custom plans (what the
 * store's unnamed statements get) and generic plans (plan_cache_mode =
 * force_generic_plan, as a server may be configured), in both sort orders and
 * for tool calls by createdAt and updatedAt. Asserted: the index used and the
 * pages read, never times.
 */

const AGENTS = 10_000;
const MESSAGES_PER_AGENT = 20;
const CALLS_PER_AGENT = 5;
const MESSAGES = AGENTS * MESSAGES_PER_AGENT;
const CALLS = AGENTS * CALLS_PER_AGENT;
/** Message n is a system message when n % 5000 == 7: 40 of 200,000. */
const SYSTEM_MESSAGES = MESSAGES / 5000;
/** Call n failed (state FAILED, isError) when n % 2500 == 11, and needed no approval when n % 2500 == 13: 20 of 50,000 each. */
const RARE_CALLS = CALLS / 2500;
const LIMIT = 50;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

function nodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(nodes)];
}

function shape(node: PlanNode): string {
  return nodes(node)
    .map(
      (n) =>
        `${n['Node Type']}${n['Index Name'] ? ` using ${n['Index Name']}` : ''} (rows ${n['Actual Rows']})`,
    )
    .join(' > ');
}

type Mode = 'custom' | 'generic';

describePostgres('PostgreSQL queries for rare filter values seek their own index', () => {
  const place = useTestSchema('plans');
  const s = pg.escapeIdentifier(place.schema);
  let explainer: pg.Client;
  const timeIndexPages = { messages: 0, toolCalls: 0 };

  beforeAll(async () => {
    const store = new PostgresStore({
      connection: { connectionString: place.url, max: 1 },
      schema: place.schema,
    });
    await store.loadInfo('migrate-first');
    await store.close();
    const agent = (expr: string) => `'plan-' || lpad((${expr})::text, 5, '0')`;
    await adminQuery(
      `INSERT INTO ${s}.kode_agents (agent_id) SELECT ${agent('i')} FROM generate_series(0, ${AGENTS - 1}) AS i`,
    );
    await adminQuery(`
      INSERT INTO ${s}.kode_messages (agent_id, position, message_json, role_key, content_types, created_at_ms)
      SELECT ${agent(`n / ${MESSAGES_PER_AGENT}`)}, n % ${MESSAGES_PER_AGENT},
        '{"role":"' || r.role || '","content":[],"n":' || n || '}', r.role, ARRAY['text'], 1e12 + n
      FROM generate_series(0, ${MESSAGES - 1}) AS n,
        LATERAL (SELECT CASE WHEN n % 5000 = 7 THEN 'system' WHEN n % 2 = 0 THEN 'user' ELSE 'assistant' END AS role) AS r`);
    await adminQuery(`
      INSERT INTO ${s}.kode_tool_calls (agent_id, position, tool_call_key, record_json, name_key, state_key,
        is_error, has_approval, created_at_ms, updated_at_ms)
      SELECT ${agent(`n / ${CALLS_PER_AGENT}`)}, n % ${CALLS_PER_AGENT}, 'call-' || n,
        '{"id":"call-' || n || '","n":' || n || '}', (ARRAY['fs_read', 'fs_write', 'bash_run'])[n % 3 + 1],
        CASE WHEN n % 2500 = 11 THEN 'FAILED' ELSE 'COMPLETED' END, n % 2500 = 11, n % 2500 <> 13,
        1e12 + n, 2e12 - n
      FROM generate_series(0, ${CALLS - 1}) AS n`);
    // Fresh statistics, as autovacuum would have gathered by the time a table is this large.
    await adminQuery(`VACUUM ANALYZE ${s}.kode_agents, ${s}.kode_messages, ${s}.kode_tool_calls`);
    const pages = await adminQuery<{ name: string; pages: number }>(
      `SELECT relname AS name, relpages AS pages FROM pg_class
       WHERE relnamespace = $1::regnamespace AND relname IN ('kode_messages_by_created', 'kode_tool_calls_by_created')`,
      [place.schema],
    );
    for (const row of pages) {
      if (row.name === 'kode_messages_by_created') timeIndexPages.messages = row.pages;
      else timeIndexPages.toolCalls = row.pages;
    }
    explainer = new pg.Client({
      connectionString: requirePostgresUrl(),
      application_name: 'kode-store-test-plans',
    });
    await explainer.connect();
  }, 180_000);
  afterAll(async () => {
    await explainer?.end();
  });

  /**
   * EXPLAIN (ANALYZE, BUFFERS) of a statement the store sent. A generic plan
   * is obtained the way a server set to force_generic_plan would run it: a
   * prepared statement executed with the same values.
   */
  async function explain(statement: RecordedStatement, mode: Mode): Promise<PlanNode> {
    await explainer.query(
      `SET plan_cache_mode = ${mode === 'custom' ? 'force_custom_plan' : 'force_generic_plan'}`,
    );
    await explainer.query(`PREPARE plan_probe AS ${statement.text}`);
    try {
      const args = statement.values.map((value) => explainer.escapeLiteral(String(value)));
      const result = await explainer.query(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE plan_probe${args.length ? `(${args.join(', ')})` : ''}`,
      );
      return (result.rows[0] as { 'QUERY PLAN': Array<{ Plan: PlanNode }> })['QUERY PLAN'][0]
        ?.Plan as PlanNode;
    } finally {
      await explainer.query('DEALLOCATE plan_probe');
    }
  }

  /** Runs one store query on a recording pool; returns its answer and its SELECT. */
  async function recorded<T>(
    query: (store: PostgresStore) => Promise<T>,
  ): Promise<{ answer: T; sql: RecordedStatement }> {
    const { pool, statements } = recordingPool({ max: 1 });
    const store = new PostgresStore({ pool, schema: place.schema });
    try {
      await store.loadInfo('migrate-first');
      statements.length = 0;
      const answer = await query(store);
      const selects = statements.filter((st) => /^\s*SELECT/i.test(st.text));
      expect(selects).toHaveLength(1);
      return { answer, sql: selects[0] as RecordedStatement };
    } finally {
      await store.close();
      await pool.end();
    }
  }

  /** Messages and records of this data set carry their row number `n`. */
  type NumberedItem = { n?: number };

  interface Case {
    label: string;
    run: (store: PostgresStore) => Promise<NumberedItem[]>;
    /** Ns of the expected answer, in order. */
    expected: number[];
    /** The index a rare value must seek, and how many entries it holds for that value (undefined: a common value, any index that stops early). */
    seek?: { index: string; entries: number };
  }

  /** The data's ns that match, in the order asked, first page: what the store must answer. */
  const answer = (count: number, match: (n: number) => boolean, descending: boolean) => {
    const ns = Array.from({ length: count }, (_, n) => n).filter(match);
    return (descending ? ns.reverse() : ns).slice(0, LIMIT);
  };
  const role = (n: number) => (n % 5000 === 7 ? 'system' : n % 2 === 0 ? 'user' : 'assistant');
  const failed = (n: number) => n % 2500 === 11;
  const approved = (n: number) => n % 2500 !== 13;

  function cases(): Case[] {
    const out: Case[] = [];
    for (const sortOrder of ['asc', 'desc'] as const) {
      const desc = sortOrder === 'desc';
      const messages = (
        label: string,
        filters: MessageFilters,
        match: (n: number) => boolean,
        seek?: Case['seek'],
      ) =>
        out.push({
          label: `queryMessages ${label} ${sortOrder}`,
          run: (store) =>
            store.queryMessages({ ...filters, sortOrder, limit: LIMIT }) as Promise<NumberedItem[]>,
          expected: answer(MESSAGES, match, desc),
          seek,
        });
      messages('role system', { role: 'system' }, (n) => role(n) === 'system', {
        index: 'kode_messages_by_role',
        entries: SYSTEM_MESSAGES,
      });
      messages('role assistant', { role: 'assistant' }, (n) => role(n) === 'assistant');
      for (const sortBy of ['created_at', 'updated_at'] as const) {
        // updatedAt runs backwards from createdAt in this data.
        const descendingN = sortBy === 'created_at' ? desc : !desc;
        const calls = (
          label: string,
          filters: ToolCallFilters,
          match: (n: number) => boolean,
          seek?: Case['seek'],
        ) =>
          out.push({
            label: `queryToolCalls ${label} ${sortBy} ${sortOrder}`,
            run: (store) =>
              store.queryToolCalls({ ...filters, sortBy, sortOrder, limit: LIMIT }) as Promise<
                NumberedItem[]
              >,
            expected: answer(CALLS, match, descendingN),
            seek,
          });
        const byState = { index: 'kode_tool_calls_by_state', entries: RARE_CALLS };
        calls('state FAILED', { state: 'FAILED' }, failed, byState);
        calls('state DENIED (absent)', { state: 'DENIED' }, () => false, { ...byState, entries: 0 });
        // Fewer calls failed than called fs_write: the state is sought, the name checked on each.
        const fsWrite = (n: number) => n % 3 === 1;
        calls(
          'name + state FAILED',
          { toolName: 'fs_write', state: 'FAILED' },
          (n) => fsWrite(n) && failed(n),
          byState,
        );
        calls('isError', { isError: true }, failed, {
          index: 'kode_tool_calls_by_error',
          entries: RARE_CALLS,
        });
        calls('hasApproval false', { hasApproval: false }, (n) => !approved(n), {
          index: 'kode_tool_calls_by_approval',
          entries: RARE_CALLS,
        });
        calls('state COMPLETED', { state: 'COMPLETED' }, (n) => !failed(n));
        calls('isError false', { isError: false }, (n) => !failed(n));
        calls('hasApproval true', { hasApproval: true }, approved);
      }
    }
    return out;
  }

  it('answers every rare-value filter by a seek of its own index, reading a few pages per row returned, under custom and generic plans', async () => {
    const [counts] = await adminQuery<{ system: string; failed: string; unapproved: string }>(
      `SELECT (SELECT count(*) FROM ${s}.kode_messages WHERE role_key = 'system') AS system,
        (SELECT count(*) FROM ${s}.kode_tool_calls WHERE state_key = 'FAILED' AND is_error) AS failed,
        (SELECT count(*) FROM ${s}.kode_tool_calls WHERE NOT has_approval) AS unapproved`,
    );
    expect(counts).toEqual({
      system: String(SYSTEM_MESSAGES),
      failed: String(RARE_CALLS),
      unapproved: String(RARE_CALLS),
    });
    // A walk of the time index would read all of its pages: the bounds below are far under that.
    expect(timeIndexPages.messages).toBeGreaterThan(500);
    expect(timeIndexPages.toolCalls).toBeGreaterThan(150);
    const report: string[] = [];
    for (const c of cases()) {
      const { answer, sql } = await recorded(c.run);
      expect(
        answer.map((item) => item.n),
        c.label,
      ).toEqual(c.expected);
      for (const mode of ['custom', 'generic'] as const) {
        const plan = await explain(sql, mode);
        const all = nodes(plan);
        const what = `${c.label} (${mode} plan)\n${sql.text}\n${shape(plan)}`;
        const scans = all.filter((n) => n['Relation Name']?.startsWith('kode_'));
        expect(
          scans.map((n) => n['Node Type']),
          what,
        ).not.toContain('Seq Scan');
        // Pages read (buffers hit or read) by the whole execution.
        const pages = (plan['Shared Hit Blocks'] ?? 0) + (plan['Shared Read Blocks'] ?? 0);
        if (c.seek) {
          expect(
            scans.map((n) => n['Index Name']),
            what,
          ).toEqual([c.seek.index]);
          // The value's index entries, one table page each at most, and the index's path to them.
          expect(pages, what).toBeLessThanOrEqual(c.seek.entries + 25);
        } else {
          // A common value: the walk in time order stops after about LIMIT rows.
          expect(pages, what).toBeLessThanOrEqual(2 * LIMIT + 20);
        }
        report.push(`${c.label} [${mode}]: ${pages} pages; ${shape(plan)}`);
      }
    }
    console.info(
      `PostgreSQL plans on ${MESSAGES} messages (time index ${timeIndexPages.messages} pages) and ${CALLS} tool calls (${timeIndexPages.toolCalls} pages):\n${report.join('\n')}`,
    );
  }, 120_000);
});
