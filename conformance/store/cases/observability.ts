import type { StoreMetrics } from '../../../src/types.js';
import { check, checkEqual } from '../../runner/assertions.js';
import { agentInfo, conversation, snapshot, timeline, toolCall } from '../sample-data.js';
import { defineCases, type StoreCase } from '../store-case.js';

function checkLatencies(performance: StoreMetrics['performance']): void {
  const { minLatencyMs: min, avgLatencyMs: avg, maxLatencyMs: max } = performance;
  const { p50LatencyMs: p50, p95LatencyMs: p95, p99LatencyMs: p99 } = performance;
  for (const [name, value] of Object.entries({ min, avg, max, p50, p95, p99 })) {
    check(typeof value === 'number' && Number.isFinite(value) && value >= 0, `${name} is ${String(value)}`);
  }
  check(min <= avg && avg <= max, `min ${min} <= avg ${avg} <= max ${max}`);
  check((p50 as number) <= (p95 as number), `p50 ${p50} <= p95 ${p95}`);
  check((p95 as number) <= (p99 as number), `p95 ${p95} <= p99 ${p99}`);
  check((p99 as number) <= max, `p99 ${p99} <= max ${max}`);
  check(min <= (p50 as number), `min ${min} <= p50 ${p50}`);
}

export const observabilityCases: StoreCase[] = [
  ...defineCases('stats', [
    {
      id: 'exact-counts',
      title: 'aggregateStats counts messages, tool calls (by name and by state) and snapshots exactly',
      run: async (ctx) => {
        const agent = ctx.agentId('stats');
        await ctx.store.saveMessages(agent, conversation(7));
        await ctx.store.saveToolCallRecords(agent, [
          toolCall('t1', { name: 'fs_read' }),
          toolCall('t2', { name: 'fs_read', state: 'FAILED' }),
          toolCall('t3', { name: 'fs_write', state: 'DENIED' }),
          toolCall('t4', { name: 'fs_read' }),
        ]);
        await ctx.store.saveSnapshot(agent, snapshot('s1', '2026-11-22T15:32:11.000Z'));
        await ctx.store.saveSnapshot(agent, snapshot('s2', '2026-11-22T15:32:12.000Z'));
        await ctx.store.saveSnapshot(agent, snapshot('s1', '2026-11-22T15:32:11.000Z'));
        const other = ctx.agentId('other');
        await ctx.store.saveMessages(other, conversation(3));
        await ctx.store.saveToolCallRecords(other, [toolCall('t1', { name: 'fs_read' })]);
        const stats = await ctx.store.aggregateStats(agent);
        checkEqual(stats.totalMessages, 7, 'totalMessages');
        checkEqual(stats.totalToolCalls, 4, 'totalToolCalls');
        checkEqual(stats.totalSnapshots, 2, 'totalSnapshots');
        checkEqual(
          Object.fromEntries(Object.entries(stats.toolCallsByName ?? {}).sort()),
          { fs_read: 3, fs_write: 1 },
          'toolCallsByName',
        );
        checkEqual(
          Object.fromEntries(Object.entries(stats.toolCallsByState ?? {}).sort()),
          { COMPLETED: 2, DENIED: 1, FAILED: 1 },
          'toolCallsByState',
        );
      },
    },
    {
      id: 'after-replace',
      title: 'aggregateStats follows replaced lists (a shrunk conversation counts its new length)',
      run: async (ctx) => {
        const agent = ctx.agentId('shrink');
        await ctx.store.saveMessages(agent, conversation(9));
        await ctx.store.saveMessages(agent, conversation(4));
        await ctx.store.saveToolCallRecords(agent, [toolCall('a'), toolCall('b')]);
        await ctx.store.saveToolCallRecords(agent, [toolCall('a')]);
        const stats = await ctx.store.aggregateStats(agent);
        checkEqual([stats.totalMessages, stats.totalToolCalls], [4, 1], '[messages, tool calls]');
      },
    },
    {
      id: 'unknown-agent',
      title: 'aggregateStats of an unknown agent is all zeros',
      run: async (ctx) => {
        const stats = await ctx.store.aggregateStats(ctx.agentId('nobody'));
        checkEqual([stats.totalMessages, stats.totalToolCalls, stats.totalSnapshots], [0, 0, 0], 'totals');
      },
    },
  ]),
  ...defineCases('health', [
    {
      id: 'reports-connected',
      title: 'healthCheck reports a healthy, connected database with a measured latency',
      run: async (ctx) => {
        const before = Date.now();
        const health = await ctx.store.healthCheck();
        checkEqual(health.healthy, true, 'healthy');
        checkEqual(health.database.connected, true, 'database.connected');
        const latency = health.database.latencyMs;
        check(typeof latency === 'number' && latency >= 0, `latencyMs is ${String(latency)}`);
        check(typeof health.fileSystem.writable === 'boolean', 'fileSystem.writable is a boolean');
        check(health.checkedAt >= before, 'checkedAt is the time of the check');
      },
    },
  ]),
  ...defineCases('consistency', [
    {
      id: 'consistent-agent',
      title: 'checkConsistency finds nothing wrong with an agent saved the way the SDK saves it',
      run: async (ctx) => {
        const agent = ctx.agentId('ok');
        const events = [timeline(0, 'monitor'), timeline(1), timeline(2)];
        for (const event of events) await ctx.store.appendEvent(agent, event);
        await ctx.store.saveMessages(agent, conversation(4));
        await ctx.store.saveInfo(
          agent,
          agentInfo(agent, { messageCount: 4, lastBookmark: events[2]?.bookmark }),
        );
        const result = await ctx.store.checkConsistency(agent);
        checkEqual(result.issues, [], 'issues');
        checkEqual(result.consistent, true, 'consistent');
      },
    },
    {
      id: 'message-count-mismatch',
      title: 'checkConsistency detects messageCount differing from the stored messages and says so',
      run: async (ctx) => {
        const agent = ctx.agentId('bad');
        await ctx.store.saveMessages(agent, conversation(3));
        await ctx.store.saveInfo(agent, agentInfo(agent, { messageCount: 5 }));
        const result = await ctx.store.checkConsistency(agent);
        checkEqual(result.consistent, false, 'consistent');
        const text = result.issues.join('\n');
        check(
          /message/i.test(text) && text.includes('5') && text.includes('3'),
          `issues do not say what differs: ${text}`,
        );
      },
    },
    {
      id: 'unknown-agent',
      title: 'checkConsistency of an unknown agent reports that it does not exist',
      run: async (ctx) => {
        const result = await ctx.store.checkConsistency(ctx.agentId('nobody'));
        checkEqual(result.consistent, false, 'consistent');
        check(result.issues.length > 0, 'no issue reported');
      },
    },
  ]),
  ...defineCases('metrics', [
    {
      id: 'counts-operations',
      title: 'getMetrics counts each save, load, query and delete exactly once',
      run: async (ctx) => {
        const agent = ctx.agentId('metrics');
        const before = await ctx.store.getMetrics();
        await ctx.store.saveMessages(agent, conversation(2));
        await ctx.store.saveInfo(agent, agentInfo(agent));
        await ctx.store.saveToolCallRecords(agent, [toolCall('t1')]);
        await ctx.store.loadMessages(agent);
        await ctx.store.loadInfo(agent);
        await ctx.store.queryMessages({ agentId: agent });
        await ctx.store.delete(agent);
        const after = await ctx.store.getMetrics();
        const delta = {
          saves: after.operations.saves - before.operations.saves,
          loads: after.operations.loads - before.operations.loads,
          queries: after.operations.queries - before.operations.queries,
          deletes: after.operations.deletes - before.operations.deletes,
        };
        checkEqual(delta, { saves: 3, loads: 2, queries: 1, deletes: 1 }, 'operation counts');
      },
    },
    {
      id: 'latency-percentiles',
      title: 'getMetrics reports latencies with min <= p50 <= p95 <= p99 <= max',
      run: async (ctx) => {
        const agent = ctx.agentId('lat');
        for (let i = 1; i <= 30; i++) await ctx.store.saveMessages(agent, conversation(i));
        const metrics = await ctx.store.getMetrics();
        checkLatencies(metrics.performance);
        check(metrics.collectedAt > 0, 'collectedAt');
      },
    },
    {
      id: 'storage-totals',
      title: 'getMetrics storage totals grow by exactly what was saved',
      run: async (ctx) => {
        const before = (await ctx.store.getMetrics()).storage;
        const [a, b] = [ctx.agentId('a'), ctx.agentId('b')];
        await ctx.store.saveInfo(a, agentInfo(a));
        await ctx.store.saveMessages(a, conversation(5));
        await ctx.store.saveInfo(b, agentInfo(b));
        await ctx.store.saveMessages(b, conversation(2));
        await ctx.store.saveToolCallRecords(b, [toolCall('t1'), toolCall('t2'), toolCall('t3')]);
        const after = (await ctx.store.getMetrics()).storage;
        checkEqual(
          {
            agents: after.totalAgents - before.totalAgents,
            messages: after.totalMessages - before.totalMessages,
            toolCalls: after.totalToolCalls - before.totalToolCalls,
          },
          { agents: 2, messages: 7, toolCalls: 3 },
          'storage growth',
        );
      },
    },
  ]),
];
