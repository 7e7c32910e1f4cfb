import {
  type AnyKodeStoreError,
  type ErrorContext,
  isKodeStoreError,
  StoreClosedError,
  wrapDriverError,
} from '../errors.js';
import { assertAgentId } from './agent-id.js';
import { type OperationKind, OperationMetrics } from './operation-metrics.js';
import { readOnlyWriteError } from './read-only-errors.js';

/** Options of `StoreOperations`. */
export interface StoreOperationsOptions {
  /** Refuse every write (`save` and `delete` operations, appends, locks) with an `UnsupportedError`. */
  readOnly?: boolean;
  /**
   * The backend's own reading of its driver's errors (e.g. which are a
   * timeout), tried before the generic `wrapDriverError`; `undefined` leaves
   * an error to it.
   */
  classifyError?: (error: unknown, ctx: Omit<ErrorContext, 'cause'>) => AnyKodeStoreError | undefined;
}

/**
 * The frame every public store method runs in, shared by all backends:
 * refuse calls after `close()`, validate the agent id, refuse writes on a
 * read-only store, time the operation for `getMetrics()`, and turn driver
 * errors into typed errors that name the backend, the operation and the agent.
 */
export class StoreOperations {
  readonly metrics = new OperationMetrics();
  readonly readOnly: boolean;
  private readonly classifyError: StoreOperationsOptions['classifyError'];
  private closedAt: number | undefined;
  /** Set while one append's latency is being measured. */
  private timingAppend = false;

  constructor(
    readonly backend: string,
    options: StoreOperationsOptions = {},
  ) {
    this.readOnly = options.readOnly ?? false;
    this.classifyError = options.classifyError;
  }

  /** A typed error for anything thrown inside the frame: ours as it is, a driver's by the backend, then generically. */
  wrap(error: unknown, ctx: Omit<ErrorContext, 'cause' | 'backend'>): AnyKodeStoreError {
    const where = { ...ctx, backend: this.backend };
    if (!isKodeStoreError(error)) {
      const classified = this.classifyError?.(error, where);
      if (classified) return classified;
    }
    return wrapDriverError(error, where);
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  /** Marks the store closed; returns false if it already was (close is idempotent). */
  markClosed(): boolean {
    if (this.closedAt !== undefined) return false;
    this.closedAt = Date.now();
    return true;
  }

  assertOpen(operation: string): void {
    if (this.closedAt !== undefined) {
      throw new StoreClosedError('the store is closed', { backend: this.backend, operation });
    }
  }

  /**
   * Refuses a write on a read-only store. The frame checks `save` and
   * `delete` operations itself; writes measured under another kind (a lock
   * taken) call this.
   */
  assertWritable(operation: string, agentId?: string): void {
    if (this.readOnly) throw readOnlyWriteError({ backend: this.backend, operation, agentId });
  }

  /** Checks that the store is open and the agent id valid; throws synchronously. */
  check(operation: string, agentId?: unknown): void {
    this.assertOpen(operation);
    if (agentId !== undefined) assertAgentId(agentId, operation, this.backend);
  }

  /**
   * Runs one operation that concerns no particular agent (list, queries,
   * health, metrics). Errors are always delivered as a rejected promise,
   * never thrown synchronously.
   */
  run<T>(operation: string, kind: OperationKind | null, body: () => Promise<T> | T): Promise<T> {
    return this.execute(operation, kind, null, body);
  }

  /**
   * Runs one operation on one agent. The id is always validated, so a missing
   * one (`undefined` from untyped callers) is a `ValidationError` rather than
   * a query for "no agent".
   */
  runForAgent<T>(
    operation: string,
    kind: OperationKind | null,
    agentId: string,
    body: () => Promise<T> | T,
  ): Promise<T> {
    return this.execute(operation, kind, { agentId }, body);
  }

  /**
   * The frame of `appendEvent`, the SDK's hottest call (fired without
   * awaiting, hundreds per step). `body` runs synchronously, so un-awaited
   * appends reach the storage in call order, and the frame adds no promise of
   * its own: the promise `body` returns must already reject with typed
   * errors. Every append is counted; the latency of one append in flight at a
   * time is measured (appends in flight together share one write, so they
   * would all report about the same wait; awaited one by one, each is).
   */
  append(operation: string, agentId: string, body: () => Promise<void>): Promise<void> {
    const started = performance.now();
    let written: Promise<void>;
    try {
      this.check(operation, agentId);
      this.assertWritable(operation, agentId);
      written = body();
    } catch (error) {
      this.metrics.record('save', performance.now() - started);
      return Promise.reject(this.wrap(error, { operation, agentId }));
    }
    if (this.timingAppend) {
      this.metrics.count('save');
    } else {
      this.timingAppend = true;
      const timed = () => {
        this.timingAppend = false;
        this.metrics.record('save', performance.now() - started);
      };
      written.then(timed, timed);
    }
    return written;
  }

  private async execute<T>(
    operation: string,
    kind: OperationKind | null,
    agent: { agentId: string } | null,
    body: () => Promise<T> | T,
  ): Promise<T> {
    const agentId = agent?.agentId;
    const started = performance.now();
    try {
      this.assertOpen(operation);
      if (agent) assertAgentId(agentId, operation, this.backend);
      if (kind === 'save' || kind === 'delete') this.assertWritable(operation, agentId);
      return await body();
    } catch (error) {
      throw this.wrap(error, { operation, agentId });
    } finally {
      if (kind) this.metrics.record(kind, performance.now() - started);
    }
  }
}
