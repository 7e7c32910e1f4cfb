import { api } from './api.js';
import { barChart } from './chart.js';
import { count, h } from './dom.js';
import { stateClass } from './page-agent.js';

function bytes(n) {
  if (typeof n !== 'number') return undefined;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function card(label, value) {
  return value === undefined || value === ''
    ? null
    : h(
        'div',
        { class: 'card' },
        h('div', { class: 'card-value' }, value),
        h('div', { class: 'card-label' }, label),
      );
}

/** `#/stats`: the store's totals, and tool calls by state and name summed over the agents' stats. */
export async function statsPage() {
  const stats = await api('stats');
  const { totals, sampled } = stats;
  return {
    title: 'Fleet stats',
    node: h(
      'section',
      {},
      h('h1', {}, 'Fleet stats'),
      h(
        'div',
        { class: 'cards' },
        card('agents', count(totals.agents)),
        card('messages', count(totals.messages ?? sampled.messages)),
        card('tool calls', count(totals.toolCalls ?? sampled.toolCalls)),
        card('events', count(totals.events)),
        card(sampled.complete ? 'snapshots' : 'snapshots (newest agents)', count(sampled.snapshots)),
        card('stored', bytes(totals.bytes)),
      ),
      h(
        'p',
        { class: 'muted' },
        sampled.complete
          ? `Charts sum the stats of all ${count(sampled.agents)} agents with saved info.`
          : `Charts sum the stats of the ${count(sampled.agents)} newest agents (at most ${count(sampled.limit)} are read for this page).`,
      ),
      h(
        'div',
        { class: 'charts' },
        barChart('Tool calls by state', stats.toolCallsByState, { classFor: stateClass }),
        barChart('Tool calls by name', stats.toolCallsByName),
        barChart('Agents by template', stats.agentsByTemplate),
      ),
    ),
  };
}
