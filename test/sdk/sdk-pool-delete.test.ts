import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  AgentDependencies,
  ContentBlock,
  Message,
  ModelConfig,
  ModelProvider,
  ModelResponse,
  ModelStreamChunk,
  Agent as SdkAgent,
} from '@shareai-lab/kode-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExtendedStore, type ExtendedStoreConfig, type KodeStore } from '../../src/index.js';
import { describePostgres, useTestSchema } from '../helpers/postgres.js';
import { describeSdk, installedSdk, SDK_PACKAGE } from '../helpers/sdk.js';

/**
 * Deleted stays deleted, under the real SDK (SPEC §3). After a step's
 * `chat()` resolves, the SDK still saves the agent's info and appends
 * `step_complete`, `state_changed` and `breakpoint_changed` without awaiting
 * them, also while `AgentPool.delete()` runs. Those late writes must not
 * bring the agent back: before the tombstone, 20 of 20 runs on SQLite left a
 * ghost id that `AgentPool.resumeAll()` then failed on (AGENT_NOT_FOUND).
 *
 * Since then the store's `delete` also waits for the writes queued before it,
 * and with SDK 2.7.5 no write of these agents now arrives after the delete
 * has run: this test passes with tombstones switched off (checked). It guards
 * the whole path under the real SDK; writes that do arrive after a delete
 * are tested directly by the conformance suite (deleted-stays-deleted).
 */

type Sdk = typeof import('@shareai-lab/kode-sdk');
let sdk: Sdk;

beforeAll(async () => {
  if (!process.env.KODE_SDK_TARBALL) return;
  installedSdk();
  sdk = (await import(SDK_PACKAGE)) as Sdk;
});

/** Echoes the last user message, streamed in two chunks as a provider would. */
class EchoModel implements ModelProvider {
  readonly model = 'echo-v1';
  readonly maxWindowSize = 200_000;
  readonly maxOutputTokens = 4_096;
  readonly temperature = 0;

  toConfig(): ModelConfig {
    return { provider: 'scripted', model: this.model };
  }

  private reply(messages: Message[]): ContentBlock {
    const last = messages[messages.length - 1]?.content[0];
    return { type: 'text', text: `echo: ${last?.type === 'text' ? last.text : '?'}` };
  }

  async complete(messages: Message[]): Promise<ModelResponse> {
    return { role: 'assistant', content: [this.reply(messages)] };
  }

  async *stream(messages: Message[]): AsyncIterable<ModelStreamChunk> {
    const block = this.reply(messages) as { type: 'text'; text: string };
    yield { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } };
    const half = Math.ceil(block.text.length / 2);
    for (const text of [block.text.slice(0, half), block.text.slice(half)]) {
      yield { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } };
    }
    yield { type: 'content_block_stop', index: 0 };
    yield { type: 'message_stop' };
  }
}

/** Resolves when the agent's step has fully finished (its last state change is READY). */
function settled(agent: SdkAgent): Promise<void> {
  return new Promise((resolve) => {
    const off = agent.on('state_changed', (event: { state: string }) => {
      if (event.state === 'READY') {
        off();
        resolve();
      }
    });
    void agent.status().then((status) => {
      if (status.state === 'READY') {
        off();
        resolve();
      }
    });
  });
}

/**
 * The store as the SDK sees it, counting the calls still in flight, so a
 * test can wait until every write the SDK has issued has landed (or been
 * refused) instead of guessing how long that takes.
 */
function trackInFlight(store: KodeStore): {
  store: KodeStore;
  /** Resolves once no call is in flight, also counting calls issued by the ones it waited for. */
  drained(): Promise<void>;
} {
  const inFlight = new Set<Promise<unknown>>();
  const tracked = new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = value.apply(target, args);
        if (result instanceof Promise) {
          const settled: Promise<void> = result
            .then(
              () => undefined,
              () => undefined,
            )
            .then(() => {
              inFlight.delete(settled);
            });
          inFlight.add(settled);
        }
        return result;
      };
    },
  });
  return {
    store: tracked,
    async drained() {
      while (inFlight.size > 0) await Promise.all(inFlight);
    },
  };
}

const ROUNDS = 20;

function poolDelete(storeConfig: () => ExtendedStoreConfig, workDir: () => string): void {
  it(`await agent.chat(); await pool.delete(id), ${ROUNDS} times: no id comes back, and resumeAll finds nothing to fail on`, async () => {
    const { AgentPool, AgentTemplateRegistry, SandboxFactory, ToolRegistry } = sdk;
    const templates = new AgentTemplateRegistry();
    templates.register({ id: 'echo', systemPrompt: 'You echo.', tools: [] });
    const store: KodeStore = await createExtendedStore(storeConfig());
    const sdkCalls = trackInFlight(store);
    const deps: AgentDependencies = {
      store: sdkCalls.store,
      templateRegistry: templates,
      sandboxFactory: new SandboxFactory(),
      toolRegistry: new ToolRegistry(),
      modelFactory: () => new EchoModel(),
    };
    const config = {
      templateId: 'echo',
      modelConfig: new EchoModel().toConfig(),
      sandbox: { kind: 'local' as const, workDir: workDir(), watchFiles: false },
    };
    try {
      const pool = new AgentPool({ dependencies: deps, maxAgents: ROUNDS + 5 });
      const kept = await pool.create('kept-agent', config);
      await kept.chat('stay');
      await settled(kept);
      const deleted: string[] = [];
      const stepsDone: Promise<void>[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const id = `doomed-${round}`;
        const agent = await pool.create(id, config);
        await agent.chat(`hello ${round}`);
        stepsDone.push(settled(agent));
        await pool.delete(id);
        deleted.push(id);
      }
      // A step issues its last writes when it turns READY; once every step is
      // READY and every write issued has been answered, none is left to come.
      await Promise.all(stepsDone);
      await sdkCalls.drained();
      for (const id of deleted) expect(await store.exists(id), `exists(${id})`).toBe(false);
      expect(await store.list()).toEqual(['kept-agent']);

      const restarted = new AgentPool({ dependencies: deps, maxAgents: ROUNDS + 5 });
      const resumed = await restarted.resumeAll(() => config);
      expect(resumed.map((agent) => agent.agentId)).toEqual(['kept-agent']);
    } finally {
      await store.close();
    }
  });
}

describeSdk('AgentPool.delete under the real SDK: the deleted agent stays deleted', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kode-sdk-delete-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  describe('on SQLite', () => {
    poolDelete(
      () => ({ type: 'sqlite', dbPath: join(dir, 'agents.db') }),
      () => dir,
    );
  });

  describe('on SQLite, hybrid mode', () => {
    poolDelete(
      () => ({
        type: 'sqlite',
        dbPath: join(dir, 'hybrid.db'),
        eventStorage: 'file',
        fileStoreBaseDir: join(dir, 'hybrid-events'),
      }),
      () => dir,
    );
  });

  describePostgres('on PostgreSQL', () => {
    const place = useTestSchema('sdk_delete');
    poolDelete(
      () => ({ type: 'postgres', connection: place.url, schema: place.schema }),
      () => dir,
    );
  });

  describePostgres('on PostgreSQL, hybrid mode', () => {
    const place = useTestSchema('sdk_delete_hybrid');
    poolDelete(
      () => ({
        type: 'postgres',
        connection: place.url,
        schema: place.schema,
        eventStorage: 'file',
        fileStoreBaseDir: join(dir, 'pg-hybrid-events'),
      }),
      () => dir,
    );
  });
});
