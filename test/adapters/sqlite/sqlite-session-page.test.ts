import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import { toSessionInfo } from '../../../src/agent/record-fields.js';
import type { AgentInfo } from '../../../src/types.js';

/**
 * A page of sessions is built by SQLite from the fields of each stored info
 * (sqlite-queries.ts, sessionJson), not from the whole info: it must read
 * every field exactly as decoding the whole info does, and a damaged info
 * must still fail as CorruptDataError.
 */
describe('SQLite querySessions: the session fields SQLite extracts', () => {
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

  function info(agentId: string, extra: Record<string, unknown>): AgentInfo {
    return {
      agentId,
      templateId: 'tpl',
      createdAt: '2026-01-01T00:00:00.000Z',
      lineage: [],
      configVersion: 'v1',
      messageCount: 3,
      lastSfpIndex: 2,
      metadata: { breakpoint: 'nested, not the session breakpoint', templateId: 'nested' },
      ...extra,
    } as unknown as AgentInfo;
  }

  it('reads templateId, createdAt, messageCount, lastSfpIndex and breakpoint as the whole info does', async () => {
    const infos: AgentInfo[] = [
      info('a-plain', {}),
      info('b-breakpoint', { breakpoint: 'STREAMING_MODEL' }),
      info('c-null-breakpoint', { breakpoint: null }),
      info('d-odd-values', {
        templateId: 'tpl',
        createdAt: 'zone-less \u0000 \uD800 😀 "quoted" \\ text',
        messageCount: 1.5e300,
        lastSfpIndex: -0.000123,
        breakpoint: { nested: [true, false, null, 'x'] },
      }),
      info('e-missing', { messageCount: undefined, lastSfpIndex: undefined, createdAt: undefined }),
      info('f-types', { templateId: 'tpl', messageCount: true, lastSfpIndex: 'seven', createdAt: 12 }),
    ];
    for (const one of infos) await store.saveInfo(one.agentId, one);
    const page = await store.querySessions({ templateId: 'tpl', limit: 10 });
    const expected = infos.map((one) =>
      toSessionInfo(one.agentId, JSON.parse(JSON.stringify(one)) as Partial<AgentInfo>),
    );
    expect(new Map(page.map((s) => [s.agentId, s]))).toEqual(new Map(expected.map((s) => [s.agentId, s])));
    // Present-but-null and absent stay apart.
    expect(page.find((s) => s.agentId === 'c-null-breakpoint')).toHaveProperty('breakpoint', null);
    expect(page.find((s) => s.agentId === 'a-plain')).not.toHaveProperty('breakpoint');
  });

  it('fails with CorruptDataError on a damaged info, as before', async () => {
    await store.saveInfo('damaged', info('damaged', {}));
    const db = new Database(path);
    try {
      db.prepare(`UPDATE agent_info SET info_json = '{"agentId": ' WHERE agent_id = 'damaged'`).run();
    } finally {
      db.close();
    }
    await expect(store.querySessions({ templateId: 'tpl' })).rejects.toMatchObject({ code: 'KODE_CORRUPT' });
  });
});
