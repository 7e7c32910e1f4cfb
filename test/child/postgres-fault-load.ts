/**
 * Mixed load on a PostgresStore while the parent test kills its connections.
 * Usage: node --import tsx postgres-fault-load.ts <url> <schema> <applicationName>
 *
 * Runs agent appends (batches of un-awaited appendEvent), saveMessages,
 * saveInfo, batchFork (a transaction) and kv.set (a KV transaction) in
 * several loops at once. Prints `ready` once every kind of call has
 * succeeded once. On a `stop` line from stdin the loops finish, one more
 * round of every call must succeed (the store recovered), and the child
 * prints one `summary {json}` line: the calls that succeeded, and every
 * rejection by error code (`untyped` for anything not ours, with messages).
 *
 * It installs no 'uncaughtException' handler on purpose: a driver 'error'
 * event nobody listens to must crash it, and the parent sees a non-zero exit.
 */
import { createInterface } from 'node:readline';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { isKodeStoreError } from '../../src/errors.js';
import type { AgentInfo } from '../../src/types.js';

const [url, schema, applicationName] = process.argv.slice(2);
if (!url || !schema || !applicationName) {
  console.error('usage: postgres-fault-load.ts <url> <schema> <applicationName>');
  process.exit(2);
}

const store = new PostgresStore({
  connection: { connectionString: url, max: 6, applicationName },
  schema,
});

const info = (agentId: string, messageCount: number): AgentInfo => ({
  agentId,
  templateId: 'fault-load',
  createdAt: '2025-01-01T00:00:00.000Z',
  lineage: [],
  configVersion: 'v1',
  messageCount,
  lastSfpIndex: -1,
});

const succeeded: Record<string, number> = {};
const rejected: Record<string, number> = {};
const untypedMessages = new Set<string>();

/** Records the outcome of one call; never throws. */
async function track(kind: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
    succeeded[kind] = (succeeded[kind] ?? 0) + 1;
  } catch (error) {
    const code = isKodeStoreError(error) ? error.code : 'untyped';
    rejected[code] = (rejected[code] ?? 0) + 1;
    if (code === 'untyped' || code === 'KODE_STORE_ERROR') {
      untypedMessages.add(`${kind}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** One round of every kind of call on one worker's agent. */
async function round(worker: number, n: number): Promise<void> {
  const agentId = `fault-${worker}`;
  const events = Array.from({ length: 5 }, (_, i) =>
    store.appendEvent(agentId, {
      cursor: n * 5 + i,
      bookmark: { seq: n * 5 + i, timestamp: Date.now() },
      event: { channel: 'progress', type: 'text_chunk', delta: `w${worker} r${n} e${i}` },
    } as never),
  );
  await Promise.all([
    ...events.map((append) => track('appendEvent', () => append)),
    track('saveMessages', () =>
      store.saveMessages(
        agentId,
        Array.from({ length: (n % 7) + 1 }, (_, i) => ({
          role: 'user' as const,
          content: [{ type: 'text' as const, text: `message ${i} of round ${n}` }],
        })),
      ),
    ),
    track('saveInfo', () => store.saveInfo(agentId, info(agentId, n))),
    track('kv.set', () =>
      store.kv.set('fault-load', 'counters', `${worker}-${n % 10}`, { n }, { autoCreateInstance: true }),
    ),
  ]);
  if (n % 5 === 0) {
    await track('batchFork', async () => {
      const forks = await store.batchFork(agentId, 1);
      await Promise.all(forks.map((id) => store.delete(id)));
    });
  }
}

let stopping = false;
const WORKERS = 4;

async function worker(index: number): Promise<void> {
  for (let n = 0; !stopping; n++) await round(index, n);
}

// Every kind of call works once before the parent starts killing connections.
for (let w = 0; w < WORKERS; w++) await round(w, 0);
if (Object.keys(rejected).length > 0) {
  console.error(`warm-up failed: ${JSON.stringify({ rejected, untyped: [...untypedMessages] })}`);
  process.exit(3);
}
process.stdout.write('ready\n');

const loops = Array.from({ length: WORKERS }, (_, w) => worker(w));

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === 'stop') break;
}
stopping = true;
await Promise.all(loops);

// The connections are no longer killed: every call must work again.
const before = { ...rejected };
for (let w = 0; w < WORKERS; w++) await round(w, 1_000_000 + w);
const recovered = JSON.stringify(before) === JSON.stringify(rejected);

await store.close();
process.stdout.write(
  `summary ${JSON.stringify({ succeeded, rejected, untyped: [...untypedMessages], recovered })}\n`,
);
process.exit(0);
