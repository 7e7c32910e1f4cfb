import { api } from './api.js';
import { currentRoute, h, link, problem } from './dom.js';
import { agentPage, snapshotPage } from './page-agent.js';
import { agentsPage } from './page-agents.js';
import { kvInstancePage, kvInstancesPage, kvNamespacePage, kvRecordPage } from './page-kv.js';
import { statsPage } from './page-stats.js';

/**
 * The studio's pages, chosen by the URL's fragment (`#/agents`,
 * `#/agent/<id>`, `#/stats`, `#/kv/...`), so every view has an address that
 * can be bookmarked, and back and forward work. Each page is a function
 * `(context) → Promise<{ title, node }>` that asks the API for what it shows.
 */

function pageFor(segments) {
  const [first, ...rest] = segments;
  switch (first) {
    case undefined:
    case 'agents':
      return agentsPage;
    case 'agent':
      if (rest.length === 1) return agentPage;
      if (rest.length === 3 && rest[1] === 'snapshot') return snapshotPage;
      return undefined;
    case 'stats':
      return statsPage;
    case 'kv':
      return [kvInstancesPage, kvInstancePage, kvNamespacePage, kvRecordPage][rest.length];
    default:
      return undefined;
  }
}

let overview;
let renders = 0;

function navigation(active) {
  const items = [
    ['Agents', ['agents'], 'agents'],
    ['Fleet stats', ['stats'], 'stats'],
  ];
  if (overview?.kv) items.push(['KV', ['kv'], 'kv']);
  return items.map(([text, segments, key]) =>
    link(text, segments, undefined, { 'aria-current': active === key ? 'page' : undefined }),
  );
}

async function render() {
  const ticket = ++renders;
  const drawing = location.hash;
  const main = document.getElementById('main');
  const { segments, query } = currentRoute();
  const active = segments[0] === 'agent' || segments.length === 0 ? 'agents' : segments[0];
  document.getElementById('nav').replaceChildren(...navigation(active));
  const page = pageFor(segments);
  main.setAttribute('aria-busy', 'true');
  let title = 'Not found';
  let node;
  try {
    if (!page) throw new Error(`no such page: #/${segments.join('/')}`);
    ({ title, node } = await page({ segments, query, overview }));
  } catch (error) {
    title = 'Problem';
    node = h('section', {}, h('h1', {}, 'Problem'), problem(error.message));
  }
  // A slower page must not replace the one navigated to after it.
  if (ticket !== renders) return;
  document.title = `${title} · kode-store studio`;
  main.replaceChildren(node);
  main.removeAttribute('aria-busy');
  // Which address the page shows: a reader (or a test) knows the page is the one asked for.
  main.dataset.route = drawing;
  const target = query.at === undefined ? null : document.getElementById(`message-${query.at}`);
  if (target) {
    target.scrollIntoView({ block: 'start' });
    target.classList.add('target');
  } else {
    window.scrollTo(0, 0);
  }
}

async function start() {
  try {
    overview = await api('overview');
    document
      .getElementById('location')
      .replaceChildren(
        h('span', {}, overview.location),
        ' ',
        h('span', { class: 'badge' }, `${overview.backend} · read-only`),
      );
  } catch (error) {
    document.getElementById('main').replaceChildren(problem(`The studio did not answer: ${error.message}`));
    return;
  }
  window.addEventListener('hashchange', render);
  await render();
}

start();
