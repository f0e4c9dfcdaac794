// @ts-check
/** The overview: calls per day, answer rate and median duration, as plain SVG charts. */
import { el, getJson, replace, svg } from './dom.js';

const WIDTH = 720;
const HEIGHT = 200;
const PAD = { top: 12, right: 12, bottom: 28, left: 44 };

/** @param {number} max */
function niceMax(max) {
  if (max <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= max) return step * magnitude;
  return 10 * magnitude;
}

/**
 * A bar chart of one value per day (null: no bar).
 * @param {{ title: string, days: string[], values: (number | null)[], secondary?: (number | null)[], format: (v: number) => string, max?: number, kind: string, integer?: boolean }} options
 */
function barChart(options) {
  const { days, values } = options;
  const max = options.max ?? niceMax(Math.max(0, ...values.map((v) => v ?? 0)));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(1, days.length);
  const barW = Math.max(2, slot * 0.7);
  const y = (/** @type {number} */ v) => PAD.top + innerH - (v / max) * innerH;
  // Counts get whole-number ticks only.
  const ticks = [0, max / 2, max].filter((t) => !options.integer || Number.isInteger(t));
  const labelEvery = Math.max(1, Math.ceil(days.length / 8));
  return svg(
    'svg',
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: `chart chart-${options.kind}`, role: 'img', 'aria-label': options.title, 'data-kind': options.kind },
    svg('title', {}, options.title),
    ticks.map((t) => [
      svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(t), y2: y(t), class: 'grid' }),
      svg('text', { x: PAD.left - 6, y: y(t), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'tick' }, options.format(t)),
    ]),
    days.map((day, i) => {
      const value = values[i];
      const x = PAD.left + i * slot + (slot - barW) / 2;
      const label = i % labelEvery === 0 ? svg('text', { x: x + barW / 2, y: HEIGHT - 8, 'text-anchor': 'middle', class: 'tick' }, day.slice(5)) : null;
      if (value === null || value === undefined) return label;
      const secondary = options.secondary?.[i];
      return [
        svg('rect', { x, y: y(value), width: barW, height: Math.max(0, PAD.top + innerH - y(value)), class: 'bar' }, svg('title', {}, `${day}: ${options.format(value)}`)),
        secondary !== null && secondary !== undefined && secondary > 0
          ? svg('rect', { x, y: y(secondary), width: barW, height: Math.max(0, PAD.top + innerH - y(secondary)), class: 'bar secondary' }, svg('title', {}, `${day}: ${options.format(secondary)} answered`))
          : null,
        label,
      ];
    }),
  );
}

/** @param {number | null} rate */
const percent = (rate) => (rate === null ? '–' : `${Math.round(rate * 100)}%`);
/** @param {number | null} seconds */
function duration(seconds) {
  if (seconds === null) return '–';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}` : `${s}s`;
}

/**
 * @param {HTMLElement} main
 * @param {URLSearchParams} params
 */
export async function renderOverview(main, params) {
  replace(main, el('h1', {}, 'Overview'), el('p', { class: 'loading' }, 'Loading…'));
  const days = params.get('days');
  const data = await getJson(`/api/overview${days ? `?${new URLSearchParams({ days })}` : ''}`);
  const perDay = /** @type {{ day: string, calls: number, answered: number, answerRate: number | null, medianDurationS: number | null }[]} */ (data.perDay);
  const labels = perDay.map((d) => d.day);
  const bound = `Computed from the ${data.scanned} most recent call${data.scanned === 1 ? '' : 's'} of the last ${data.days} days (at most ${data.bound} calls are read${data.truncated ? '; more exist, so the oldest days are incomplete' : ''}). Days in ${data.timezone}.`;
  replace(
    main,
    el('h1', {}, 'Overview'),
    el('p', { class: 'hint', 'data-role': 'bound' }, bound),
    el(
      'nav',
      { class: 'periods', 'aria-label': 'Period' },
      [7, 30, 90].map((n) => el('a', { href: `/overview?days=${n}`, 'aria-current': n === data.days ? 'page' : null }, `last ${n} days`)),
    ),
    el(
      'div',
      { class: 'cards' },
      el('div', { class: 'card' }, el('span', { class: 'figure', 'data-field': 'calls' }, String(data.totals.calls)), el('span', {}, 'calls')),
      el('div', { class: 'card' }, el('span', { class: 'figure', 'data-field': 'answer-rate' }, percent(data.totals.answerRate)), el('span', {}, 'answered')),
      el('div', { class: 'card' }, el('span', { class: 'figure', 'data-field': 'median-duration' }, duration(data.totals.medianDurationS)), el('span', {}, 'median duration (answered)')),
    ),
    el('h2', {}, 'Calls per day'),
    el('p', { class: 'legend' }, el('span', { class: 'swatch' }), ' all calls ', el('span', { class: 'swatch secondary' }), ' answered'),
    barChart({ title: 'Calls per day', kind: 'calls', days: labels, values: perDay.map((d) => d.calls), secondary: perDay.map((d) => d.answered), format: (v) => String(Math.round(v)), integer: true }),
    el('h2', {}, 'Answer rate'),
    barChart({ title: 'Answer rate per day', kind: 'rate', days: labels, values: perDay.map((d) => d.answerRate), max: 1, format: (v) => `${Math.round(v * 100)}%` }),
    el('h2', {}, 'Median duration of answered calls'),
    barChart({ title: 'Median duration per day', kind: 'duration', days: labels, values: perDay.map((d) => d.medianDurationS), format: (v) => duration(v) }),
  );
}
