import { eventFields } from '../../src/agent/store-codec.js';
import type { EventMode } from '../../src/hybrid/event-modes.js';
import type { EventRowAccess } from '../../src/transfer/event-mode-move.js';
import type { Timeline } from '../../src/types.js';
import type { MongoDocument } from './mongo-config.js';
import type { OpenMongo } from './mongo-connection.js';
import { toEventDocument } from './mongo-documents.js';
import { EVENT_SORT } from './mongo-queries.js';
import { counterValue, LIVE_AGENT, registration } from './mongo-registry.js';

const PAGE_ROWS = 1024;

/**
 * The database side of moving events between modes (`kode-store events`):
 * event documents in `<prefix>events`, and the registry's `eventFiles`.
 */
export function mongoEventRows(opened: () => Promise<OpenMongo>): EventRowAccess {
  return {
    async agentsWithRows() {
      const { collections } = await opened();
      // `_id` strings sort by UTF-8 bytes: code-point order.
      const groups = await collections.events
        .aggregate([{ $group: { _id: '$agentId' } }, { $sort: { _id: 1 } }])
        .toArray();
      return groups.map((group) => String(group._id));
    },
    async *readRows(agentId) {
      const { collections } = await opened();
      let after = 0;
      for (;;) {
        const docs = await collections.events
          .find({ agentId, seq: { $gt: after } }, { projection: { seq: 1, json: 1 } })
          .sort(EVENT_SORT)
          .limit(PAGE_ROWS)
          .toArray();
        if (docs.length === 0) return;
        after = counterValue(docs[docs.length - 1]?.seq);
        yield docs.map((doc) => String(doc.json));
      }
    },
    async insertRows(agentId, lines) {
      if (lines.length === 0) return;
      const { collections } = await opened();
      // A block of the agent's insertion counter, as an append batch takes
      // one; its server time is the copies' append time.
      const agent = await collections.agents.findOneAndUpdate(
        { _id: agentId },
        { $inc: { seq: lines.length }, ...registration() },
        { upsert: true, returnDocument: 'after', projection: { seq: 1, lastWriteAt: 1 } },
      );
      const last = counterValue(agent?.seq);
      const at = agent?.lastWriteAt instanceof Date ? agent.lastWriteAt : undefined;
      const documents = lines.map((line, i) => {
        const fields = eventFields(JSON.parse(line) as Timeline);
        return toEventDocument(
          agentId,
          last - lines.length + 1 + i,
          line,
          fields,
          at,
        ) as unknown as MongoDocument;
      });
      await collections.events.insertMany(documents, { ordered: true });
    },
    async deleteRows(agentId) {
      const { collections } = await opened();
      await collections.events.deleteMany({ agentId });
    },
    async recordedMode(agentId): Promise<EventMode | undefined> {
      const { collections } = await opened();
      const registry = await collections.agents.findOne(
        { _id: agentId, ...LIVE_AGENT },
        { projection: { eventFiles: 1 } },
      );
      if (registry?.eventFiles === true) return 'file';
      const row = await collections.events.findOne({ agentId }, { projection: { _id: 1 } });
      return row ? 'database' : undefined;
    },
    async recordMode(agentId, mode) {
      const { collections } = await opened();
      const registered = registration();
      const update: MongoDocument =
        mode === 'file'
          ? { ...registered, $set: { eventFiles: true } }
          : { ...registered, $unset: { ...(registered.$unset as MongoDocument), eventFiles: '' } };
      await collections.agents.updateOne({ _id: agentId }, update, { upsert: true });
    },
  };
}
