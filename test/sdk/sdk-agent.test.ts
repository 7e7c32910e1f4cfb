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
  Timeline,
  ToolCallRecord,
} from '@shareai-lab/kode-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExtendedStore, type ExtendedStoreConfig, type KodeStore } from '../../src/index.js';
import { describePostgres, useTestSchema } from '../helpers/postgres.js';
import { describeSdk, installedSdk, SDK_PACKAGE } from '../helpers/sdk.js';

/**
 * Our stores under the real KODE SDK 2.7.5, driven the way an application
 * drives them: `Agent.create(config, deps)` with a store from
 * `createExtendedStore()`, two steps (the first calls a tool), the store
 * closed and a new one opened on the same database, the agent brought back
 * with `Agent.resumeFromStore`, a third step. After each part, what the store
 * kept is compared with what the agent holds in memory. The model is scripted
 * (no network); everything else is the SDK's own code.
 */

type Sdk = typeof import('@shareai-lab/kode-sdk');
let sdk: Sdk;

beforeAll(async () => {
  if (!process.env.KODE_SDK_TARBALL) return;
  installedSdk();
  sdk = (await import(SDK_PACKAGE)) as Sdk;
});

/** A model that answers from the conversation alone, as a real provider would stream it. */
class ScriptedModel implements ModelProvider {
  readonly model = 'scripted-v1';
  readonly maxWindowSize = 200_000;
  readonly maxOutputTokens = 4_096;
  readonly temperature = 0;

  toConfig(): ModelConfig {
    return { provider: 'scripted', model: this.model };
  }

  /** `#lookup <city>` calls the lookup tool; a tool result is reported; anything else is echoed with the history's length. */
  reply(messages: Message[]): ContentBlock {
    const last = messages[messages.length - 1]?.content[0];
    if (last?.type === 'text' && last.text.startsWith('#lookup ')) {
      return {
        type: 'tool_use',
        id: `toolu_${messages.length}`,
        name: 'lookup',
        input: { city: last.text.slice(8) },
      };
    }
    if (last?.type === 'tool_result') return { type: 'text', text: `found ${JSON.stringify(last.content)}` };
    const text = last?.type === 'text' ? last.text : '?';
    return { type: 'text', text: `echo (${messages.length} messages): ${text}` };
  }

  async complete(messages: Message[]): Promise<ModelResponse> {
    return { role: 'assistant', content: [this.reply(messages)] };
  }

  async *stream(messages: Message[]): AsyncIterable<ModelStreamChunk> {
    const block = this.reply(messages);
    if (block.type === 'tool_use') {
      yield { type: 'content_block_start', index: 0, content_block: { ...block, input: {} } };
      yield {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) },
      };
    } else if (block.type === 'text') {
      yield { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } };
      // Two chunks, so the progress channel streams more than one delta.
      const half = Math.ceil(block.text.length / 2);
      for (const text of [block.text.slice(0, half), block.text.slice(half)]) {
        yield { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } };
      }
    }
    yield { type: 'content_block_stop', index: 0 };
    yield { type: 'message_delta', usage: { input_tokens: messages.length, output_tokens: 1 } };
    yield { type: 'message_stop' };
  }
}

/**
 * Resolves once the agent is READY again. `chat()` resolves on its step's
 * `done` event; after it the SDK still saves the agent's info and appends
 * `step_complete`, `state_changed` and `breakpoint_changed`, so a store
 * closed before this point makes those writes fail.
 */
function untilReady(agent: SdkAgent): Promise<void> {
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

/** What an agent holds in memory (private fields of SDK 2.7.5's `Agent`; there is no public getter). */
interface Held {
  messages: Message[];
  toolRecords: Map<string, ToolCallRecord>;
  events: { getTimeline(): Timeline[] };
}
const held = (agent: SdkAgent) => agent as unknown as Held;

async function storedEvents(store: KodeStore, agentId: string): Promise<Timeline[]> {
  const events: Timeline[] = [];
  for await (const entry of store.readEvents(agentId)) events.push(entry as Timeline);
  return events;
}

/** The store's copy of the agent equals the agent's own state; `earlier` are events of the agent's previous lives. */
async function expectStoreHolds(store: KodeStore, agent: SdkAgent, earlier: Timeline[] = []): Promise<void> {
  const memory = held(agent);
  const status = await agent.status();
  expect(status.state).toBe('READY');
  expect(await store.loadMessages(agent.agentId)).toEqual(memory.messages);
  expect(await store.loadToolCallRecords(agent.agentId)).toEqual([...memory.toolRecords.values()]);
  // Events come back in the order the SDK appended them, seqs reused after the resume included.
  const timeline = JSON.parse(JSON.stringify(memory.events.getTimeline())) as Timeline[];
  expect(await storedEvents(store, agent.agentId)).toEqual([...earlier, ...timeline]);
  const info = await store.loadInfo(agent.agentId);
  expect(info).toMatchObject({
    agentId: agent.agentId,
    templateId: 'assistant',
    messageCount: memory.messages.length,
    lastSfpIndex: status.lastSfpIndex,
    lastBookmark: status.lastBookmark,
    // The SDK saves its info before the step's last breakpoint change (it keeps STREAMING_MODEL here).
    metadata: { templateId: 'assistant', modelConfig: { provider: 'scripted', model: 'scripted-v1' } },
  });
  const stats = await store.aggregateStats(agent.agentId);
  expect(stats).toMatchObject({
    totalMessages: memory.messages.length,
    totalToolCalls: memory.toolRecords.size,
    toolCallsByState: { COMPLETED: memory.toolRecords.size },
  });
}

function agentLifecycle(storeConfig: () => ExtendedStoreConfig, workDir: () => string): void {
  it('runs two steps with a tool call, resumes from a new store object, runs a third, and the store matches the agent', async () => {
    const { Agent, AgentTemplateRegistry, SandboxFactory, ToolRegistry, defineTool } = sdk;
    const templateRegistry = new AgentTemplateRegistry();
    templateRegistry.register({ id: 'assistant', systemPrompt: 'You look things up.', tools: ['lookup'] });
    const toolRegistry = new ToolRegistry();
    const lookup = defineTool(
      {
        name: 'lookup',
        description: 'The population of a city',
        params: { city: { type: 'string' } },
        attributes: { readonly: true, noEffect: true },
        async exec(args: { city: string }) {
          return { city: args.city, population: args.city.length * 1_000 };
        },
      },
      { autoRegister: false },
    );
    toolRegistry.register('lookup', () => lookup);
    const deps = (store: KodeStore): AgentDependencies => ({
      store,
      templateRegistry,
      sandboxFactory: new SandboxFactory(),
      toolRegistry,
      modelFactory: () => new ScriptedModel(),
    });

    let store = await createExtendedStore(storeConfig());
    const agent = await Agent.create(
      {
        templateId: 'assistant',
        modelConfig: new ScriptedModel().toConfig(),
        sandbox: { kind: 'local', workDir: workDir(), watchFiles: false },
      },
      deps(store),
    );
    const first = await agent.chat('#lookup Paris');
    expect(first.text).toBe('found {"ok":true,"data":{"city":"Paris","population":5000}}');
    await untilReady(agent);
    const second = await agent.chat('thanks');
    expect(second.text).toBe('echo (5 messages): thanks');
    await untilReady(agent);

    expect(held(agent).messages.map((m) => `${m.role}:${m.content.map((b) => b.type).join('+')}`)).toEqual([
      'user:text',
      'assistant:tool_use',
      'user:tool_result',
      'assistant:text',
      'user:text',
      'assistant:text',
    ]);
    expect([...held(agent).toolRecords.values()]).toMatchObject([
      { id: 'toolu_1', name: 'lookup', state: 'COMPLETED', result: { city: 'Paris', population: 5000 } },
    ]);
    await expectStoreHolds(store, agent);
    expect(await store.querySessions({ templateId: 'assistant' })).toMatchObject([
      { agentId: agent.agentId, templateId: 'assistant', messageCount: 6 },
    ]);
    const firstLife = await storedEvents(store, agent.agentId);
    await store.close();

    // A restart: a new store object on the same database, the agent rebuilt from what it kept.
    store = await createExtendedStore(storeConfig());
    const resumed = await Agent.resumeFromStore(agent.agentId, deps(store));
    expect(held(resumed).messages).toEqual(held(agent).messages);
    expect((await resumed.status()).lastBookmark).toEqual((await agent.status()).lastBookmark);
    const third = await resumed.chat('still there?');
    // The model saw the whole conversation from before the restart.
    expect(third.text).toBe('echo (7 messages): still there?');
    await untilReady(resumed);
    expect(held(resumed).messages).toHaveLength(8);
    await expectStoreHolds(store, resumed, firstLife);
    expect(held(resumed).events.getTimeline()[0]?.event).toMatchObject({ type: 'agent_resumed' });
    await store.close();
  });
}

describeSdk('the KODE SDK on kode-store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kode-sdk-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  describe('on SQLite', () => {
    agentLifecycle(
      () => ({ type: 'sqlite', dbPath: join(dir, 'agents.db'), fileStoreBaseDir: join(dir, 'store') }),
      () => dir,
    );
  });

  describePostgres('on PostgreSQL', () => {
    const testSchema = useTestSchema('sdk');
    agentLifecycle(
      () => ({
        type: 'postgres',
        connection: testSchema.url,
        schema: testSchema.schema,
        fileStoreBaseDir: join(dir, 'pg-store'),
      }),
      () => dir,
    );
  });
});
