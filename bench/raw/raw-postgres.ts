import pg from 'pg';
import type { AgentInfo, Message, Timeline, ToolCallRecord } from '../../src/types.js';
import type { RawAgentTables, RawEventFilter, RawEventLog, RawKv, RawStep } from './raw-baseline.js';

/**
 * The raw pg baseline: a `pg.Pool` of the same size as the store's (pg's
 * default, 10), one round trip per call (several rows travel as arrays
 * through `unnest`), the server's default durability
 * (`synchronous_commit = on`, as for the store), in a schema of its own.
 */
export class RawPostgres implements RawAgentTables, RawEventLog, RawKv {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  /** Connects to the baseline's tables in `schema`, made by `open` (in another process, say). */
  static connect(url: string, schema: string): RawPostgres {
    const pool = new pg.Pool({ connectionString: url, application_name: 'kode-store-bench-raw' });
    return new RawPostgres(pool, pg.escapeIdentifier(schema));
  }

  /** Connects and creates the baseline's tables in `schema` (the caller drops it). */
  static async open(url: string, schema: string): Promise<RawPostgres> {
    const raw = RawPostgres.connect(url, schema);
    const pool = raw.pool;
    const s = raw.schema;
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await pool.query(`
      CREATE TABLE ${s}.agents (agent_id text PRIMARY KEY, info_json text NOT NULL, template_id text,
        created_at_ms double precision, message_count integer);
      CREATE TABLE ${s}.messages (agent_id text NOT NULL, position integer NOT NULL, json text NOT NULL,
        role text NOT NULL, created_at_ms double precision NOT NULL, PRIMARY KEY (agent_id, position));
      CREATE TABLE ${s}.tool_calls (agent_id text NOT NULL, position integer NOT NULL, call_id text NOT NULL,
        json text NOT NULL, name text NOT NULL, state text NOT NULL, PRIMARY KEY (agent_id, position));
      CREATE TABLE ${s}.events (id bigserial, agent_id text NOT NULL, channel text, seq double precision,
        json text NOT NULL, PRIMARY KEY (agent_id, id));
      CREATE TABLE ${s}.kv (instance text NOT NULL, namespace text NOT NULL, key text NOT NULL,
        value text NOT NULL, PRIMARY KEY (instance, namespace, key));
    `);
    return raw;
  }

  async insertMessages(agentId: string, firstPosition: number, messages: readonly Message[]): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.schema}.messages (agent_id, position, json, role, created_at_ms)
       SELECT $1, n.position, n.json, n.role, $5 FROM unnest($2::int[], $3::text[], $4::text[]) AS n(position, json, role)`,
      [
        agentId,
        messages.map((_, i) => firstPosition + i),
        messages.map((message) => JSON.stringify(message)),
        messages.map((message) => message.role),
        Date.now(),
      ],
    );
  }

  async appendStep(agentId: string, step: RawStep): Promise<void> {
    const s = this.schema;
    const { info } = step;
    const records = step.toolCalls?.records ?? [];
    const firstCall = step.toolCalls?.firstPosition ?? 0;
    // One statement, so one round trip and one commit: the CTEs run in the statement's transaction.
    await this.pool.query(
      `WITH m AS (
         INSERT INTO ${s}.messages (agent_id, position, json, role, created_at_ms)
         SELECT $1, n.position, n.json, n.role, $5 FROM unnest($2::int[], $3::text[], $4::text[]) AS n(position, json, role)
       ), t AS (
         INSERT INTO ${s}.tool_calls (agent_id, position, call_id, json, name, state)
         SELECT $1, n.* FROM unnest($6::int[], $7::text[], $8::text[], $9::text[], $10::text[])
           AS n(position, call_id, json, name, state)
         ON CONFLICT (agent_id, position) DO UPDATE SET call_id = excluded.call_id, json = excluded.json,
           name = excluded.name, state = excluded.state
       )
       INSERT INTO ${s}.agents (agent_id, info_json, template_id, created_at_ms, message_count)
       VALUES ($1, $11, $12, $13, $14)
       ON CONFLICT (agent_id) DO UPDATE SET info_json = excluded.info_json, message_count = excluded.message_count`,
      [
        agentId,
        step.messages.map((_, i) => step.firstPosition + i),
        step.messages.map((message) => JSON.stringify(message)),
        step.messages.map((message) => message.role),
        Date.now(),
        records.map((_, i) => firstCall + i),
        records.map((record) => record.id),
        records.map((record) => JSON.stringify(record)),
        records.map((record) => record.name),
        records.map((record) => record.state),
        JSON.stringify(info),
        info.templateId,
        Date.parse(info.createdAt),
        info.messageCount,
      ],
    );
  }

  async upsertInfo(agentId: string, info: AgentInfo): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.schema}.agents (agent_id, info_json, template_id, created_at_ms, message_count)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (agent_id) DO UPDATE SET info_json = excluded.info_json, message_count = excluded.message_count`,
      [agentId, JSON.stringify(info), info.templateId, Date.parse(info.createdAt), info.messageCount],
    );
  }

  async upsertToolCalls(
    agentId: string,
    firstPosition: number,
    records: readonly ToolCallRecord[],
  ): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.schema}.tool_calls (agent_id, position, call_id, json, name, state)
       SELECT $1, n.* FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[])
         AS n(position, call_id, json, name, state)
       ON CONFLICT (agent_id, position) DO UPDATE SET call_id = excluded.call_id, json = excluded.json,
         name = excluded.name, state = excluded.state`,
      [
        agentId,
        records.map((_, i) => firstPosition + i),
        records.map((record) => record.id),
        records.map((record) => JSON.stringify(record)),
        records.map((record) => record.name),
        records.map((record) => record.state),
      ],
    );
  }

  async loadMessages(agentId: string): Promise<Message[]> {
    const result = await this.pool.query<{ json: string }>(
      `SELECT json FROM ${this.schema}.messages WHERE agent_id = $1 ORDER BY position`,
      [agentId],
    );
    return result.rows.map((row) => JSON.parse(row.json) as Message);
  }

  async loadToolCalls(agentId: string): Promise<ToolCallRecord[]> {
    const result = await this.pool.query<{ json: string }>(
      `SELECT json FROM ${this.schema}.tool_calls WHERE agent_id = $1 ORDER BY position`,
      [agentId],
    );
    return result.rows.map((row) => JSON.parse(row.json) as ToolCallRecord);
  }

  async copyAgent(sourceId: string, forkIds: readonly string[]): Promise<void> {
    const s = this.schema;
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO ${s}.messages (agent_id, position, json, role, created_at_ms)
         SELECT f.id, m.position, m.json, m.role, m.created_at_ms
         FROM ${s}.messages AS m CROSS JOIN unnest($2::text[]) AS f(id) WHERE m.agent_id = $1`,
        [sourceId, forkIds],
      );
      await client.query(
        `INSERT INTO ${s}.tool_calls (agent_id, position, call_id, json, name, state)
         SELECT f.id, t.position, t.call_id, t.json, t.name, t.state
         FROM ${s}.tool_calls AS t CROSS JOIN unnest($2::text[]) AS f(id) WHERE t.agent_id = $1`,
        [sourceId, forkIds],
      );
      await client.query(
        `INSERT INTO ${s}.agents (agent_id, info_json, template_id, created_at_ms, message_count)
         SELECT f.id, a.info_json, a.template_id, a.created_at_ms, a.message_count
         FROM ${s}.agents AS a CROSS JOIN unnest($2::text[]) AS f(id) WHERE a.agent_id = $1`,
        [sourceId, forkIds],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  }

  async appendAllAtOnce(agentId: string, events: readonly Timeline[]): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.schema}.events (agent_id, channel, seq, json)
       SELECT $1, e.channel, e.seq, e.json FROM unnest($2::text[], $3::float8[], $4::text[])
         WITH ORDINALITY AS e(channel, seq, json, n) ORDER BY e.n`,
      [
        agentId,
        events.map((entry) => entry.event.channel),
        events.map((entry) => entry.bookmark.seq),
        events.map((entry) => JSON.stringify(entry)),
      ],
    );
  }

  async appendOne(agentId: string, entry: Timeline): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.schema}.events (agent_id, channel, seq, json) VALUES ($1, $2, $3, $4)`,
      [agentId, entry.event.channel, entry.bookmark.seq, JSON.stringify(entry)],
    );
  }

  async read(agentId: string, filter: RawEventFilter): Promise<number> {
    const conditions = ['agent_id = $1'];
    const parameters: unknown[] = [agentId];
    if (filter.sinceSeq !== undefined) {
      parameters.push(filter.sinceSeq);
      conditions.push(`seq > $${parameters.length}`);
    }
    if (filter.channel !== undefined) {
      parameters.push(filter.channel);
      conditions.push(`channel = $${parameters.length}`);
    }
    const result = await this.pool.query<{ json: string }>(
      `SELECT json FROM ${this.schema}.events WHERE ${conditions.join(' AND ')} ORDER BY id`,
      parameters,
    );
    for (const row of result.rows) JSON.parse(row.json);
    return result.rows.length;
  }

  async readStreaming(agentId: string, pageSize: number, limit = Number.POSITIVE_INFINITY): Promise<number> {
    // Keyset pages on the primary key (agent_id, id), one round trip each.
    let count = 0;
    let after = '0';
    for (;;) {
      const { rows } = await this.pool.query<{ id: string; json: string }>(
        `SELECT id, json FROM ${this.schema}.events WHERE agent_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
        [agentId, after, pageSize],
      );
      for (const row of rows) JSON.parse(row.json);
      count += rows.length;
      if (rows.length < pageSize || count >= limit) return count;
      after = rows[rows.length - 1]!.id;
    }
  }

  async set(instance: string, namespace: string, key: string, value: unknown): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.schema}.kv (instance, namespace, key, value) VALUES ($1, $2, $3, $4)
       ON CONFLICT (instance, namespace, key) DO UPDATE SET value = excluded.value`,
      [instance, namespace, key, JSON.stringify(value)],
    );
  }

  async get(instance: string, namespace: string, key: string): Promise<unknown> {
    const result = await this.pool.query<{ value: string }>(
      `SELECT value FROM ${this.schema}.kv WHERE instance = $1 AND namespace = $2 AND key = $3`,
      [instance, namespace, key],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : JSON.parse(row.value);
  }

  async setMany(
    instance: string,
    items: ReadonlyArray<{ namespace: string; key: string; value: unknown }>,
  ): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.schema}.kv (instance, namespace, key, value)
       SELECT $1, n.* FROM unnest($2::text[], $3::text[], $4::text[]) AS n(namespace, key, value)
       ON CONFLICT (instance, namespace, key) DO UPDATE SET value = excluded.value`,
      [
        instance,
        items.map((item) => item.namespace),
        items.map((item) => item.key),
        items.map((item) => JSON.stringify(item.value)),
      ],
    );
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
