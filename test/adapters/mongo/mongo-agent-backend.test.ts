import { afterAll, expect, it } from 'vitest';
import { MongoStore } from '../../../adapters/mongo/index.js';
import { sessionFields } from '../../../src/agent/record-fields.js';
import type { AgentInfo } from '../../../src/types.js';
import { describeMongo, useTestDatabase, withAdminClient } from '../../helpers/mongo.js';
import { byAgentId, oddSessionInfos, sessionsOf } from '../../helpers/session-infos.js';

/**
 * Each info document holds its session (`sessionJson`), which a
 * `querySessions` page reads; a document saved before the store wrote it
 * has none, and the page reads its whole info instead, until its next save.
 */
describeMongo('MongoDB querySessions: the stored session, or the info of an older document', () => {
  const place = useTestDatabase('sessions');
  const stores: MongoStore[] = [];
  const open = (collectionPrefix: string) => {
    const store = new MongoStore({ uri: place.url, dbName: place.dbName, collectionPrefix });
    stores.push(store);
    return store;
  };
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
  });

  const infoDocuments = (prefix: string) =>
    withAdminClient(async (client) => {
      const docs = await client
        .db(place.dbName)
        .collection<{ _id: string; sessionJson?: string }>(`${prefix}infos`)
        .find({}, { projection: { sessionJson: 1 } })
        .toArray();
      return new Map(docs.map((doc) => [doc._id, doc.sessionJson]));
    });

  it('reads documents saved before the session was stored as their info, and stores it on the next save', async () => {
    const prefix = 'old_';
    const store = open(prefix);
    const infos = oddSessionInfos('old-', 'tpl');
    for (const info of infos) await store.saveInfo(info.agentId, info);
    // Documents as the store wrote them before: no sessionJson.
    await withAdminClient((client) =>
      client
        .db(place.dbName)
        .collection(`${prefix}infos`)
        .updateMany({}, { $unset: { sessionJson: '' } }),
    );
    expect([...(await infoDocuments(prefix)).values()]).toEqual(infos.map(() => undefined));
    expect(byAgentId(await store.querySessions({ templateId: 'tpl', limit: 50 }))).toEqual(sessionsOf(infos));

    const [first, second] = infos as [AgentInfo, AgentInfo];
    const resaved = { ...first, messageCount: 9 };
    await store.saveInfo(first.agentId, resaved);
    const documents = await infoDocuments(prefix);
    expect(documents.get(first.agentId)).toBe(sessionFields(resaved).sessionJson);
    expect(documents.get(second.agentId)).toBeUndefined();
    const after = [resaved, ...infos.slice(1)];
    expect(byAgentId(await store.querySessions({ templateId: 'tpl', limit: 50 }))).toEqual(sessionsOf(after));

    // A fork of an old document gets its own session, made from its info.
    const [forkId] = (await store.batchFork(second.agentId, 1)) as [string];
    const forkInfo = (await store.loadInfo(forkId)) as AgentInfo;
    expect((await infoDocuments(prefix)).get(forkId)).toBe(sessionFields(forkInfo).sessionJson);
    expect(await store.querySessions({ agentId: forkId })).toEqual([sessionsOf([forkInfo]).get(forkId)]);
  });

  it('reads a page from sessionJson, not from the info, for saved and forked agents', async () => {
    const prefix = 'col_';
    const store = open(prefix);
    const infos = oddSessionInfos('col-', 'tpl');
    for (const info of infos) await store.saveInfo(info.agentId, info);
    const forkIds = await store.batchFork((infos[1] as AgentInfo).agentId, 2);
    const forkInfos = await Promise.all(forkIds.map(async (id) => (await store.loadInfo(id)) as AgentInfo));
    const documents = await infoDocuments(prefix);
    for (const info of [...infos, ...forkInfos]) {
      expect(documents.get(info.agentId), info.agentId).toBe(sessionFields(info).sessionJson);
    }
    // Only the infos change behind the store's back: the page shows the saved sessions.
    await withAdminClient((client) =>
      client
        .db(place.dbName)
        .collection(`${prefix}infos`)
        .updateMany({}, { $set: { json: '{}' } }),
    );
    expect(byAgentId(await store.querySessions({ templateId: 'tpl', limit: 50 }))).toEqual(
      sessionsOf([...infos, ...forkInfos]),
    );
  });
});
