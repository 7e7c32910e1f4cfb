/**
 * One process of the PostgreSQL fleet test (test/adapters/postgres/postgres-fleet-faults.test.ts):
 * it drives its agents the way the KODE SDK does, one turn after another per
 * agent and all its agents at once, while the parent cuts its connections and
 * restarts the server. Other processes drive the same agents, so their locks
 * are contended.
 *
 * A turn, under `acquireAgentLock(agent)`: load the conversation and the
 * tool-call records, fire a burst of un-awaited `appendEvent`, save the whole
 * conversation with this turn's two messages added (`saveMessages`) and the
 * whole tool-call list with this turn's record added, wait for the events,
 * release. Every outcome is recorded, with the time the lock was held from
 * (after acquire resolved) to (when release was called).
 *
 * Usage: node --import tsx postgres-fleet.ts, then a FleetChildConfig as one
 * JSON line on stdin. Prints `ready` after its first turn in which every write
 * resolved. On a `restarted` line it starts counting such turns and prints
 * `progress <n>` once `progressTurns` of them have finished after it. On `stop` it finishes its turns, closes the store and prints
 * `report <json FleetChildReport>`. It installs no 'uncaughtException' handler:
 * a driver error nobody hears must crash it.
 */
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { isKodeStoreError } from '../../src/errors.js';
import type { LockReleaseFn, Message, Timeline, ToolCallRecord } from '../../src/types.js';

export interface FleetChildConfig {
  url: string;
  schema: string;
  /** This process's number (0..processes-1): part of every tag it writes. */
  process: number;
  /** The agents (numbers) this process drives; other processes drive some of them too. */
  agents: number[];
  eventsPerTurn: number;
  /** Clean turns (every write resolved) after the restart before it reports `progress`. */
  progressTurns: number;
  /** How long a turn waits for its agent's lock before it gives up (and is counted in acquireFailures). */
  lockWaitMs: number;
  applicationName: string;
  lockLeaseMs: number;
}

/** What one outcome was: `ok`, or the rejection's error code (`untyped: message` for anything not ours). */
export type Outcome = string;

export interface TurnRecord {
  agent: number;
  turn: number;
  /** Epoch ms: after acquire resolved, and when release was first called. */
  start: number;
  end: number;
  /** `ok`, or why the turn wrote nothing (its load failed). */
  load: Outcome;
  messages?: Outcome;
  toolCalls?: Outcome;
  events?: Outcome[];
  afterRestart: boolean;
}

export interface FleetChildReport {
  turns: TurnRecord[];
  /** Acquire rejections by code (a turn not taken). */
  acquireFailures: Record<string, number>;
  /** Release calls that had to be repeated. */
  releaseRetries: number;
}

export const fleetAgentId = (agent: number) => `fleet-agent-${agent}`;

/** The two messages turn `turn` of process `process` adds. */
export function turnMessages(process: number, turn: number): Message[] {
  return [
    { role: 'user', content: [{ type: 'text', text: `p${process} t${turn} question` }] },
    { role: 'assistant', content: [{ type: 'text', text: `p${process} t${turn} answer` }] },
  ];
}

export function turnToolCall(process: number, turn: number): ToolCallRecord {
  return {
    id: `call-p${process}-t${turn}`,
    name: 'fleet_tool',
    input: { process, turn },
    state: 'COMPLETED',
    approval: { required: false },
    result: { ok: true },
    createdAt: 1_795_000_000_000 + turn,
    updatedAt: 1_795_000_000_000 + turn,
    auditTrail: [],
  };
}

export function turnEvent(process: number, turn: number, index: number): Timeline {
  const bookmark = { seq: turn * 1000 + index, timestamp: 1_795_000_000_000 + turn };
  return {
    cursor: turn * 1000 + index,
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

function outcomeOf(error: unknown): Outcome {
  if (isKodeStoreError(error)) return error.code;
  return `untyped: ${error instanceof Error ? error.message : String(error)}`;
}

const settle = (call: Promise<unknown>): Promise<Outcome> => call.then(() => 'ok', outcomeOf);

async function main(): Promise<void> {
  // The config comes as the first line on stdin: the parent starts the
  // processes (loading TypeScript takes a while) while its server starts.
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const first = await lines.next();
  const config = JSON.parse(first.done ? '{}' : first.value) as FleetChildConfig;
  const store = new PostgresStore({
    connection: { connectionString: config.url, max: 4, applicationName: config.applicationName },
    schema: config.schema,
    lockLeaseMs: config.lockLeaseMs,
  });
  const report: FleetChildReport = { turns: [], acquireFailures: {}, releaseRetries: 0 };
  let stopping = false;
  let restarted = false;
  let cleanAfterRestart = 0;
  let readyAgents = 0;

  const release = async (fn: LockReleaseFn) => {
    // Release is idempotent until it works; a lease left behind would only
    // make the other processes wait for it to expire.
    for (let attempt = 0; ; attempt++) {
      try {
        await fn();
        return;
      } catch (error) {
        // The server may be restarting: keep trying for a while (a minute).
        if (attempt >= 3000) throw error;
        report.releaseRetries++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  };

  const turn = async (agent: number, n: number): Promise<boolean> => {
    const agentId = fleetAgentId(agent);
    let releaseLock: LockReleaseFn;
    try {
      releaseLock = await store.acquireAgentLock(agentId, config.lockWaitMs);
    } catch (error) {
      const code = outcomeOf(error);
      report.acquireFailures[code] = (report.acquireFailures[code] ?? 0) + 1;
      return false;
    }
    const record: TurnRecord = {
      agent,
      turn: n,
      start: Date.now(),
      end: 0,
      load: 'ok',
      afterRestart: restarted,
    };
    try {
      let messages: Message[];
      let toolCalls: ToolCallRecord[];
      try {
        [messages, toolCalls] = await Promise.all([
          store.loadMessages(agentId),
          store.loadToolCallRecords(agentId),
        ]);
      } catch (error) {
        record.load = outcomeOf(error);
        return false;
      }
      // Un-awaited, as the SDK emits events while a turn runs.
      const appends = Array.from({ length: config.eventsPerTurn }, (_, i) =>
        store.appendEvent(agentId, turnEvent(config.process, n, i)),
      );
      const events = Promise.all(appends.map(settle));
      record.messages = await settle(
        store.saveMessages(agentId, [...messages, ...turnMessages(config.process, n)]),
      );
      record.toolCalls = await settle(
        store.saveToolCallRecords(agentId, [...toolCalls, turnToolCall(config.process, n)]),
      );
      record.events = await events;
      return [record.messages, record.toolCalls, ...record.events].every((outcome) => outcome === 'ok');
    } finally {
      record.end = Date.now();
      report.turns.push(record);
      await release(releaseLock);
    }
  };

  const drive = async (agent: number) => {
    let wasReady = false;
    for (let n = 0; !stopping; n++) {
      const clean = await turn(agent, n);
      if (clean && !wasReady) {
        wasReady = true;
        if (++readyAgents === 1) process.stdout.write('ready\n');
      }
      if (clean && restarted && ++cleanAfterRestart === config.progressTurns) {
        process.stdout.write(`progress ${cleanAfterRestart}\n`);
      }
    }
  };

  const agents = config.agents.map((agent) => drive(agent));
  for (let line = await lines.next(); !line.done; line = await lines.next()) {
    if (line.value.trim() === 'restarted') restarted = true;
    if (line.value.trim() === 'stop') break;
  }
  stopping = true;
  await Promise.all(agents);
  await store.close();
  process.stdout.write(`report ${JSON.stringify(report)}\n`);
  process.exit(0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
