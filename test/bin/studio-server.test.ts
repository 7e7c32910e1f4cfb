import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocation } from '../../bin/open-location.js';
import { answerApi, LISTED_EVENT_COUNT_CAP } from '../../bin/studio/studio-api.js';
import { loadStudioAssets } from '../../bin/studio/studio-assets.js';
import type { StudioAgents, StudioSource } from '../../bin/studio/studio-source.js';
import { studioSourceOf } from '../../bin/studio/studio-source.js';
import type { ReadEventsOptions, Timeline } from '../../src/types.js';
import { FIXTURE_LOCATION, tempDir } from './cli-support.js';
import { largeEvent, migrateFixture } from './studio-data.js';
import { studioOver, writableStore } from './studio-support.js';

/**
 * The studio's server without a browser: the token, the methods, the
 * headers, the JSON API's answers and refusals, and how much of an event
 * stream a page reads.
 */

let scratch: { dir: string; remove: () => Promise<void> };
let fixture: Awaited<ReturnType<typeof studioOver>>;

beforeAll(async () => {
  scratch = await tempDir('kode-studio-server-');
  fixture = await studioOver(FIXTURE_LOCATION);
});

afterAll(async () => {
  await fixture?.close();
  await scratch?.remove();
});

function origin(): string {
  return new URL(fixture.studio.url).origin;
}

async function get(path: string, init: RequestInit = {}) {
  return fetch(`${fixture.studio.url}${path}`, { redirect: 'manual', ...init });
}

async function api(path: string) {
  const response = await get(`api/${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('studio server: the token', () => {
  it('answers 401, and nothing else, without the token', async () => {
    const { token } = fixture.studio;
    for (const path of [
      '/',
      '/index.html',
      '/api/overview',
      '/app.js',
      `/${token.slice(0, -1)}/api/overview`,
      `/${token}x/api/overview`,
      `/${token.toUpperCase()}/api/overview`,
      `/x/${token}/api/overview`,
    ]) {
      const response = await fetch(`${origin()}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 401 });
      const body = await response.text();
      expect(body).toMatch(/needs the token/);
      expect(body).not.toMatch(/agt-/);
    }
  });

  it('prints a URL that carries a fresh random token and binds to 127.0.0.1', async () => {
    const url = new URL(fixture.studio.url);
    expect(url.hostname).toBe('127.0.0.1');
    expect(fixture.studio.host).toBe('127.0.0.1');
    expect(url.pathname).toBe(`/${fixture.studio.token}/`);
    expect(fixture.studio.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const other = await studioOver(FIXTURE_LOCATION);
    try {
      expect(other.studio.token).not.toBe(fixture.studio.token);
      // One studio's token opens nothing on another.
      const response = await fetch(
        `${new URL(other.studio.url).origin}/${fixture.studio.token}/api/overview`,
      );
      expect(response.status).toBe(401);
    } finally {
      await other.close();
    }
  });

  it('redirects /<token> to /<token>/, so the page loads its files under the token', async () => {
    const response = await fetch(fixture.studio.url.slice(0, -1), { redirect: 'manual' });
    expect(response.status).toBe(308);
    expect(response.headers.get('location')).toBe(`/${fixture.studio.token}/`);
  });
});

describe('studio server: read-only', () => {
  it('answers 405 to every write method, with the token, and 401 without it', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      for (const path of ['', 'api/agents', 'api/kv/query', 'api/agent?id=x']) {
        const response = await get(path, { method, body: method === 'OPTIONS' ? undefined : '{}' });
        expect({ method, path, status: response.status }).toEqual({ method, path, status: 405 });
        expect(response.headers.get('allow')).toBe('GET, HEAD');
      }
      const anonymous = await fetch(`${origin()}/api/agents`, {
        method,
        body: method === 'OPTIONS' ? undefined : '{}',
      });
      expect(anonymous.status).toBe(401);
    }
  });

  it('opens the location read-only: its store refuses writes', async () => {
    const location = `sqlite:${join(scratch.dir, 'read-only.db')}`;
    await migrateFixture(location);
    const studio = await studioOver(location);
    try {
      if (studio.opened.kind !== 'store') throw new Error('expected a store');
      expect(studio.opened.readOnly).toBe(true);
      const refused = await studio.opened.store.saveInfo('agt-new', { agentId: 'agt-new' } as never).then(
        () => undefined,
        (error: { code?: string }) => error.code,
      );
      expect(refused).toBeDefined();
      expect(await studio.opened.store.exists('agt-new')).toBe(false);
    } finally {
      await studio.close();
    }
  });
});

describe('studio server: headers', () => {
  it('sends a Content-Security-Policy and no CORS header on every answer, whatever the Origin', async () => {
    const evil = { headers: { Origin: 'http://evil.example' } };
    const answers = [
      await get('', evil),
      await get('app.js', evil),
      await get('api/overview', evil),
      await get('api/nope', evil),
      await get('no-such-file.js', evil),
      await get('api/agents', { ...evil, method: 'POST', body: '{}' }),
      await get('api/agents', { ...evil, method: 'OPTIONS' }),
      await fetch(`${origin()}/`, evil),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 404, 404, 405, 405, 401]);
    for (const response of answers) {
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("require-trusted-types-for 'script'");
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect([...response.headers.keys()].filter((name) => name.startsWith('access-control-'))).toEqual([]);
    }
  });

  it('serves the interface from its own files: index, scripts, styles; HEAD without a body', async () => {
    const index = await get('');
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await index.text();
    expect(html).toContain('<script type="module" src="app.js">');
    expect((await get('app.js')).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await get('studio.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
    const head = await get('', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('refuses to start without its interface files, naming where it looked', async () => {
    const missing = join(scratch.dir, 'no-ui');
    await expect(loadStudioAssets(missing)).rejects.toThrow(
      `the studio's interface is missing from ${missing}`,
    );
    const empty = join(scratch.dir, 'empty-ui');
    await mkdir(empty);
    await writeFile(join(empty, 'app.js'), '');
    await expect(loadStudioAssets(empty)).rejects.toThrow(
      `the studio's interface in ${empty} has no index.html`,
    );
  });

  it('never reaches files outside the interface', async () => {
    // `..` (or `%2e%2e`) resolves out of the token's path before it is sent: a request without the token.
    expect((await get('../../package.json')).status).toBe(401);
    for (const path of [
      '..%2fpackage.json',
      '%2e%2e%2fpackage.json',
      'studio-api.ts',
      'studio-ui/app.js',
      'api',
    ]) {
      const response = await get(path);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
    }
  });
});

describe('studio API: answers and refusals', () => {
  it('refuses bad parameters with 400 and says why', async () => {
    const cases: Array<[string, RegExp]> = [
      ['agent', /missing parameter "id"/],
      ['agents?limit=0', /"limit" must be at least 1/],
      ['agents?limit=501', /"limit" must be an integer from 0 to 500/],
      ['agents?offset=-1', /"offset" must be an integer/],
      ['agents?offset=1.5', /"offset" must be an integer/],
      ['agents?sort=name', /"sort" must be one of created_at, message_count/],
      // A JSONStore keeps no update time: refused rather than faked.
      ['agents?sort=updated_at', /"sort" must be one of created_at, message_count/],
      ['agents?order=up', /"order" must be one of asc, desc/],
      ['agents?from=yesterday', /yesterday/],
      [
        'agent/events?id=agt-01M81Y5YTSB07WSKPHZV3ZCPY1&channel=debug',
        /"channel" must be one of progress, control, monitor/,
      ],
      ['agent/events?id=agt-01M81Y5YTSB07WSKPHZV3ZCPY1&since=x', /"since" must be an integer/],
    ];
    for (const [path, message] of cases) {
      const { status, body } = await api(path);
      expect({ path, status }).toEqual({ path, status: 400 });
      expect((body.error as { message: string }).message).toMatch(message);
    }
  });

  it('answers 404 for an unknown route, agent or snapshot, and for KV on a json: location', async () => {
    const cases: Array<[string, RegExp]> = [
      ['nope', /no API route "nope"/],
      ['constructor', /no API route "constructor"/],
      ['agent?id=agt-missing', /agent "agt-missing" not found/],
      ['agent/events?id=agt-missing', /agent "agt-missing" not found/],
      ['agent/snapshot?id=agt-01M81Y5YTSB07WSKPHZV3ZCPY1&snapshot=nope', /has no snapshot "nope"/],
      ['kv/instances', /holds no KV data/],
    ];
    for (const [path, message] of cases) {
      const { status, body } = await api(path);
      expect({ path, status }).toEqual({ path, status: 404 });
      expect((body.error as { message: string }).message).toMatch(message);
    }
  });

  it('pairs a tool_use on one page with its tool_result on the next', async () => {
    // Messages 0–3: message 3 calls `probe`; its result is message 4.
    const { body } = await api('agent/messages?id=agt-01M81Y5YTSB07WSKPHZV3ZCPY1&offset=0&limit=4');
    expect(body.total).toBe(44);
    expect(body.more).toBe(true);
    expect(body.toolUses).toEqual([{ id: 'toolu_fx_59f2a1206feae96015', messageIndex: 3, name: 'probe' }]);
    expect(body.toolResults).toEqual([
      expect.objectContaining({ id: 'toolu_fx_59f2a1206feae96015', messageIndex: 4, isError: false }),
    ]);
    expect(body.toolCalls).toEqual([
      expect.objectContaining({ id: 'toolu_fx_59f2a1206feae96015', state: 'COMPLETED' }),
    ]);
  });

  it('answers a json: directory the way the same data answers from a store', async () => {
    const location = `sqlite:${join(scratch.dir, 'same.db')}`;
    await migrateFixture(location);
    const store = await studioOver(location);
    try {
      const json = studioSourceOf(fixture.opened);
      const sqlite = studioSourceOf(store.opened);
      // `agt-` leaves out the pool's record, which a migration copies as an agent.
      for (const query of [
        'prefix=agt-',
        'prefix=agt-&template=fx-approval',
        'prefix=agt-&sort=message_count&order=asc',
        'prefix=agt-&sort=message_count&order=desc&offset=2&limit=3',
        'prefix=agt-&from=2026-11-22T15:32:17.5Z&to=2026-11-22T15:32:17.75Z',
        'prefix=agt-01M81Y5YTSB07WSKPHZV3ZCPY1/',
      ]) {
        const params = () => new URLSearchParams(query);
        const fromJson = await answerApi(json, 'agents', params());
        const fromSqlite = await answerApi(sqlite, 'agents', params());
        expect({ query, answer: fromJson }).toEqual({ query, answer: fromSqlite });
      }
      for (const route of ['agent', 'agent/messages', 'agent/tools', 'agent/events', 'agent/event-counts']) {
        const params = () => new URLSearchParams({ id: 'agt-01M81Y5YTSB07WSKPHZV3ZCPY1/fork-1795361537133' });
        expect({ route, answer: await answerApi(json, route, params()) }).toEqual({
          route,
          answer: await answerApi(sqlite, route, params()),
        });
      }
    } finally {
      await store.close();
    }
  });

  it('counts a tool named __proto__ as a name (json: directories)', async () => {
    const root = join(scratch.dir, 'proto-store');
    await mkdir(join(root, 'agt-p', 'runtime'), { recursive: true });
    await writeFile(
      join(root, 'agt-p', 'meta.json'),
      JSON.stringify({ agentId: 'agt-p', templateId: 't', createdAt: '2026-01-01T00:00:00Z', lineage: [] }),
    );
    const record = {
      id: 'c1',
      name: '__proto__',
      state: 'COMPLETED',
      approval: { required: false },
      input: {},
    };
    await writeFile(join(root, 'agt-p', 'runtime', 'tool-calls.json'), JSON.stringify([record]));
    const opened = await openLocation(`json:${root}`, { env: {}, readOnly: true });
    try {
      const source = studioSourceOf(opened);
      const stats = (await answerApi(source, 'stats', new URLSearchParams())) as {
        toolCallsByName: Array<{ key: string; count: number }>;
      };
      expect(stats.toolCallsByName).toEqual([{ key: '__proto__', count: 1 }]);
    } finally {
      await opened.close();
    }
  });
});

describe('studio API: an event page reads only as far as the page', () => {
  const EVENTS = 3_000;
  let source: StudioSource;
  let read: number;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const location = `sqlite:${join(scratch.dir, 'events.db')}`;
    const seeding = await writableStore(location);
    await seeding.store.saveInfo('agt-e', {
      agentId: 'agt-e',
      templateId: 't',
      createdAt: '2026-01-01T00:00:00Z',
      lineage: [],
      configVersion: 'v1',
      messageCount: 0,
      lastSfpIndex: 0,
    });
    await Promise.all(
      Array.from({ length: EVENTS }, (_, i) => seeding.store.appendEvent('agt-e', largeEvent(i, 0))),
    );
    await seeding.close();
    const opened = await openLocation(location, { env: {}, readOnly: true });
    close = () => opened.close();
    const real = studioSourceOf(opened);
    // The real store, with every entry it hands out counted.
    const counted = (agentId: string, opts?: ReadEventsOptions): AsyncIterable<Timeline> => {
      const stream = real.agents.readEvents(agentId, opts);
      return {
        async *[Symbol.asyncIterator]() {
          for await (const entry of stream) {
            read++;
            yield entry;
          }
        },
      };
    };
    const agents = new Proxy(real.agents, {
      get(target, name) {
        if (name === 'readEvents') return counted;
        const value = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as StudioAgents;
    source = { ...real, agents };
  });

  afterAll(() => close?.());

  async function page(query: string) {
    read = 0;
    const answer = (await answerApi(source, 'agent/events', new URLSearchParams(`id=agt-e&${query}`))) as {
      items: Array<{ index: number; value: Timeline }>;
      more: boolean;
      total?: number;
    };
    return { answer, read };
  }

  it('reads the page and one entry more, at the start and further on', async () => {
    const first = await page('limit=50');
    expect(first.answer.items.map((item) => item.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(first.answer.more).toBe(true);
    expect(first.answer.total).toBeUndefined();
    expect(first.read).toBe(51);
    const later = await page('offset=1000&limit=20');
    expect(later.answer.items[0]!.value.bookmark.seq).toBe(1000);
    expect(later.read).toBe(1021);
  });

  it('knows the total when the page reaches the end', async () => {
    const last = await page(`offset=${EVENTS - 10}&limit=50`);
    expect(last.answer.items).toHaveLength(10);
    expect(last.answer.more).toBe(false);
    expect(last.answer.total).toBe(EVENTS);
  });

  it('filters by channel and since in the store', async () => {
    const control = await page('channel=control&limit=5');
    expect(control.answer.items.map((item) => item.value.event.channel)).toEqual(Array(5).fill('control'));
    // Every fifth event is on `control`: the store hands out only those.
    expect(control.read).toBe(6);
    const since = await page(`since=${EVENTS - 4}&limit=50`);
    expect(since.answer.items.map((item) => item.value.bookmark.seq)).toEqual([
      EVENTS - 3,
      EVENTS - 2,
      EVENTS - 1,
    ]);
    expect(since.read).toBe(3);
  });

  it('counts at most the cap on the agents list, and everything on request', async () => {
    read = 0;
    const list = (await answerApi(source, 'agents', new URLSearchParams())) as {
      items: Array<{ agentId: string; events: { count: number; capped: boolean } }>;
    };
    expect(list.items[0]!.events).toEqual({ count: LISTED_EVENT_COUNT_CAP, capped: true });
    expect(read).toBe(LISTED_EVENT_COUNT_CAP + 1);
    read = 0;
    const counts = await answerApi(source, 'agent/event-counts', new URLSearchParams('id=agt-e'));
    expect(counts).toEqual({
      agentId: 'agt-e',
      total: EVENTS,
      byChannel: [
        { key: 'progress', count: (EVENTS * 3) / 5 },
        { key: 'control', count: EVENTS / 5 },
        { key: 'monitor', count: EVENTS / 5 },
      ],
      byType: [
        { key: 'text_chunk', count: (EVENTS * 2) / 5 },
        { key: 'permission_decided', count: EVENTS / 5 },
        { key: 'token_usage', count: EVENTS / 5 },
        { key: 'tool:start', count: EVENTS / 5 },
      ],
    });
    expect(read).toBe(EVENTS);
  });
});
