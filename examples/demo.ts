/**
 * The main job, end to end: a scripted agent session driven exactly the way
 * the KODE SDK drives its store, on whatever `createExtendedStore()` returns
 * (SQLite at ./data/agents.db when nothing is set). No model is needed.
 *
 *   npm run demo                              # SQLite, the embedded default
 *   KODE_STORE_TYPE=postgres DATABASE_URL=postgres://… npm run demo
 *
 * Per step the SDK saves the whole conversation, saves the agent info, moves
 * tool calls through their states (saving the whole list each time) and
 * fires events for every streamed chunk without awaiting them. Then it takes
 * a snapshot, forks, takes the agent lock, and finally "resumes" with a new
 * store object that reads everything back and checks it.
 */

import type {
  AgentInfo,
  ExtendedStore,
  Message,
  Timeline,
  TodoSnapshot,
  ToolCallRecord,
  ToolCallState,
} from '../src/index.js';
import { createExtendedStore } from '../src/index.js';

const STEPS = Number(process.env.DEMO_STEPS ?? 30);
const CHUNKS_PER_REPLY = 12;

const agentId = `demo/agt-${Date.now().toString(36)}`;
const startedAt = new Date().toISOString();
let seq = 0;
let cursor = 0;

function timeline(event: Timeline['event']): Timeline {
  seq += 1;
  cursor += 1;
  const bookmark = { seq, timestamp: Date.now() };
  return { cursor, bookmark, event: { ...event, bookmark } as Timeline['event'] };
}

function info(messageCount: number): AgentInfo {
  return {
    agentId,
    templateId: 'demo-assistant',
    createdAt: startedAt,
    lineage: [],
    configVersion: 'v2.7.0',
    messageCount,
    lastSfpIndex: Math.max(0, messageCount - 1),
    lastBookmark: { seq, timestamp: Date.now() },
    breakpoint: 'READY',
    metadata: { userId: 'demo-user', modelConfig: { provider: 'scripted', model: 'none' } },
  };
}

function toolCall(step: number, state: ToolCallState, previous?: ToolCallRecord): ToolCallRecord {
  const now = Date.now();
  const record: ToolCallRecord = previous
    ? { ...previous, state, updatedAt: now, auditTrail: [...previous.auditTrail, { state, timestamp: now }] }
    : {
        id: `toolu_${step.toString().padStart(4, '0')}`,
        name: step % 3 === 0 ? 'fs_write' : 'fs_read',
        input: { path: `/workspace/project/notes-${step}.md`, 'x.y': '$dotted keys survive' },
        state,
        approval: { required: step % 5 === 0, decision: step % 5 === 0 ? 'allow' : undefined },
        createdAt: now,
        updatedAt: now,
        auditTrail: [{ state, timestamp: now }],
      };
  if (state === 'COMPLETED') {
    record.result = { ok: true, bytes: 42 * step };
    record.completedAt = now;
    record.durationMs = 3;
  }
  return record;
}

async function runStep(store: ExtendedStore, step: number, messages: Message[], calls: ToolCallRecord[]) {
  const userText = `Step ${step}: please update notes — 注意 ✅ (${'context '.repeat(40).trim()})`;
  messages.push({ role: 'user', content: [{ type: 'text', text: userText }] });
  await store.saveMessages(agentId, messages);

  // Streamed reply: the SDK fires these without awaiting them.
  const pending: Promise<void>[] = [];
  const fire = (event: Timeline['event']) => pending.push(store.appendEvent(agentId, timeline(event)));
  fire({ channel: 'monitor', type: 'state_changed', state: 'WORKING' });
  fire({ channel: 'progress', type: 'text_chunk_start', step });
  let reply = '';
  for (let i = 0; i < CHUNKS_PER_REPLY; i++) {
    const delta = `chunk ${i} of step ${step}. `;
    reply += delta;
    fire({ channel: 'progress', type: 'text_chunk', step, delta });
  }
  fire({ channel: 'progress', type: 'text_chunk_end', step, text: reply });

  let call = toolCall(step, 'PENDING');
  calls.push(call);
  await store.saveToolCallRecords(agentId, calls);
  for (const state of ['EXECUTING', 'COMPLETED'] as const) {
    call = toolCall(step, state, call);
    calls[calls.length - 1] = call;
    await store.saveToolCallRecords(agentId, calls);
  }
  fire({ channel: 'progress', type: 'tool:end', call: { ...call } });
  messages.push({
    role: 'assistant',
    content: [
      { type: 'text', text: reply },
      { type: 'tool_use', id: call.id, name: call.name, input: call.input },
    ],
  });
  messages.push({
    role: 'user',
    content: [{ type: 'tool_result', tool_use_id: call.id, content: JSON.stringify(call.result) }],
  });
  await store.saveMessages(agentId, messages);
  await store.saveInfo(agentId, info(messages.length));
  fire({
    channel: 'monitor',
    type: 'step_complete',
    step,
    durationMs: 1,
    bookmark: { seq, timestamp: Date.now() },
  });
  fire({ channel: 'progress', type: 'done', step, reason: 'completed' });
  return pending;
}

function check(condition: boolean, what: string, failures: string[]) {
  if (!condition) failures.push(what);
}

async function main() {
  const store = await createExtendedStore();
  const messages: Message[] = [];
  const calls: ToolCallRecord[] = [];
  const stepTimes: number[] = [];
  const inFlight: Promise<void>[] = [];

  // The SDK saves messages before it ever saves the agent info.
  for (let step = 1; step <= STEPS; step++) {
    const t0 = performance.now();
    inFlight.push(...(await runStep(store, step, messages, calls)));
    stepTimes.push(performance.now() - t0);
    if (step === Math.ceil(STEPS / 2)) {
      await store.saveSnapshot(agentId, {
        id: `sfp-${messages.length - 1}`,
        messages: [...messages],
        lastSfpIndex: messages.length - 1,
        lastBookmark: { seq, timestamp: Date.now() },
        createdAt: new Date().toISOString(),
        metadata: { reason: 'halfway' },
      });
    }
  }
  await Promise.all(inFlight);

  const todos: TodoSnapshot = {
    todos: [
      {
        id: 't1',
        title: 'Write the notes',
        status: 'completed',
        createdAt: Date.now(),
        updatedAt: Date.now(),
      },
      {
        id: 't2',
        title: 'Review — 审查',
        status: 'in_progress',
        createdAt: Date.now(),
        updatedAt: Date.now(),
      },
    ],
    version: 2,
    updatedAt: Date.now(),
  };
  await store.saveTodos(agentId, todos);

  const release = await store.acquireAgentLock(agentId, 5_000);
  const [forkId] = await store.batchFork(agentId, 1);
  await release();
  await store.close();

  // Resume: a new store object reads everything back, as the SDK does after a restart.
  const resumed = await createExtendedStore();
  const failures: string[] = [];
  const loaded = await resumed.loadMessages(agentId);
  check(JSON.stringify(loaded) === JSON.stringify(messages), 'messages read back exactly', failures);
  const loadedCalls = await resumed.loadToolCallRecords(agentId);
  check(JSON.stringify(loadedCalls) === JSON.stringify(calls), 'tool calls read back exactly', failures);
  check(
    JSON.stringify(await resumed.loadTodos(agentId)) === JSON.stringify(todos),
    'todos read back',
    failures,
  );
  const loadedInfo = await resumed.loadInfo(agentId);
  check(loadedInfo?.messageCount === messages.length, 'info.messageCount matches', failures);
  let events = 0;
  let lastSeq = 0;
  let ordered = true;
  for await (const entry of resumed.readEvents(agentId)) {
    events++;
    if (entry.bookmark.seq <= lastSeq) ordered = false;
    lastSeq = entry.bookmark.seq;
  }
  check(events === seq, `all ${seq} events read back (got ${events})`, failures);
  check(ordered, 'events in append order', failures);
  const forkInfo = forkId ? await resumed.loadInfo(forkId) : undefined;
  check(forkInfo?.lineage.at(-1) === agentId, 'fork lineage names its source', failures);
  check(
    (await resumed.loadMessages(forkId ?? '')).length === messages.length,
    'fork holds the conversation',
    failures,
  );

  const sessions = await resumed.querySessions({ templateId: 'demo-assistant', limit: 3 });
  const stats = await resumed.aggregateStats(agentId);
  const metrics = await resumed.getMetrics();
  const health = await resumed.healthCheck();
  const consistency = await resumed.checkConsistency(agentId);
  check(consistency.consistent, `consistent (${consistency.issues.join('; ')})`, failures);
  await resumed.close();

  const sorted = [...stepTimes].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const firstTen = stepTimes.slice(0, 10).reduce((a, b) => a + b, 0) / Math.min(10, stepTimes.length);
  const lastTen = stepTimes.slice(-10).reduce((a, b) => a + b, 0) / Math.min(10, stepTimes.length);
  const ms = (n: number | undefined) => `${(n ?? 0).toFixed(2)} ms`;

  console.log(
    `kode-store demo — backend: ${process.env.KODE_STORE_TYPE || 'sqlite'} (createExtendedStore())`,
  );
  console.log(`agent ${agentId}: ${STEPS} steps`);
  console.log(
    `  stored: ${loaded.length} messages, ${loadedCalls.length} tool calls, ${events} events, 1 snapshot, todos, fork ${forkId}`,
  );
  console.log(
    `  time per step: median ${ms(median)}, first 10 avg ${ms(firstTen)}, last 10 avg ${ms(lastTen)}`,
  );
  console.log(
    `  querySessions(templateId): ${sessions.map((s) => `${s.agentId} (${s.messageCount} msgs)`).join(', ')}`,
  );
  console.log(
    `  aggregateStats: ${stats.totalMessages} messages, ${stats.totalToolCalls} tool calls, ${stats.totalSnapshots} snapshots, by state ${JSON.stringify(stats.toolCallsByState)}`,
  );
  console.log(
    `  getMetrics (resumed store): ${JSON.stringify(metrics.operations)}; p50 ${ms(metrics.performance.p50LatencyMs)}, p99 ${ms(metrics.performance.p99LatencyMs)}; storage ${metrics.storage.totalAgents} agents, ${metrics.storage.totalMessages} messages`,
  );
  console.log(
    `  healthCheck: ${health.healthy ? 'healthy' : 'UNHEALTHY'}, database latency ${ms(health.database.latencyMs)}`,
  );
  if (failures.length > 0) {
    console.error(`FAILED checks:\n  - ${failures.join('\n  - ')}`);
    process.exitCode = 1;
  } else {
    console.log('resume check: everything read back exactly ✔');
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
