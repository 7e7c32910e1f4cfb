import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import { AGENT_SCHEMA_MIGRATIONS, latestVersion } from '../../../adapters/sqlite/sqlite-schema.js';
import { sessionFields } from '../../../src/agent/record-fields.js';
import type { AgentInfo } from '../../../src/types.js';
import { tempDir } from '../../bin/cli-support.js';
import { byAgentId, oddSessionInfos, sessionsOf } from '../../helpers/session-infos.js';
import { agentSchemaFile, agentSchemaVersion } from '../../helpers/sqlite-files.js';

/**
 * Schema 6 stores each info's session in `agent_info.session_json`. The
 * upgrade only adds the column: rows saved before keep NULL (and their
 * sessions are read from the info) until they are saved again.
 */

let scratch: { dir: string; remove: () => Promise<void> };
beforeAll(async () => {
  scratch = await tempDir('kode-sqlite-schema-');
});
afterAll(() => scratch.remove());

/** A file at agent schema 5 holding `infos`, as kode-store wrote them before schema 6. */
function version5File(path: string, infos: readonly AgentInfo[]): void {
  const db = agentSchemaFile(path, 5);
  try {
    const insert = db.prepare(
      'INSERT INTO agent_info (agent_id, info_json, template_id, user_id, created_at_ms, updated_at_ms, message_count) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    for (const [i, info] of infos.entries()) {
      const fields = sessionFields(info);
      db.prepare('INSERT INTO agents (agent_id, last_write_ms) VALUES (?, ?)').run(info.agentId, 1000 + i);
      insert.run(
        info.agentId,
        JSON.stringify(info),
        fields.templateId,
        fields.userId,
        fields.createdAtMs,
        1000 + i,
        fields.messageCount,
      );
    }
  } finally {
    db.close();
  }
}

function sessionColumn(path: string): Map<string, string | null> {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.prepare('SELECT agent_id, session_json FROM agent_info').all() as Array<{
      agent_id: string;
      session_json: string | null;
    }>;
    return new Map(rows.map((row) => [row.agent_id, row.session_json]));
  } finally {
    db.close();
  }
}

describe('agent schema 6: the session beside the info', () => {
  it('upgrades a version-5 file without rewriting its rows; sessions read the same before and after a re-save', async () => {
    const path = join(scratch.dir, 'v5.db');
    const infos = oddSessionInfos('v5-', 'tpl');
    version5File(path, infos);
    const store = new SqliteStore({ path });
    try {
      expect(byAgentId(await store.querySessions({ templateId: 'tpl', limit: 50 }))).toEqual(
        sessionsOf(infos),
      );
      expect(agentSchemaVersion(path)).toBe(latestVersion(AGENT_SCHEMA_MIGRATIONS));
      expect(latestVersion(AGENT_SCHEMA_MIGRATIONS)).toBe(6);
      expect([...sessionColumn(path).values()], 'the upgrade filled no row').toEqual(infos.map(() => null));

      // Every info saved again (in the SDK: after each step) gets its session.
      const [first, second] = infos as [AgentInfo, AgentInfo];
      const resaved = { ...first, messageCount: 9 };
      await store.saveInfo(first.agentId, resaved);
      const columns = sessionColumn(path);
      expect(columns.get(first.agentId)).toBe(sessionFields(resaved).sessionJson);
      expect(columns.get(second.agentId)).toBeNull();
      const after = [resaved, ...infos.slice(1)];
      expect(byAgentId(await store.querySessions({ templateId: 'tpl', limit: 50 }))).toEqual(
        sessionsOf(after),
      );

      // A fork of an old row gets its own session, made from its info.
      const [forkId] = (await store.batchFork(second.agentId, 1)) as [string];
      const forkInfo = (await store.loadInfo(forkId)) as AgentInfo;
      expect(sessionColumn(path).get(forkId)).toBe(sessionFields(forkInfo).sessionJson);
      expect(await store.querySessions({ agentId: forkId })).toEqual([sessionsOf([forkInfo]).get(forkId)]);
    } finally {
      await store.close();
    }
  });

  it('reads a page from session_json, not from the info', async () => {
    const path = join(scratch.dir, 'column.db');
    const store = new SqliteStore({ path });
    try {
      const info = oddSessionInfos('col-', 'tpl')[1] as AgentInfo;
      await store.saveInfo(info.agentId, info);
      const [forkId] = (await store.batchFork(info.agentId, 1)) as [string];
      const db = new Database(path);
      try {
        // Only the info changes behind the store's back: the page shows the saved session.
        db.prepare("UPDATE agent_info SET info_json = '{}'").run();
      } finally {
        db.close();
      }
      const sessions = await store.querySessions({
        templateId: 'tpl',
        sortOrder: 'asc',
        sortBy: 'created_at',
      });
      expect(sessions.map((s) => s.messageCount)).toEqual([info.messageCount, info.messageCount]);
      expect(sessions.map((s) => s.breakpoint)).toEqual([info.breakpoint, info.breakpoint]);
      expect(sessions.map((s) => s.agentId).sort()).toEqual([info.agentId, forkId].sort());
    } finally {
      await store.close();
    }
  });
});
