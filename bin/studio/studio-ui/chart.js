import { count, h, s } from './dom.js';

/**
 * A horizontal bar chart in inline SVG (no chart library): one bar per
 * `{ key, count }`, largest first as the API sends them. Labels are SVG text
 * nodes, so a tool named `<script>` is drawn as those characters.
 */

const BAR = 20;
const GAP = 6;
const LABEL = 190;
const WIDTH = 560;
const COUNT_SPACE = 70;

function shorten(text, max = 26) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** `classFor(key)` picks a bar colour class from a fixed list, or none. */
export function barChart(title, counts, { max = 15, classFor = () => '' } = {}) {
  if (counts.length === 0)
    return h('figure', { class: 'chart' }, h('figcaption', {}, title), h('p', { class: 'muted' }, 'none'));
  const shown = counts.slice(0, max);
  const rest = counts.slice(max).reduce((sum, c) => sum + c.count, 0);
  const largest = Math.max(...shown.map((c) => c.count), 1);
  const height = shown.length * (BAR + GAP);
  const span = WIDTH - LABEL - COUNT_SPACE;
  const svg = s(
    'svg',
    { viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height, role: 'img', 'aria-label': title },
    shown.map((c, i) => {
      const y = i * (BAR + GAP);
      const width = Math.max(2, Math.round((c.count / largest) * span));
      return s(
        'g',
        { class: 'bar-row' },
        s('title', {}, `${c.key}: ${count(c.count)}`),
        s(
          'text',
          {
            x: LABEL - 8,
            y: y + BAR / 2,
            class: 'bar-label',
            'text-anchor': 'end',
            'dominant-baseline': 'middle',
          },
          shorten(c.key),
        ),
        s('rect', { x: LABEL, y, width, height: BAR, rx: 3, class: `bar ${classFor(c.key)}`.trim() }),
        s(
          'text',
          { x: LABEL + width + 6, y: y + BAR / 2, class: 'bar-count', 'dominant-baseline': 'middle' },
          count(c.count),
        ),
      );
    }),
  );
  return h(
    'figure',
    { class: 'chart' },
    h('figcaption', {}, title),
    svg,
    rest > 0 ? h('p', { class: 'muted' }, `and ${count(counts.length - max)} more (${count(rest)})`) : null,
  );
}
