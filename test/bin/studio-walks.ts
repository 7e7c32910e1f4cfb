import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { expect } from 'vitest';
import { FIXTURE_DIR } from './cli-support.js';
import { HOSTILE, LARGE } from './studio-data.js';
import { screenshot } from './studio-support.js';

/**
 * What a person does in the studio, written once and walked on every
 * location: open a page, read what it shows, follow links, use the filters
 * and the query box. Expected values come from the fixture's files and its
 * manifest, never from the studio's own answers.
 */

const ROOT = 'agt-01M81Y5YTSB07WSKPHZV3ZCPY1';
const FORK = `${ROOT}/fork-1795361537133`;
const FORK_OF_FORK = `${FORK}/fork-1795361537197`;
const TODO_AGENT = 'agt-01M81Y5Z6Y5043D84VS0NJ1JW9';
const APPROVAL_AGENT = 'agt-01M81Y5Z9YGJW8TEJP7KZ99W6M';

/** The fixture's agents (every directory with a meta.json). */
export const FIXTURE_AGENTS = [
  ROOT,
  FORK,
  FORK_OF_FORK,
  'agt-01M81Y5Z1R8Q0HAQJ2MCCNJYET',
  TODO_AGENT,
  APPROVAL_AGENT,
  'agt-01M81Y5ZF7V8KSXSER1RPEBZ1R',
  'agt-01M81Y5ZGM5G6FSHPDFFH1SCM2',
  'agt-01M81Y5ZN6B4K1Q1NMWQC1G8Y7',
  'agt-01M81Y5ZQBXZ24M0ZTAKMQ05S4',
];

const WAIT = { timeout: 20_000 };

/** The route of a studio page. */
function hash(segments: string[], query: Record<string, string> = {}): string {
  const search = new URLSearchParams(query).toString();
  return `#/${segments.map(encodeURIComponent).join('/')}${search ? `?${search}` : ''}`;
}

/** What the functions run inside the page use (this program is type-checked without the DOM's types). */
interface InPage {
  document: {
    getElementById(
      id: string,
    ): { hasAttribute(name: string): boolean; dataset: Record<string, string | undefined> } | null;
  };
  location: { hash: string };
}

/** Opens a studio route and waits for its page to be drawn. */
export async function visit(page: Page, base: string, segments: string[], query?: Record<string, string>) {
  await page.goto(`${base}${hash(segments, query)}`);
  await settled(page);
}

/** Waits until the page navigated to has been drawn (the main element is no longer busy). */
export async function settled(page: Page): Promise<void> {
  // Drawn for the address in the location bar, not the page before it.
  await page.waitForFunction(() => {
    const { document, location } = globalThis as unknown as InPage;
    const main = document.getElementById('main');
    return main !== null && !main.hasAttribute('aria-busy') && main.dataset.route === location.hash;
  }, WAIT);
}

/** Clicks a link or button and waits for the page it leads to. */
async function follow(page: Page, target: Locator): Promise<void> {
  const before = await page.evaluate(() => (globalThis as unknown as InPage).location.hash);
  await target.click();
  await page.waitForFunction(
    (previous) => (globalThis as unknown as InPage).location.hash !== previous,
    before,
    WAIT,
  );
  await settled(page);
}

async function textOf(locator: Locator): Promise<string> {
  await locator.first().waitFor(WAIT);
  return (await locator.first().innerText()).trim();
}

/** The range line of the first pager ("events 1–50 of 295"). */
async function range(page: Page): Promise<string> {
  return textOf(page.locator('main .pager .range'));
}

/** The agent ids in the agents table, in order. */
async function listedAgents(page: Page): Promise<string[]> {
  return page.locator('table.agents tbody tr td:first-child > a.agent-id').allInnerTexts();
}

function row(page: Page, agentId: string): Locator {
  return page.locator('table.agents tbody tr').filter({
    has: page.locator('td:first-child > a.agent-id', { hasText: new RegExp(`^${escapeRegExp(agentId)}$`) }),
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The value of a fact in the agent's header ("Messages" → "44"). */
async function fact(page: Page, label: string): Promise<string> {
  const item = page.locator('.agent-head dl.facts > div').filter({
    has: page.locator('dt', { hasText: new RegExp(`^${label}$`) }),
  });
  return textOf(item.locator('dd'));
}

async function fixtureMessages(
  agentId: string,
): Promise<Array<{ role: string; content: Array<Record<string, unknown>> }>> {
  return JSON.parse(await readFile(join(FIXTURE_DIR, agentId, 'runtime', 'messages.json'), 'utf8'));
}

// ---- the walks -------------------------------------------------------------------

/**
 * The SDK fixture, wherever it was migrated to (or read in place): the
 * agents page with its filters and orders, one agent's conversation, fork
 * lineage, events with filters, tool calls, snapshots, todos, fleet stats.
 * `label` prefixes the screenshots; `extraAgents` counts agents the location
 * holds besides the fixture's.
 */
export async function walkFixture(page: Page, base: string, label: string, extraAgents: string[] = []) {
  // Agents: every fixture agent listed, with its counts.
  await visit(page, base, ['agents']);
  const total = FIXTURE_AGENTS.length + extraAgents.length;
  expect(await range(page)).toBe(`agents 1–${total}`);
  expect(new Set(await listedAgents(page))).toEqual(new Set([...FIXTURE_AGENTS, ...extraAgents]));
  const rootCells = await row(page, ROOT).locator('td').allInnerTexts();
  // Agent, template, created, messages, tool calls, events (manifest: 102 progress + 193 monitor), snapshots.
  expect(rootCells.slice(1, 7)).toEqual(['fx-assistant', '2026-11-22T15:32:16.863Z', '44', '11', '295', '1']);
  await screenshot(page, `${label}-agents`);

  // Template filter, through the form.
  await page.fill('input[name="template"]', 'fx-approval');
  await follow(page, page.getByRole('button', { name: 'Apply' }));
  expect(new Set(await listedAgents(page))).toEqual(
    new Set([APPROVAL_AGENT, 'agt-01M81Y5ZF7V8KSXSER1RPEBZ1R']),
  );

  // Id prefix with an order by message count, smallest first: the root (44), its fork (16), the fork's fork (20).
  await follow(page, page.getByRole('link', { name: 'Clear' }));
  await page.fill('input[name="prefix"]', ROOT);
  await page.selectOption('select[name="sort"]', 'message_count');
  await page.selectOption('select[name="order"]', 'asc');
  await follow(page, page.getByRole('button', { name: 'Apply' }));
  expect(await listedAgents(page)).toEqual([FORK, FORK_OF_FORK, ROOT]);

  // Time range: created from 17.5 s to 17.75 s past 15:32 (UTC).
  await follow(page, page.getByRole('link', { name: 'Clear' }));
  await page.fill('input[name="from"]', '2026-11-22T15:32:17.500Z');
  await page.fill('input[name="to"]', '2026-11-22T15:32:17.750Z');
  await follow(page, page.getByRole('button', { name: 'Apply' }));
  expect(new Set(await listedAgents(page))).toEqual(
    new Set([
      'agt-01M81Y5ZF7V8KSXSER1RPEBZ1R',
      'agt-01M81Y5ZGM5G6FSHPDFFH1SCM2',
      'agt-01M81Y5ZN6B4K1Q1NMWQC1G8Y7',
    ]),
  );

  // One agent, reached by its link: the conversation as written, tool_use with its result.
  await follow(page, page.getByRole('link', { name: 'Clear' }));
  await follow(page, row(page, ROOT).locator('td:first-child > a.agent-id'));
  expect(await textOf(page.locator('.agent-title'))).toBe(ROOT);
  expect(await fact(page, 'Messages')).toBe('44');
  expect(await fact(page, 'Tool calls')).toBe('11');
  await page.locator('.event-total').waitFor(WAIT);
  expect(await textOf(page.locator('.event-total'))).toBe('295');
  const messages = await fixtureMessages(ROOT);
  expect(await range(page)).toBe('messages 1–44 of 44');
  const firstText = messages[0]!.content[0]!.text as string;
  expect(await textOf(page.locator('#message-0 pre.text'))).toBe(firstText);
  const firstUse = messages.flatMap((m) => m.content).find((b) => b.type === 'tool_use')!;
  const useBlock = page.locator('.block.tool-use').first();
  expect(await textOf(useBlock.locator('.tool-name'))).toBe(firstUse.name);
  expect(await useBlock.locator('.block-head code').innerText()).toBe(firstUse.id);
  expect(await useBlock.locator('.badge').first().innerText()).toBe('COMPLETED');
  expect(await useBlock.locator('.tool-result-inline pre').innerText()).toContain('checking environment');
  // Failed calls are marked.
  expect(await page.locator('.block.tool-use.is-error').count()).toBeGreaterThan(0);
  await screenshot(page, `${label}-agent-conversation`);
  // The result's link leads to the message holding it, marked.
  await follow(page, useBlock.locator('.tool-result-inline a', { hasText: 'message #4' }));
  expect(await page.locator('#message-4.target').count()).toBe(1);

  // Fork lineage: the root's fork, then the fork's fork, each linked both ways.
  await follow(page, page.locator('.lineage').getByRole('link', { name: FORK, exact: true }));
  expect(await textOf(page.locator('.agent-title'))).toBe(FORK);
  expect(await textOf(page.locator('.lineage p.parent'))).toBe(`Parent: ${ROOT}`);
  await follow(
    page,
    page.locator('.lineage ul.children').getByRole('link', { name: FORK_OF_FORK, exact: true }),
  );
  expect(await textOf(page.locator('.agent-title'))).toBe(FORK_OF_FORK);
  expect(await textOf(page.locator('.lineage p.parent'))).toBe(`Parent: ${FORK}`);
  await screenshot(page, `${label}-agent-fork`);
  await follow(page, page.locator('.lineage p.parent').getByRole('link', { name: FORK, exact: true }));
  expect(await textOf(page.locator('.agent-title'))).toBe(FORK);

  // Events: counted in full, filtered by channel and by `since`.
  await visit(page, base, ['agent', ROOT], { tab: 'events' });
  await page.locator('main .pager .range', { hasText: 'of 295' }).waitFor(WAIT);
  expect(await range(page)).toBe('events 1–50 of 295');
  expect(await page.locator('table.events tbody tr').count()).toBe(50);
  await screenshot(page, `${label}-agent-events`);
  await page.selectOption('select[name="channel"]', 'monitor');
  await follow(page, page.getByRole('button', { name: 'Apply' }));
  await page.locator('main .pager .range', { hasText: 'of 193' }).waitFor(WAIT);
  const channels = await page.locator('table.events tbody tr td:nth-child(4)').allInnerTexts();
  expect(new Set(channels)).toEqual(new Set(['monitor']));
  await page.fill('input[name="since"]', '280');
  await follow(page, page.getByRole('button', { name: 'Apply' }));
  const seqs = (await page.locator('table.events tbody tr td:nth-child(2)').allInnerTexts()).map(Number);
  expect(seqs.length).toBeGreaterThan(0);
  expect(seqs.every((seq) => seq > 280)).toBe(true);
  expect(await range(page)).toBe(`events 1–${seqs.length} of ${seqs.length}`);
  // The next page of the unfiltered timeline.
  await visit(page, base, ['agent', ROOT], { tab: 'events' });
  await follow(page, page.getByRole('link', { name: 'next ›' }).first());
  expect(await textOf(page.locator('main .pager .range'))).toMatch(/^events 51–100/);

  // Tool calls: states, an error, the state filter, the chart.
  await visit(page, base, ['agent', ROOT], { tab: 'tools' });
  expect(await range(page)).toBe('tool calls 1–11 of 11');
  expect(
    await page
      .locator('figure.chart', { hasText: 'Tool calls by name' })
      .locator('text.bar-label')
      .allTextContents(),
  ).toContain('probe');
  const failed = page.locator('details.tool-call.is-error > summary');
  expect(await failed.count()).toBe(3);
  expect(await failed.filter({ hasText: 'Tool not found: lookup_weather' }).count()).toBe(1);
  await screenshot(page, `${label}-agent-tools`);
  await page.selectOption('select[name="state"]', 'FAILED');
  await follow(page, page.getByRole('button', { name: 'Apply' }));
  expect(await range(page)).toBe('tool calls 1–3 of 3');

  // Approvals: a denied call, opened, shows who denied it and why.
  await visit(page, base, ['agent', APPROVAL_AGENT], { tab: 'tools', state: 'DENIED' });
  const denied = page.locator('details.tool-call').first();
  await denied.locator('summary').click();
  expect(await denied.locator('dl.facts').innerText()).toContain('deny by api (no secrets in the repo)');

  // Snapshots: listed and opened.
  await visit(page, base, ['agent', ROOT], { tab: 'snapshots' });
  await follow(page, page.getByRole('link', { name: 'release-draft' }));
  expect(await textOf(page.locator('main h1'))).toBe('Snapshot release-draft');
  await screenshot(page, `${label}-snapshot`);

  // Todos.
  await visit(page, base, ['agent', TODO_AGENT], { tab: 'todos' });
  const todos = await page.locator('table.todos tbody tr').allInnerTexts();
  expect(todos.map((line) => line.split('\t').slice(0, 2))).toEqual([
    ['completed', 'Write the spec'],
    ['completed', 'Review — 审查 ✅'],
    ['pending', 'Announce'],
  ]);
  await screenshot(page, `${label}-agent-todos`);

  // Fleet stats.
  await follow(page, page.getByRole('link', { name: 'Fleet stats' }));
  const cards = await page.locator('.card').allInnerTexts();
  expect(cards[0]).toBe(`${total}\nagents`);
  const names = await page
    .locator('figure.chart', { hasText: 'Tool calls by name' })
    .locator('text.bar-label')
    .allTextContents();
  expect(names).toEqual(expect.arrayContaining(['probe', 'fs_write', 'fs_read', 'task_run']));
  const states = await page
    .locator('figure.chart', { hasText: 'Tool calls by state' })
    .locator('text.bar-label')
    .allTextContents();
  expect(states).toEqual(
    expect.arrayContaining(['COMPLETED', 'FAILED', 'DENIED', 'APPROVAL_REQUIRED', 'SEALED']),
  );
  await screenshot(page, `${label}-stats`);
}

/** The hostile agent: its id, template, text, tool name and input are shown as the characters they are. */
export async function walkHostile(page: Page, base: string, label: string, forkId: string) {
  await visit(page, base, ['agents'], { template: HOSTILE.templateId });
  // The fork carries its parent's template.
  expect(new Set(await listedAgents(page))).toEqual(new Set([HOSTILE.agentId, forkId]));
  expect(await row(page, HOSTILE.agentId).locator('td:nth-child(2)').innerText()).toBe(HOSTILE.templateId);
  await follow(page, row(page, HOSTILE.agentId).locator('td:first-child > a.agent-id'));
  expect(await textOf(page.locator('.agent-title'))).toBe(HOSTILE.agentId);
  expect(await textOf(page.locator('#message-0 pre.text'))).toBe(HOSTILE.text);
  const use = page.locator('.block.tool-use');
  expect(await textOf(use.locator('.tool-name'))).toBe(HOSTILE.toolName);
  expect(JSON.parse(await use.locator('pre.json').first().innerText())).toEqual(HOSTILE.input);
  expect(await use.locator('.tool-result-inline pre').innerText()).toBe(HOSTILE.result);
  expect(await use.locator('.tool-result-inline .badge-error').count()).toBe(1);
  await follow(page, page.locator('.lineage ul.children').getByRole('link', { name: forkId, exact: true }));
  expect(await textOf(page.locator('.lineage p.parent'))).toBe(`Parent: ${HOSTILE.agentId}`);
  await visit(page, base, ['agent', HOSTILE.agentId], { tab: 'events' });
  expect(await textOf(page.locator('table.events tbody tr td:nth-child(6) summary'))).toContain(
    'error tool: Hello <b>not bold</b> <img src=x',
  );
  await screenshot(page, `${label}-hostile`);
}

/** KV: instances → namespaces → records, the query box (and its errors), one record. */
export async function walkKv(page: Page, base: string, label: string) {
  await visit(page, base, ['agents']);
  await follow(page, page.getByRole('link', { name: 'KV', exact: true }));
  const instances = await page.locator('table.kv-instances tbody tr').allInnerTexts();
  expect(instances.map((line) => line.split('\t').slice(0, 4))).toEqual([
    ['app-data', 'App data', 'what the agents remember', '4'],
  ]);
  await screenshot(page, `${label}-kv`);
  await follow(page, page.getByRole('link', { name: 'app-data' }));
  const namespaces = await page.locator('table.kv-namespaces tbody tr').allInnerTexts();
  expect(namespaces.map((line) => line.split('\t'))).toEqual([
    ['notes', '1'],
    ['users', '3'],
  ]);
  await follow(page, page.locator('table.kv-namespaces').getByRole('link', { name: 'users' }));
  const keys = () => page.locator('table.kv-records tbody tr td:first-child').allInnerTexts();
  expect(await keys()).toEqual(['alice', 'bob', 'carol']);

  // The query box: the DSL's where and orderBy.
  await page.fill(
    'textarea[name="q"]',
    JSON.stringify({
      where: [{ field: 'value.score', operator: 'gte', value: 100 }],
      orderBy: { field: 'value.score', direction: 'desc' },
    }),
  );
  await follow(page, page.getByRole('button', { name: 'Run query' }));
  expect(await keys()).toEqual(['carol', 'alice']);
  expect(await range(page)).toBe('2 shown of 2 records');
  await screenshot(page, `${label}-kv-query`);
  // A query the DSL refuses is reported, not swallowed.
  await page.fill('textarea[name="q"]', '{"where":[{"field":"value.score","operator":"nope","value":1}]}');
  await follow(page, page.getByRole('button', { name: 'Run query' }));
  expect(await textOf(page.getByRole('alert'))).toMatch(/nope/);
  await page.fill('textarea[name="q"]', '{"where": [');
  await follow(page, page.getByRole('button', { name: 'Run query' }));
  expect(await textOf(page.getByRole('alert'))).toMatch(/not JSON/);

  // One record: value, metadata, version, times, actor.
  await visit(page, base, ['kv', 'app-data', 'users']);
  await follow(page, page.getByRole('link', { name: 'alice', exact: true }));
  const facts = await page.locator('dl.facts').innerText();
  expect(facts).toMatch(/Version\s+2/);
  expect(facts).toMatch(/Updated by\s+agent-7/);
  const [value, metadata] = await page.locator('pre.json').allInnerTexts();
  expect(JSON.parse(value!)).toEqual({ name: 'Alice', score: 150 });
  expect(JSON.parse(metadata!)).toEqual({ source: 'signup' });
  await screenshot(page, `${label}-kv-record`);

  // A hostile key and value, shown as characters.
  await visit(page, base, ['kv', 'app-data', 'notes']);
  await follow(page, page.getByRole('link', { name: HOSTILE.kvKey, exact: true }));
  expect(await textOf(page.locator('main h1'))).toBe(`Record ${HOSTILE.kvKey}`);
  expect(JSON.parse(await page.locator('pre.json').first().innerText())).toEqual(HOSTILE.kvValue);
}

/** The 100,000-event, 2,000-message agent: every page opens; counts are whole; paging works. */
export async function walkLarge(page: Page, base: string, label: string) {
  await visit(page, base, ['agents']);
  expect(await row(page, LARGE.agentId).locator('td').allInnerTexts()).toEqual([
    LARGE.agentId,
    'tpl-large',
    '2026-02-01T00:00:00Z',
    '2,000',
    '500',
    '1,000+',
    '0',
    '',
  ]);
  await follow(page, row(page, LARGE.agentId).locator('td:first-child > a.agent-id'));
  expect(await range(page)).toBe('messages 1–50 of 2,000');
  expect(await textOf(page.locator('#message-0 pre.text'))).toBe('Question number 0');
  expect(await page.locator('ol.conversation > li').count()).toBe(50);
  await page.locator('.event-total').waitFor(WAIT);
  expect(await textOf(page.locator('.event-total'))).toBe('100,000');
  expect(await fact(page, 'Events')).toBe('100,000 (progress 60,000 · control 20,000 · monitor 20,000)');
  await screenshot(page, `${label}-large-conversation`);
  await follow(page, page.getByRole('link', { name: 'next ›' }).first());
  expect(await range(page)).toBe('messages 51–100 of 2,000');
  // Four messages per round: message 52 opens round 13.
  expect(await textOf(page.locator('#message-52 pre.text'))).toBe('Question number 13');

  await visit(page, base, ['agent', LARGE.agentId], { tab: 'events' });
  expect(await page.locator('table.events tbody tr').count()).toBe(50);
  await page.locator('main .pager .range', { hasText: 'of 100,000' }).waitFor(WAIT);
  expect(await range(page)).toBe('events 1–50 of 100,000');
  await screenshot(page, `${label}-large-events`);
  await follow(page, page.getByRole('link', { name: 'next ›' }).first());
  expect(await page.locator('table.events tbody tr td:nth-child(2)').first().innerText()).toBe('50');
  await page.selectOption('select[name="channel"]', 'control');
  await follow(page, page.getByRole('button', { name: 'Apply' }));
  await page.locator('main .pager .range', { hasText: 'of 20,000' }).waitFor(WAIT);
  await page.fill('input[name="since"]', '99990');
  await page.selectOption('select[name="channel"]', '');
  await follow(page, page.getByRole('button', { name: 'Apply' }));
  expect(await range(page)).toBe('events 1–9 of 9');

  await visit(page, base, ['agent', LARGE.agentId], { tab: 'tools' });
  expect(await range(page)).toBe('tool calls 1–50 of 500');
  await screenshot(page, `${label}-large-tools`);
}
