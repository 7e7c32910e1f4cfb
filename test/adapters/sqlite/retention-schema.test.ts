import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import { AGENT_SCHEMA_MIGRATIONS, latestVersion } from '../../../adapters/sqlite/sqlite-schema.js';
import { collect } from '../../../conformance/runner/assertions.js';
import { BASE_MS, timeline } from '../../../conformance/store/sample-data.js';
import { tempDir } from '../../bin/cli-support.js';
import { agentSchemaFile } from '../../helpers/sqlite-files.js';

/**
 * Retention on a SQLite file written before kode-store recorded write times
 * (agent schema 4): the upgrade starts each agent at its last saveInfo (or
 * at the upgrade when it has none), and events without a stored time are
 * judged by their bookmark.timestamp, kept when they have none.
 */

let scratch: { dir: string; remove: () => Promise<void> };
beforeAll(async () => {
  scratch = await tempDir('kode-retention-schema-');
});
afterAll(() => scratch.remove());

function version4File(path: string): void {
  const db = agentSchemaFile(path, 4);
  const info = db.prepare(
    'INSERT INTO agent_info (agent_id, info_json, template_id, user_id, created_at_ms, updated_at_ms, message_count) VALUES (?, ?, ?, NULL, ?, ?, 0)',
  );
  const event = db.prepare('INSERT INTO events (agent_id, channel, seq, timeline_json) VALUES (?, ?, ?, ?)');
  for (const id of ['saved-long-ago', 'no-info'])
    db.prepare('INSERT INTO agents (agent_id) VALUES (?)').run(id);
  info.run('saved-long-ago', JSON.stringify({ agentId: 'saved-long-ago' }), 'tpl', BASE_MS, BASE_MS);
  for (let seq = 1; seq <= 4; seq++) {
    event.run('no-info', 'progress', seq, JSON.stringify(timeline(seq)));
  }
  // An entry without a bookmark: no time to judge it by.
  event.run(
    'no-info',
    'progress',
    null,
    JSON.stringify({ cursor: 5, event: { channel: 'progress', type: 'x' } }),
  );
  db.close();
}

describe('retention on an upgraded SQLite file', () => {
  it('judges agents by their last saveInfo, or the upgrade, and old events by bookmark.timestamp', async () => {
    const path = join(scratch.dir, 'v4.db');
    version4File(path);
    const upgradedAt = Date.now();
    const store = new SqliteStore({ path });
    const dry = await store.prune({ inactiveBefore: BASE_MS + 1 }, { dryRun: true });
    expect(dry).toMatchObject({ agents: 1, scannedAgents: 2 });
    // The agent without info counts as written at the upgrade.
    expect((await store.prune({ inactiveBefore: upgradedAt - 1 }, { dryRun: true })).agents).toBe(1);

    // timeline(seq) carries bookmark.timestamp BASE_MS + seq: seqs 1 and 2 are older than BASE_MS + 3.
    const pruned = await store.prune({ prefix: 'no-info', events: { olderThan: BASE_MS + 3 } });
    expect(pruned.events).toBe(2);
    const left = await collect(store.readEvents('no-info'));
    expect(left.map((e) => e.cursor)).toEqual([3, 4, 5]);
    await store.close();

    const db = new Database(path, { readonly: true });
    expect(db.prepare("SELECT version FROM kode_schema_version WHERE component = 'agent'").get()).toEqual({
      version: latestVersion(AGENT_SCHEMA_MIGRATIONS),
    });
    db.close();
  });
});
