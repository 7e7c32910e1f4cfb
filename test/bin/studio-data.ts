import type { KvStore } from '../../src/kv/kv-types.js';
import type { ExtendedStore, Message, Timeline, ToolCallRecord, ToolCallState } from '../../src/types.js';
import { FIXTURE_LOCATION, runInProcess } from './cli-support.js';

/**
 * The data the studio tests and its benchmark look at: the SDK fixture
 * migrated into a store, hostile agent data, KV records, and a generated
 * 100,000-event agent. No test framework here, so the benchmark can use it.
 */

/** Stored text that would run if a page parsed it as HTML. */
export const HOSTILE = {
  agentId: 'agt-<script>window.__studioPwned=1</script>',
  templateId: 'tpl-<img src=x onerror="window.__studioPwned=2">',
  text: 'Hello <b>not bold</b> <img src=x onerror="window.__studioPwned=3">',
  toolName: 'run<svg onload="window.__studioPwned=4">',
  input: { command: '"><script>window.__studioPwned=5</script>' },
  result: '<iframe src="javascript:window.__studioPwned=6"></iframe>',
  kvKey: 'key-<img src=x onerror="window.__studioPwned=7">',
  kvValue: { html: '<script>window.__studioPwned=8</script>' },
} as const;

/** Copies the SDK fixture into `location` (or the store `env` names) with the real `migrate` command. */
export async function migrateFixture(
  location: string | undefined,
  env: Record<string, string> = {},
): Promise<void> {
  const to = location === undefined ? [] : ['--to', location];
  const run = await runInProcess(['migrate', '--from', FIXTURE_LOCATION, ...to], { env });
  if (run.code !== 0) throw new Error(`migrate failed (${run.code}): ${run.stderr}`);
}

function record(
  id: string,
  name: string,
  state: ToolCallState,
  at: number,
  extra: Partial<ToolCallRecord> = {},
) {
  return {
    id,
    name,
    input: { n: at },
    state,
    approval: { required: false },
    createdAt: at,
    updatedAt: at + 5,
    startedAt: at + 1,
    completedAt: at + 5,
    durationMs: 4,
    auditTrail: [{ state, timestamp: at + 5 }],
    ...extra,
  } satisfies ToolCallRecord;
}

/** An agent whose id, template, text, tool name and input are all HTML, with a fork. */
export async function writeHostileAgent(store: ExtendedStore): Promise<string> {
  const id = HOSTILE.agentId;
  const at = Date.parse('2026-03-01T10:00:00Z');
  await store.saveInfo(id, {
    agentId: id,
    templateId: HOSTILE.templateId,
    createdAt: new Date(at).toISOString(),
    lineage: [],
    configVersion: 'v1',
    messageCount: 3,
    lastSfpIndex: 2,
  });
  await store.saveMessages(id, [
    { role: 'user', content: [{ type: 'text', text: HOSTILE.text }] },
    {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'call-x', name: HOSTILE.toolName, input: HOSTILE.input }],
    },
    {
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: 'call-x', content: HOSTILE.result, is_error: true }],
    },
  ]);
  await store.saveToolCallRecords(id, [
    record('call-x', HOSTILE.toolName, 'FAILED', at, {
      error: HOSTILE.result,
      isError: true,
      input: HOSTILE.input,
    }),
  ]);
  await store.appendEvent(id, {
    cursor: 0,
    bookmark: { seq: 0, timestamp: at },
    event: { channel: 'monitor', type: 'error', severity: 'error', phase: 'tool', message: HOSTILE.text },
  } as Timeline);
  const [fork] = await store.batchFork(id, 1);
  return fork!;
}

/** KV records with hostile keys and values in two namespaces. */
export async function writeKvData(kv: KvStore): Promise<void> {
  await kv.createInstance({ id: 'app-data', name: 'App data', description: 'what the agents remember' });
  await kv.setMany('app-data', [
    {
      namespace: 'users',
      key: 'alice',
      value: { name: 'Alice', score: 120 },
      metadata: { source: 'signup' },
    },
    { namespace: 'users', key: 'bob', value: { name: 'Bob', score: 80 } },
    { namespace: 'users', key: 'carol', value: { name: 'Carol', score: 300 } },
    { namespace: 'notes', key: HOSTILE.kvKey, value: HOSTILE.kvValue },
  ]);
  await kv.set('app-data', 'users', 'alice', { name: 'Alice', score: 150 }, { actor: 'agent-7' });
}

/** The generated large agent: how big, and its id. */
export const LARGE = { agentId: 'agt-large', events: 100_000, messages: 2_000, toolCalls: 500 } as const;

const EVENT_KINDS = [
  { channel: 'progress', type: 'text_chunk' },
  { channel: 'progress', type: 'text_chunk' },
  { channel: 'monitor', type: 'token_usage' },
  { channel: 'progress', type: 'tool:start' },
  { channel: 'control', type: 'permission_decided' },
] as const;

/** The `i`-th event of the large agent: every fifth on `control`, seq = i. */
export function largeEvent(i: number, start: number): Timeline {
  const kind = EVENT_KINDS[i % EVENT_KINDS.length]!;
  const base = { channel: kind.channel, type: kind.type };
  const event =
    kind.type === 'text_chunk'
      ? { ...base, step: Math.floor(i / 100), delta: `chunk ${i}` }
      : kind.type === 'token_usage'
        ? { ...base, inputTokens: i, outputTokens: 1, totalTokens: i + 1 }
        : kind.type === 'tool:start'
          ? {
              ...base,
              call: { id: `call-${i % LARGE.toolCalls}`, name: `tool-${i % 5}`, state: 'EXECUTING' },
            }
          : { ...base, callId: `call-${i % LARGE.toolCalls}`, decision: 'allow', decidedBy: 'policy' };
  return { cursor: i, bookmark: { seq: i, timestamp: start + i }, event } as Timeline;
}

/** 100,000 events, 2,000 messages (500 tool rounds) and 500 tool-call records for one agent. */
export async function writeLargeAgent(store: ExtendedStore): Promise<void> {
  const id = LARGE.agentId;
  const start = Date.parse('2026-02-01T00:00:00Z');
  await store.saveInfo(id, {
    agentId: id,
    templateId: 'tpl-large',
    createdAt: new Date(start).toISOString(),
    lineage: [],
    configVersion: 'v1',
    messageCount: LARGE.messages,
    lastSfpIndex: LARGE.messages - 1,
  });
  const messages: Message[] = [];
  const records: ToolCallRecord[] = [];
  const states: ToolCallState[] = ['COMPLETED', 'COMPLETED', 'COMPLETED', 'FAILED', 'DENIED'];
  for (let round = 0; round < LARGE.messages / 4; round++) {
    const call = `call-${round}`;
    const name = `tool-${round % 5}`;
    messages.push(
      { role: 'user', content: [{ type: 'text', text: `Question number ${round}` }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: call, name, input: { round } }] },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: call, content: `result of round ${round}` }],
      },
      { role: 'assistant', content: [{ type: 'text', text: `Answer number ${round}` }] },
    );
    records.push(record(call, name, states[round % states.length]!, start + round));
  }
  await store.saveMessages(id, messages);
  await store.saveToolCallRecords(id, records);
  // Appends are batched by the store when they are not awaited one by one.
  const batch = 5_000;
  for (let from = 0; from < LARGE.events; from += batch) {
    const appends: Promise<void>[] = [];
    for (let i = from; i < from + batch; i++) appends.push(store.appendEvent(id, largeEvent(i, start)));
    await Promise.all(appends);
  }
}
