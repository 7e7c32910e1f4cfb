/**
 * Runs the writes of one agent one after another, in call order, while
 * writes of different agents run side by side.
 *
 * The driver spreads concurrent commands over a connection pool, so two
 * un-awaited writes of one agent could reach the server in either order:
 * an older `saveInfo` could overwrite a newer one, and two un-awaited history
 * windows could take their positions in the wrong order. Queueing them per
 * agent makes "last call wins" and "saved order" hold within a store object.
 */
export class AgentWriteQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `task` after every task queued before it for `agentId`, whether those succeeded or not. */
  run<T>(agentId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(agentId) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(agentId, tail);
    void tail.then(() => {
      // Forget finished agents so the map does not grow with every agent ever written.
      if (this.tails.get(agentId) === tail) this.tails.delete(agentId);
    });
    return result;
  }

  /** Agents with queued or running writes. */
  get pendingAgents(): number {
    return this.tails.size;
  }

  /** Resolves when every task queued so far has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
