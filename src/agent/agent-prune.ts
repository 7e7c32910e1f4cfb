import { KodeStoreError, ValidationError } from '../errors.js';
import type { AgentBackend, EventPruneRule, RetentionBackend } from './agent-backend.js';
import {
  type NormalizedPrunePolicy,
  noPruneCounts,
  type PruneCounts,
  type PruneOptions,
  type PruneResult,
} from './retention.js';

const DEFAULT_BATCH = 500;
/**
 * Agents of a page judged and pruned at once. Each is still its own short
 * transaction, but transactions in flight together share their durable
 * commit (SQLite's group commit, PostgreSQL's concurrent commits), which is
 * what one-at-a-time paid per agent. Eight stays below a default pool of ten
 * connections (pg), so the application keeps connections of its own.
 */
const DEFAULT_CONCURRENCY = 8;
const MAX_CONCURRENCY = 64;

/**
 * Applies a retention policy through the backend's retention methods, the
 * same way for every backend.
 *
 * Bounded work: agents are scanned a page at a time in id order (a keyset,
 * so a re-run after an interruption simply starts again and finds less),
 * and every removal is its own short transaction: one agent's delete, one
 * batch of one agent's events, one agent's snapshots. Nothing holds a lock
 * on more than one agent. Up to `concurrency` agents of a page are pruned
 * at once; a page is finished before the next is scanned.
 *
 * Nothing written after the prune decided is removed: the times of the
 * policy are capped at the moment the prune started, so a later write is
 * never "older"; an inactive agent's delete re-checks its last write inside
 * its transaction; and an event batch only removes events older than a time
 * or beyond the newest N, which a later append never is.
 */
export async function pruneAgents(
  backend: AgentBackend & RetentionBackend,
  policy: NormalizedPrunePolicy,
  options: PruneOptions,
): Promise<PruneResult> {
  const dryRun = options.dryRun === true;
  const batch = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(batch) || batch < 1) {
    throw new ValidationError('batchSize must be a positive integer', {
      backend: backend.name,
      operation: 'prune',
    });
  }
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new ValidationError(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`, {
      backend: backend.name,
      operation: 'prune',
    });
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new ValidationError('onProgress must be a function', { backend: backend.name, operation: 'prune' });
  }
  const signal = options.signal;
  // Typed like every error of the store; the signal's reason is the cause.
  const stopIfAborted = () => {
    if (signal?.aborted) {
      throw new KodeStoreError('prune was stopped by its signal; run it again to finish', {
        backend: backend.name,
        operation: 'prune',
        cause: signal.reason,
      });
    }
  };
  stopIfAborted();
  const decidedAt = Date.now();
  const capped = (time: number | undefined) => (time === undefined ? undefined : Math.min(time, decidedAt));
  const inactiveBefore = capped(policy.inactiveBefore);
  const eventRule: EventPruneRule | undefined = policy.events && {
    ...policy.events,
    ...(policy.events.olderThan === undefined ? {} : { olderThan: capped(policy.events.olderThan) }),
    limit: batch,
  };
  const keepSnapshots = policy.snapshots?.keepNewest;

  const removed: PruneCounts = noPruneCounts();
  let scannedAgents = 0;
  let keptActive = 0;
  let after: string | undefined;
  for (;;) {
    stopIfAborted();
    const page = await backend.scanAgents({
      ...(policy.prefix === undefined ? {} : { prefix: policy.prefix }),
      ...(policy.templateId === undefined ? {} : { templateId: policy.templateId }),
      ...(after === undefined ? {} : { after }),
      limit: batch,
    });
    if (page.length === 0) break;
    await options.onProgress?.({ phase: 'scanned', scannedAgents, removed: { ...removed } });
    const pruneOne = async ({ agentId, lastWriteMs }: (typeof page)[number]) => {
      scannedAgents++;
      if (inactiveBefore !== undefined && lastWriteMs !== null && lastWriteMs < inactiveBefore) {
        const gone = await backend.deleteIfInactive(agentId, inactiveBefore, dryRun);
        if (gone) {
          removed.agents++;
          removed.messages += gone.messages;
          removed.toolCalls += gone.toolCalls;
          removed.events += gone.events;
          removed.snapshots += gone.snapshots;
          removed.files += gone.files;
          removed.bytes += gone.bytes;
          return;
        }
        keptActive++;
      }
      if (eventRule) {
        for (;;) {
          const pruned = await backend.pruneEvents(agentId, eventRule, dryRun);
          removed.events += pruned.count;
          removed.bytes += pruned.bytes;
          if (dryRun || pruned.done === true || pruned.count < batch) break;
          stopIfAborted();
        }
      }
      if (keepSnapshots !== undefined) {
        const pruned = await backend.pruneSnapshots(agentId, keepSnapshots, dryRun);
        removed.snapshots += pruned.count;
        removed.bytes += pruned.bytes;
      }
    };
    await eachConcurrently(page, concurrency, async (agent) => {
      stopIfAborted();
      await pruneOne(agent);
    });
    after = page[page.length - 1]?.agentId;
    await options.onProgress?.({ phase: 'removed', scannedAgents, removed: { ...removed } });
    if (page.length < batch) break;
  }
  return { ...removed, dryRun, scannedAgents, keptActive };
}

/**
 * Runs `work` over `items` with at most `limit` in flight. After the first
 * failure no further item is started; the ones in flight are awaited (so
 * nothing runs on after the prune returned) and the first error is thrown.
 */
async function eachConcurrently<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}
