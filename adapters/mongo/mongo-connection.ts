import { ConfigError, StoreClosedError, UnsupportedError } from '../../src/errors.js';
import type {
  MongoClientLike,
  MongoDatabase,
  MongoDocument,
  MongoOptions,
  MongoSession,
  ResolvedMongoStoreOptions,
} from './mongo-config.js';
import { hasServerCode, isDuplicateKey, MONGO_SERVER_CODES } from './mongo-errors.js';
import {
  AGENT_COLLECTIONS,
  type AgentCollectionRole,
  type AgentCollections,
  agentCollectionNames,
  prepareComponent,
} from './mongo-schema.js';

const BACKEND = 'mongo';

/** What kind of deployment the store talks to, and whether it runs multi-document transactions. */
export interface MongoDeployment {
  topology: 'standalone' | 'replicaSet' | 'sharded';
  transactions: boolean;
  /** Why there are no transactions, when there are none. */
  reason?: string;
}

/**
 * Reads the deployment from a `hello` (or legacy `isMaster`) reply: a `mongos`
 * answers `msg: "isdbgrid"`, a replica set member names its `setName`, a
 * standalone server neither. Transactions need a replica set or a sharded
 * cluster, and logical sessions (`logicalSessionTimeoutMinutes` is present
 * exactly when the server supports them).
 */
export function deploymentFromHello(hello: MongoDocument): MongoDeployment {
  const sessions =
    hello.logicalSessionTimeoutMinutes !== undefined && hello.logicalSessionTimeoutMinutes !== null;
  const topology =
    hello.msg === 'isdbgrid' ? 'sharded' : typeof hello.setName === 'string' ? 'replicaSet' : 'standalone';
  if (topology === 'standalone') {
    return {
      topology,
      transactions: false,
      reason:
        'the server is a standalone mongod; MongoDB runs multi-document transactions only on a replica set ' +
        'or a sharded cluster (a single-node replica set is enough)',
    };
  }
  if (!sessions) {
    return { topology, transactions: false, reason: 'the server does not support logical sessions' };
  }
  return { topology, transactions: true };
}

/** The driver module as far as the store needs it. */
export interface MongoDriverModule {
  MongoClient: new (uri: string, options?: MongoOptions) => MongoClientLike;
}

/**
 * The error to report when loading the driver failed: a `ConfigError` telling
 * how to install it when it is missing, the original error otherwise (a
 * broken installation should not be disguised as a missing one).
 */
export function driverLoadError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    return new ConfigError(
      'the MongoDB driver is not installed; run `npm install mongodb` (version 6 or later) in your application',
      { backend: BACKEND, operation: 'connect', variable: 'mongodb', cause: error },
    );
  }
  return error;
}

/** Loads the optional `mongodb` peer dependency on first use. */
export async function loadMongoDriver(moduleName = 'mongodb'): Promise<MongoDriverModule> {
  try {
    const driver = (await import(moduleName)) as Partial<MongoDriverModule> & { default?: MongoDriverModule };
    const MongoClient = driver.MongoClient ?? driver.default?.MongoClient;
    if (typeof MongoClient !== 'function') {
      throw new ConfigError(`the module ${JSON.stringify(moduleName)} does not export MongoClient`, {
        backend: BACKEND,
        operation: 'connect',
        variable: 'mongodb',
      });
    }
    return { MongoClient };
  } catch (error) {
    throw driverLoadError(error);
  }
}

/** An open connection: the client, the database, the store's collections and the deployment. */
export interface OpenMongo {
  client: MongoClientLike;
  db: MongoDatabase;
  collections: AgentCollections;
  deployment: MongoDeployment;
}

async function helloReply(db: MongoDatabase): Promise<MongoDocument> {
  try {
    return await db.command({ hello: 1 });
  } catch (error) {
    // A server older than `hello` (before 4.4.2 / 5.0) does not know it.
    if (!hasServerCode(error, MONGO_SERVER_CODES.commandNotFound)) throw error;
    return db.command({ isMaster: 1 });
  }
}

/**
 * The one connection layer of the adapter, shared by the agent backend and
 * the KV backend (`MongoStore.kvBackend()` hands the KV backend this
 * connection): the client (made or injected), the deployment and whether it
 * runs transactions, atomic runs (`runAtomically`), the retries after a lost
 * race, and each component's schema (`prepareComponent`, mongo-schema.ts).
 *
 * Opens the connection on first use and keeps it. A failed attempt is not
 * remembered: the next operation tries again, so a store created while the
 * server is down starts working when it comes back. Once connected, the driver
 * reconnects by itself after network failures.
 */
export class MongoConnection {
  private opening: Promise<OpenMongo> | undefined;
  private opened: OpenMongo | undefined;
  private ownedClient: MongoClientLike | undefined;
  private closed = false;

  constructor(
    private readonly options: ResolvedMongoStoreOptions,
    private readonly loadDriver: () => Promise<MongoDriverModule> = () => loadMongoDriver(),
  ) {}

  /** The open connection, if the store has connected. */
  get current(): OpenMongo | undefined {
    return this.opened;
  }

  /** Connects (once), runs the schema migrations (read-only: checks the schema) and detects the deployment. */
  open(): Promise<OpenMongo> {
    if (this.closed) {
      return Promise.reject(
        new StoreClosedError('the store is closed', { backend: BACKEND, operation: 'connect' }),
      );
    }
    if (this.opened) return Promise.resolve(this.opened);
    if (!this.opening) {
      this.opening = this.connect().then(
        (opened) => {
          this.opened = opened;
          return opened;
        },
        (error: unknown) => {
          this.opening = undefined;
          throw error;
        },
      );
    }
    return this.opening;
  }

  private async connect(): Promise<OpenMongo> {
    let client = this.options.client;
    if (!client) {
      const { MongoClient } = await this.loadDriver();
      client = new MongoClient(this.options.uri as string, this.options.clientOptions);
      this.ownedClient = client;
    }
    try {
      await client.connect();
      const db = client.db(this.options.dbName);
      const deployment = deploymentFromHello(await helloReply(db));
      if (this.options.requireTransactions && !deployment.transactions) {
        throw new UnsupportedError(`requireTransactions is set, but ${deployment.reason}`, {
          backend: BACKEND,
          operation: 'connect',
        });
      }
      await prepareComponent(db, this.options.collectionPrefix, 'agent', this.options.readOnly);
      const names = agentCollectionNames(this.options.collectionPrefix);
      const collections = {} as Record<AgentCollectionRole, ReturnType<MongoDatabase['collection']>>;
      for (const role of AGENT_COLLECTIONS) collections[role] = db.collection(names[role]);
      return { client, db, collections, deployment };
    } catch (error) {
      // A client we made and could not use is closed at once, so that no
      // monitoring timers outlive the failure; the next attempt makes a new one.
      if (this.ownedClient === client) {
        this.ownedClient = undefined;
        await client.close().catch(() => undefined);
      }
      throw error;
    }
  }

  /** Closes the client if the store made it; an injected client is left open. */
  async close(): Promise<void> {
    this.closed = true;
    const opening = this.opening;
    this.opening = undefined;
    this.opened = undefined;
    if (opening) await opening.catch(() => undefined);
    const client = this.ownedClient;
    this.ownedClient = undefined;
    if (client) await client.close();
  }
}

/**
 * Runs `body` atomically where the deployment has transactions (in one
 * `withTransaction`, which retries the whole body on transient errors, so the
 * body must be re-runnable and must await each operation in turn: the driver
 * forbids parallel operations inside a transaction), and plainly otherwise,
 * where the caller orders its writes so that a failure is safe to retry.
 */
export async function runAtomically<T>(
  open: Pick<OpenMongo, 'client' | 'deployment'>,
  body: (session: MongoSession | undefined) => Promise<T>,
): Promise<T> {
  if (!open.deployment.transactions) return body(undefined);
  const session = open.client.startSession();
  try {
    return await session.withTransaction(() => body(session));
  } finally {
    await session.endSession();
  }
}

/** Driver options carrying the session, when there is one. */
export function withSession(session: MongoSession | undefined, options: MongoOptions = {}): MongoOptions {
  return session ? { ...options, session } : options;
}

/**
 * As `runAtomically`, run again (up to `attempts` runs in all) when the body
 * lost a race to create a document under a unique index. In a transaction,
 * two writers inserting the same key make one of them fail with a
 * duplicate-key error, which is not a transient transaction error the driver
 * retries itself; the next run reads the winner's document.
 */
export async function runAtomicallyRetryingInserts<T>(
  open: Pick<OpenMongo, 'client' | 'deployment'>,
  attempts: number,
  body: (session: MongoSession | undefined) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runAtomically(open, body);
    } catch (error) {
      if (!isDuplicateKey(error) || attempt >= attempts) throw error;
    }
  }
}

// ---- waiting between attempts ---------------------------------------------------

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The next wait between two attempts: grows by half up to `max`, never past the deadline. */
export function nextBackoff(previousMs: number, remainingMs: number, maxMs = 500): number {
  return Math.max(0, Math.min(previousMs * 1.5, maxMs, remainingMs));
}

/**
 * A lost race's pause before the next attempt: a little more each time, with
 * jitter, so that writers who collided do not collide again in step.
 */
export function raceBackoff(attempt: number): Promise<void> {
  return sleep(Math.random() * Math.min(100, 2 * attempt));
}
