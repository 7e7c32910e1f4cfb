import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import type { AgentInfo } from '../../../src/types.js';
import { byAgentId, oddSessionInfos, sessionsOf } from '../../helpers/session-infos.js';

/**
 * A page of sessions reads `agent_info.session_json`, the session saved with
 * the info; a row saved before that column existed (schema 6) has NULL
 * there, and SQLite builds its session from the fields of the stored info
 * (sqlite-queries.ts, sessionFromInfo). Both must read every field exactly
 * as decoding the whole info does, and a damaged old row must still fail as
 * CorruptDataError.
 */
describe('SQLite querySessions: the stored session, or the fields SQLite extracts from an older row', () => {
  let root: string;
  let path: string;
  let store: SqliteStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kode-session-page-'));
    path = join(root, 'store.db');
    store = new SqliteStore({ path });
  });

  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  /** Runs `sql` on the file behind the store's back. */
  function edit(sql: string): void {
    const db = new Database(path);
    try {
      db.prepare(sql).run();
    } finally {
      db.close();
    }
  }

  it.each([
    ['the stored session', false],
    ['rows saved before session_json', true],
  ])('reads templateId, createdAt, messageCount, lastSfpIndex and breakpoint as the whole info does: %s', async (_, old) => {
    const infos = oddSessionInfos('', 'tpl');
    for (const one of infos) await store.saveInfo(one.agentId, one);
    if (old) edit('UPDATE agent_info SET session_json = NULL');
    const page = await store.querySessions({ templateId: 'tpl', limit: 10 });
    expect(byAgentId(page)).toEqual(sessionsOf(infos));
    // Present-but-null and absent stay apart.
    expect(page.find((s) => s.agentId === 'c-null-breakpoint')).toHaveProperty('breakpoint', null);
    expect(page.find((s) => s.agentId === 'a-plain')).not.toHaveProperty('breakpoint');
  });

  it('fails with CorruptDataError on a damaged info saved before session_json, as before', async () => {
    await store.saveInfo('damaged', { agentId: 'damaged', templateId: 'tpl' } as AgentInfo);
    edit(`UPDATE agent_info SET info_json = '{"agentId": ', session_json = NULL WHERE agent_id = 'damaged'`);
    await expect(store.querySessions({ templateId: 'tpl' })).rejects.toMatchObject({ code: 'KODE_CORRUPT' });
  });
});
