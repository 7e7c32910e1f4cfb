/**
 * Writes one agent's data from a process whose own time zone (TZ) and whose
 * PostgreSQL session time zone (from the URL's `options`) both differ from
 * the parent test's, then prints what it wrote and when, as one JSON line.
 * Usage: TZ=Asia/Kolkata node --import tsx postgres-tz-writer.ts <url> <schema> <agentId>
 */
import pg from 'pg';
import { PostgresStore } from '../../adapters/postgres/index.js';

const [url, schema, agentId] = process.argv.slice(2);
if (!url || !schema || !agentId) {
  console.error('usage: postgres-tz-writer.ts <url> <schema> <agentId>');
  process.exit(2);
}
const probe = new pg.Client({ connectionString: url });
await probe.connect();
const sessionTimeZone = (await probe.query<{ TimeZone: string }>('SHOW TimeZone')).rows[0]?.TimeZone;
await probe.end();

const store = new PostgresStore({ connection: url, schema });
const info = {
  agentId,
  templateId: 'tz-template',
  createdAt: '2025-06-01T12:00:00.000+05:30',
  lineage: [],
  configVersion: 'v1',
  messageCount: 1,
  lastSfpIndex: 0,
};
await store.saveInfo(agentId, info);
const before = Date.now();
await store.saveMessages(agentId, [
  { role: 'user', content: [{ type: 'text', text: 'written in Kolkata' }] },
]);
const after = Date.now();
await store.saveToolCallRecords(agentId, [
  {
    id: 'tz-call',
    name: 'clock',
    input: {},
    state: 'COMPLETED',
    approval: { required: false },
    createdAt: 1748760000000,
    updatedAt: 1748760000500,
    auditTrail: [],
  },
]);
await store.close();
process.stdout.write(
  `${JSON.stringify({ processTimeZone: Intl.DateTimeFormat().resolvedOptions().timeZone, sessionTimeZone, info, before, after })}\n`,
);
