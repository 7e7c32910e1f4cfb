import { redactSecrets } from '../errors.js';
import type {
  AgentInfo,
  AgentStats,
  ConsistencyCheckResult,
  StoreHealthStatus,
  StoreMetrics,
} from '../types.js';
import type { AgentBackend } from './agent-backend.js';
import type { OperationMetrics } from './operation-metrics.js';

/**
 * The reports AgentStore (agent-store.ts) assembles from its backend's
 * answers: health, one agent's consistency, metrics and statistics. The
 * operation frame around each stays in AgentStore.
 */

/** `healthCheck()`: the database's ping and the file system's state. */
export async function checkHealth(backend: AgentBackend): Promise<StoreHealthStatus> {
  const started = performance.now();
  let database: StoreHealthStatus['database'];
  try {
    const problem = await backend.ping();
    database = { connected: true, latencyMs: performance.now() - started };
    if (problem !== undefined) database.error = problem;
  } catch (error) {
    database = {
      connected: false,
      error: redactSecrets(error instanceof Error ? error.message : String(error)),
    };
  }
  const fileSystem = await backend.fileSystem();
  return {
    healthy: database.connected && database.error === undefined && fileSystem.writable,
    database,
    fileSystem,
    checkedAt: Date.now(),
  };
}

/** `checkConsistency()`: what the backend found wrong with one agent, and its info's message count. */
export async function checkAgentConsistency(
  backend: AgentBackend,
  agentId: string,
): Promise<ConsistencyCheckResult> {
  const found = await backend.inspect(agentId);
  if (!found.exists) {
    return {
      consistent: false,
      issues: [`agent ${JSON.stringify(agentId)} does not exist`],
      checkedAt: Date.now(),
    };
  }
  const issues = [...found.issues];
  if (found.infoJson !== undefined) {
    // Reported, not thrown: finding what is wrong is this call's job.
    let info: Partial<AgentInfo> | undefined;
    try {
      info = JSON.parse(found.infoJson) as Partial<AgentInfo>;
    } catch (error) {
      issues.push(`stored info is not valid JSON (${(error as Error).message})`);
    }
    const messageCount = info?.messageCount;
    if (typeof messageCount === 'number' && messageCount !== found.messages) {
      issues.push(`info.messageCount is ${messageCount} but ${found.messages} messages are stored`);
    }
  }
  return { consistent: issues.length === 0, issues, checkedAt: Date.now() };
}

/** `getMetrics()`: the store's operation metrics and the backend's storage. */
export async function collectMetrics(
  backend: AgentBackend,
  metrics: OperationMetrics,
): Promise<StoreMetrics> {
  const storage = await backend.storage();
  return {
    operations: metrics.operations(),
    performance: metrics.performance(),
    storage,
    collectedAt: Date.now(),
  };
}

/** `aggregateStats()`: the backend's counts as the SDK's `AgentStats`. */
export function statsOf(counts: Omit<AgentStats, 'avgMessagesPerSession'>): AgentStats {
  // Built key by key on fresh objects: a tool named `__proto__` is a count like any other.
  const byName: Record<string, number> = Object.fromEntries(Object.entries(counts.toolCallsByName ?? {}));
  const byState: Record<string, number> = Object.fromEntries(Object.entries(counts.toolCallsByState ?? {}));
  return {
    totalMessages: counts.totalMessages,
    totalToolCalls: counts.totalToolCalls,
    totalSnapshots: counts.totalSnapshots,
    // One agent is one session, as in the SDK's own stores.
    avgMessagesPerSession: counts.totalMessages,
    toolCallsByName: byName,
    toolCallsByState: byState,
  };
}
