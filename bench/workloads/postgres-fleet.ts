import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { PostgresStore } from '../../adapters/postgres/index.js';
import type { Message, Timeline, ToolCallRecord } from '../../src/types.js';
import type { Measurement } from '../bench-result.js';
import { medianOfRuns } from '../measure.js';
import { type Workload, withFreshBackend } from '../workload.js';

/**
 * (i) A fleet of processes on one PostgreSQL server: 4 processes, each
 * driving its agents the way the KODE SDK does, every agent driven by two of
 * them so that its lock is contended. A turn, under the agent's lock: load
 * the conversation and the tool-call records, fire a burst of un-awaited
 * `appendEvent`, save the whole conversation with two messages more and the
 * whole tool-call list with one record more, wait for the events, release.
 * The figure is turns per second over the 4 processes (the same workload
 * as test/adapters/postgres/postgres-fleet-faults.test.ts, without the faults).
 *
 * The raw baseline makes the same writes from 4 processes with `pg`: a lease
 * row taken and deleted around the turn, the two reads, the two new message
 * rows, one tool-call row and the events (one statement each, in flight at
 * once), each autocommitted.
 *
 * This file is also the processes' script (`main` at the end): the parent
 * starts 4 of them, which run both fleets in turn on `run <mode> <n>` lines.
 */

const SELF = fileURLToPath(import.meta.url);
/** The repository root: `--import tsx` resolves from the working directory. */
const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
const PROCESSES = 4;
const EVENTS_PER_TURN = 5;

/** Agents per process and turns per agent in one measured run, by profile. */
const SIZES = {
  quick: { agentsPerProcess: 3, turnsPerRun: 1 },
  full: { agentsPerProcess: 25, turnsPerRun: 8 },
  large: { agentsPerProcess: 25, turnsPerRun: 20 },
  // --medium shrinks only the peer comparison (bench/bench-profile.ts).
  medium: { agentsPerProcess: 25, turnsPerRun: 8 },
} as const;

type Mode = 'store' | 'raw';

interface ChildConfig {
  url: string;
  /** The store's schema, and the raw baseline's. */
  schema: string;
  rawSchema: string;
  process: number;
  agents: number[];
  turnsPerRun: number;
}

const agentId = (agent: number) => `pg-fleet-${agent}`;

function turnMessages(process: number, turn: number): Message[] {
  return [
    { role: 'user', content: [{ type: 'text', text: `p${process} t${turn}: what is next?` }] },
    { role: 'assistant', content: [{ type: 'text', text: `p${process} t${turn}: the next step, done.` }] },
  ];
}

function turnToolCall(process: number, turn: number): ToolCallRecord {
  return {
    id: `call-p${process}-t${turn}`,
    name: 'fs_write',
    input: { path: `notes/${process}-${turn}.md`, content: 'a line' },
    state: 'COMPLETED',
    approval: { required: false },
    result: { ok: true },
    createdAt: 1_795_000_000_000 + turn,
    updatedAt: 1_795_000_000_000 + turn,
    auditTrail: [],
  };
}

function turnEvent(process: number, turn: number, index: number): Timeline {
  const bookmark = { seq: turn * 100 + index, timestamp: 1_795_000_000_000 + turn };
  return {
    cursor: turn * 100 + index,
    bookmark,
    event: {
      channel: 'progress',
      type: 'text_chunk',
      step: turn,
      delta: `p${process} t${turn} e${index}`,
      bookmark,
    },
  } as Timeline;
}

/** One agent's turn, through the store or with plain pg. */
type Turn = (agent: number, turn: number) => Promise<void>;

function storeTurns(config: ChildConfig): { turn: Turn; close(): Promise<void> } {
  const store = new PostgresStore({
    connection: { connectionString: config.url, max: 4 },
    schema: config.schema,
  });
  return {
    async turn(agent, n) {
      const id = agentId(agent);
      const release = await store.acquireAgentLock(id, 60_000);
      try {
        const [messages, toolCalls] = await Promise.all([
          store.loadMessages(id),
          store.loadToolCallRecords(id),
        ]);
        const events = Array.from({ length: EVENTS_PER_TURN }, (_, i) =>
          store.appendEvent(id, turnEvent(config.process, n, i)),
        );
        await store.saveMessages(id, [...messages, ...turnMessages(config.process, n)]);
        await store.saveToolCallRecords(id, [...toolCalls, turnToolCall(config.process, n)]);
        await Promise.all(events);
      } finally {
        await release();
      }
    },
    close: () => store.close(),
  };
}

/** The raw tables (in the workload's raw schema), created by the parent. */
function rawTables(schema: string): string[] {
  const s = pg.escapeIdentifier(schema);
  return [
    `CREATE SCHEMA ${s}`,
    `CREATE TABLE ${s}.locks (agent_id text PRIMARY KEY, holder text NOT NULL)`,
    `CREATE TABLE ${s}.messages (agent_id text NOT NULL, position integer NOT NULL, json text NOT NULL,
      PRIMARY KEY (agent_id, position))`,
    `CREATE TABLE ${s}.tool_calls (agent_id text NOT NULL, position integer NOT NULL, json text NOT NULL,
      PRIMARY KEY (agent_id, position))`,
    `CREATE TABLE ${s}.events (id bigserial, agent_id text NOT NULL, json text NOT NULL, PRIMARY KEY (agent_id, id))`,
  ];
}

function rawTurns(config: ChildConfig): { turn: Turn; close(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: config.url, max: 4 });
  const s = pg.escapeIdentifier(config.rawSchema);
  return {
    async turn(agent, n) {
      const id = agentId(agent);
      const holder = `${config.process}:${agent}:${n}`;
      // The same polling as a waiter of the store's lock: doubling, up to 50 ms.
      for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
        const taken = await pool.query(
          `INSERT INTO ${s}.locks (agent_id, holder) VALUES ($1, $2) ON CONFLICT (agent_id) DO NOTHING`,
          [id, holder],
        );
        if (taken.rowCount === 1) break;
        await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
      }
      try {
        const [messages] = await Promise.all([
          pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${s}.messages WHERE agent_id = $1`, [id]),
          pool.query(`SELECT json FROM ${s}.tool_calls WHERE agent_id = $1 ORDER BY position`, [id]),
        ]);
        const next = messages.rows[0]?.n ?? 0;
        const events = Array.from({ length: EVENTS_PER_TURN }, (_, i) =>
          pool.query(`INSERT INTO ${s}.events (agent_id, json) VALUES ($1, $2)`, [
            id,
            JSON.stringify(turnEvent(config.process, n, i)),
          ]),
        );
        const [question, answer] = turnMessages(config.process, n).map((m) => JSON.stringify(m));
        await pool.query(
          `INSERT INTO ${s}.messages (agent_id, position, json) VALUES ($1, $2, $3), ($1, $4, $5)`,
          [id, next, question, next + 1, answer],
        );
        await pool.query(
          `INSERT INTO ${s}.tool_calls (agent_id, position, json)
           VALUES ($1, (SELECT count(*) FROM ${s}.tool_calls WHERE agent_id = $1), $2)`,
          [id, JSON.stringify(turnToolCall(config.process, n))],
        );
        await Promise.all(events);
      } finally {
        await pool.query(`DELETE FROM ${s}.locks WHERE agent_id = $1 AND holder = $2`, [id, holder]);
      }
    },
    close: () => pool.end(),
  };
}

/** A fleet process, told what to run line by line. */
interface FleetProcess {
  child: ChildProcess;
  /** Sends `run <mode> <n>` and resolves when the process reports it done. */
  run(mode: Mode, n: number): Promise<void>;
  stop(): Promise<void>;
}

function startProcess(config: ChildConfig): FleetProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, JSON.stringify(config)], {
    cwd: REPOSITORY,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const waiting = new Map<string, () => void>();
  let failed: Error | undefined;
  const fail = (error: Error) => {
    failed = error;
    for (const wake of waiting.values()) wake();
  };
  child.once('exit', (code) => {
    if (code !== 0) fail(new Error(`a fleet process exited with ${code}: ${stderr.trim()}`));
  });
  if (child.stdout) {
    createInterface({ input: child.stdout }).on('line', (line) => waiting.get(line.trim())?.());
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    async run(mode, n) {
      if (failed) throw failed;
      const done = new Promise<void>((resolve) => waiting.set(`done ${mode} ${n}`, resolve));
      child.stdin?.write(`run ${mode} ${n}\n`);
      await done;
      waiting.delete(`done ${mode} ${n}`);
      if (failed) throw failed;
    },
    async stop() {
      child.stdin?.end();
      await exited;
    },
  };
}

export const postgresFleetWorkload: Workload = {
  id: 'i-postgres-fleet',
  title: 'a fleet of 4 processes on one PostgreSQL server',
  touchesEvents: false,
  async run(context) {
    if (context.backend.family !== 'postgres') {
      return { skipped: 'a fleet of processes sharing one PostgreSQL server: PostgreSQL only' };
    }
    const size = SIZES[context.profile.name];
    return withFreshBackend(context, 'pg-fleet', async ({ store, location }) => {
      if (location.kind !== 'postgres') throw new Error('a PostgreSQL backend without a PostgreSQL location');
      // The schema is migrated before the processes start, as a deployment does.
      await (store as PostgresStore).open();
      const rawSchema = `${location.schema}_raw_fleet`;
      const admin = new pg.Client({ connectionString: location.url });
      await admin.connect();
      const processes: FleetProcess[] = [];
      try {
        for (const statement of rawTables(rawSchema)) await admin.query(statement);
        // The same 4 processes run both fleets, one after the other (never at once).
        const fleet = Array.from({ length: PROCESSES }, (_, p) =>
          startProcess({
            url: location.url,
            schema: location.schema,
            rawSchema,
            process: p,
            // Processes p and p + 2 drive the same agents.
            agents: Array.from(
              { length: size.agentsPerProcess },
              (_, k) => (p % 2) * size.agentsPerProcess + k,
            ),
            turnsPerRun: size.turnsPerRun,
          }),
        );
        processes.push(...fleet);
        const turnsPerRun = PROCESSES * size.agentsPerProcess * size.turnsPerRun;
        const fleetRun = (mode: Mode) => async (run: number) => {
          const started = performance.now();
          await Promise.all(fleet.map((p) => p.run(mode, run + 1)));
          return { rate: (turnsPerRun / (performance.now() - started)) * 1000 };
        };
        const rates = await medianOfRunsOf(context, fleetRun('store'), fleetRun('raw'));
        const measurement: Measurement = {
          metric: `SDK turns, ${PROCESSES} processes × ${size.agentsPerProcess} agents (each agent in two)`,
          value: rates.store,
          unit: 'turns/s',
          raw: rates.raw,
          target: { kind: 'ratio-min', limit: 0.5 },
          note: `a turn: lock, 2 loads, ${EVENTS_PER_TURN} un-awaited appends, saveMessages, saveToolCallRecords, release; raw: the same writes with pg`,
        };
        return [measurement];
      } finally {
        await Promise.allSettled(processes.map((p) => p.stop()));
        await admin
          .query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(rawSchema)} CASCADE`)
          .catch(() => undefined);
        await admin.end();
      }
    });
  },
};

/** Interleaved warm-up and measured runs of the two fleets; the medians of their rates. */
async function medianOfRunsOf(
  context: Parameters<Workload['run']>[0],
  store: (run: number) => Promise<{ rate: number }>,
  raw: (run: number) => Promise<{ rate: number }>,
): Promise<{ store: number; raw: number }> {
  const rates = await medianOfRuns(context.profile.runs, { store, raw }, (run) =>
    context.phase(`${PROCESSES} processes, ${run < 0 ? 'warm-up' : `run ${run + 1}`}`),
  );
  return { store: rates.store?.rate as number, raw: rates.raw?.rate as number };
}

/** A fleet process: on `run <mode> <n>`, runs `turnsPerRun` turns on each of its agents (all at once). */
async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
  const drivers = { store: storeTurns(config), raw: rawTurns(config) };
  const turns = { store: 0, raw: 0 };
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, mode, n] = line.trim().split(' ');
    if (command !== 'run' || (mode !== 'store' && mode !== 'raw')) continue;
    const first = turns[mode];
    turns[mode] += config.turnsPerRun;
    await Promise.all(
      config.agents.map(async (agent) => {
        for (let t = first; t < first + config.turnsPerRun; t++) await drivers[mode].turn(agent, t);
      }),
    );
    process.stdout.write(`done ${mode} ${n}\n`);
  }
  await Promise.all([drivers.store.close(), drivers.raw.close()]);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
