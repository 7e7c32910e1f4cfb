import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { AGENT_SCHEMA_VERSION, migrateAgentSchema } from '../../../adapters/postgres/postgres-schema.js';
import { sessionFields } from '../../../src/agent/record-fields.js';
import type { AgentInfo } from '../../../src/types.js';
import { adminQuery, describePostgres, useTestSchema } from '../../helpers/postgres.js';
import { byAgentId, oddSessionInfos, sessionsOf } from '../../helpers/session-infos.js';

/**
 * Schema 5 stores each info's session in `kode_agents.session_json`. The
 * upgrade only adds the column: rows saved before keep NULL (and a page
 * reads their whole info) until they are saved again.
 */
describePostgres('PostgreSQL agent schema 5: the session beside the info', () => {
  const place = useTestSchema('sessions');
  const stores: PostgresStore[] = [];
  const open = (schema: string) => {
    const store = new PostgresStore({ connection: { connectionString: place.url, max: 2 }, schema });
    stores.push(store);
    return store;
  };
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
  });

  const sessionColumn = async (schema: string) =>
    new Map(
      (
        await adminQuery<{ agent_id: string; session_json: string | null }>(
          `SELECT agent_id, session_json FROM ${pg.escapeIdentifier(schema)}.kode_agents`,
        )
      ).map((row) => [row.agent_id, row.session_json]),
    );

  it('upgrades a version-4 schema without rewriting its rows; sessions read the same before and after a re-save', async () => {
    const old = place.also(`${place.schema}_v4`);
    const client = new pg.Client({ connectionString: place.url });
    await client.connect();
    try {
      const tx = {
        query: async <R>(text: string, values?: unknown[]) => (await client.query(text, values)).rows as R[],
      };
      await migrateAgentSchema(tx, old, 4);
    } finally {
      await client.end();
    }
    const infos = oddSessionInfos('v4-', 'tpl');
    // Rows as version 4 of the store wrote them.
    for (const info of infos) {
      const fields = sessionFields(info);
      await adminQuery(
        `INSERT INTO ${pg.escapeIdentifier(old)}.kode_agents
           (agent_id, info_json, template_key, user_key, created_at_ms, updated_at_ms, message_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          info.agentId,
          JSON.stringify(info),
          fields.templateId,
          fields.userId,
          fields.createdAtMs,
          1000,
          fields.messageCount,
        ],
      );
    }

    const store = open(old);
    expect(byAgentId(await store.querySessions({ templateId: 'tpl', limit: 50 }))).toEqual(sessionsOf(infos));
    const [version] = await adminQuery<{ version: number }>(
      `SELECT version FROM ${pg.escapeIdentifier(old)}.kode_schema_version WHERE component = 'agent'`,
    );
    expect(version?.version).toBe(AGENT_SCHEMA_VERSION);
    expect(AGENT_SCHEMA_VERSION).toBe(5);
    expect([...(await sessionColumn(old)).values()], 'the upgrade filled no row').toEqual(
      infos.map(() => null),
    );

    const [first, second] = infos as [AgentInfo, AgentInfo];
    const resaved = { ...first, messageCount: 9 };
    await store.saveInfo(first.agentId, resaved);
    const columns = await sessionColumn(old);
    expect(columns.get(first.agentId)).toBe(sessionFields(resaved).sessionJson);
    expect(columns.get(second.agentId)).toBeNull();
    const after = [resaved, ...infos.slice(1)];
    expect(byAgentId(await store.querySessions({ templateId: 'tpl', limit: 50 }))).toEqual(sessionsOf(after));

    // A fork of an old row gets its own session, made from its info.
    const [forkId] = (await store.batchFork(second.agentId, 1)) as [string];
    const forkInfo = (await store.loadInfo(forkId)) as AgentInfo;
    expect((await sessionColumn(old)).get(forkId)).toBe(sessionFields(forkInfo).sessionJson);
    expect(await store.querySessions({ agentId: forkId })).toEqual([sessionsOf([forkInfo]).get(forkId)]);
  });

  it('reads a page from session_json, not from the info, for saved and forked agents', async () => {
    const schema = place.schema;
    const store = open(schema);
    const infos = oddSessionInfos('col-', 'col-tpl');
    for (const info of infos) await store.saveInfo(info.agentId, info);
    const forkIds = await store.batchFork((infos[1] as AgentInfo).agentId, 2);
    const forkInfos = await Promise.all(forkIds.map(async (id) => (await store.loadInfo(id)) as AgentInfo));
    const columns = await sessionColumn(schema);
    for (const info of [...infos, ...forkInfos]) {
      expect(columns.get(info.agentId), info.agentId).toBe(sessionFields(info).sessionJson);
    }
    // Only the infos change behind the store's back: the page shows the saved sessions.
    await adminQuery(
      `UPDATE ${pg.escapeIdentifier(schema)}.kode_agents SET info_json = '{}' WHERE template_key = 'col-tpl'`,
    );
    expect(byAgentId(await store.querySessions({ templateId: 'col-tpl', limit: 50 }))).toEqual(
      sessionsOf([...infos, ...forkInfos]),
    );
  });
});
