/**
 * Per-agent ordering of one store object's writes, for backends whose driver
 * spreads commands over a pool (PostgreSQL, MongoDB). Separate pool
 * connections run statements in whatever order they reach the server, so two writes of
 * one agent fired without awaiting (the SDK does this) could land out of
 * call order: history windows listed out of order, an older `saveInfo`
 * overwriting a newer one. Writes of one agent therefore run one after
 * another in call order; writes of different agents still run in parallel,
 * and reads only wait for the writes queued before them.
 *
 * Callers must enqueue synchronously (before their first `await`), so that
 * the queue order is the call order.
 */
export class AgentWriteQueue {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `task` after every write of `agentId` queued before it. */
  write<T>(agentId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(agentId);
    const result = previous ? previous.then(task) : task();
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(agentId, tail);
    void tail.then(() => {
      if (this.tails.get(agentId) === tail) this.tails.delete(agentId);
    });
    return result;
  }

  /** Resolves when the writes of `agentId` queued so far have settled (read-your-writes). */
  settled(agentId: string): Promise<void> {
    return this.tails.get(agentId) ?? Promise.resolve();
  }

  /** Agents with queued or running writes. */
  get pendingAgents(): number {
    return this.tails.size;
  }

  /** Resolves when every write queued so far, of any agent, has settled (close). */
  async settledAll(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
