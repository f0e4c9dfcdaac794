// @ts-check
/** The list: filters (in the address, so a filtered page can be bookmarked), the table, and paging by cursor. */
import { callPath, el, errorBox, getJson, replace, yesNo } from './dom.js';

const STATUSES = ['in_progress', 'completed', 'failed', 'aborted', 'limit_reached', 'no_answer', 'busy', 'declined', 'abandoned'];
const FILTER_NAMES = ['since', 'until', 'room', 'number', 'direction', 'answered', 'status', 'limit'];

/**
 * @param {string} label
 * @param {string} name
 * @param {URLSearchParams} params
 * @param {string} placeholder
 */
function textField(label, name, params, placeholder) {
  return el('label', {}, el('span', {}, label), el('input', { type: 'text', name, value: params.get(name) ?? '', placeholder, autocomplete: 'off' }));
}

/**
 * @param {string} label
 * @param {string} name
 * @param {URLSearchParams} params
 * @param {[string, string][]} options value, label
 */
function selectField(label, name, params, options) {
  const current = params.get(name) ?? '';
  return el(
    'label',
    {},
    el('span', {}, label),
    el('select', { name }, options.map(([value, text]) => el('option', { value, selected: value === current }, text))),
  );
}

/** @param {URLSearchParams} params */
function filterForm(params) {
  return el(
    'form',
    { class: 'filters', method: 'get', action: '/', 'aria-label': 'Filters' },
    textField('Since', 'since', params, '2026-11-01'),
    textField('Until', 'until', params, '2026-11-30 or 2026-11-30T18:00'),
    textField('Room', 'room', params, 'exact room name'),
    textField('Number', 'number', params, '+14155550100'),
    selectField('Direction', 'direction', params, [['', 'any'], ['inbound', 'inbound'], ['outbound', 'outbound']]),
    selectField('Answered', 'answered', params, [['', 'any'], ['answered', 'answered'], ['unanswered', 'unanswered']]),
    selectField('Status', 'status', params, [['', 'any'], ...STATUSES.map((s) => /** @type {[string, string]} */ ([s, s]))]),
    selectField('Per page', 'limit', params, [['', '50'], ['10', '10'], ['25', '25'], ['100', '100'], ['250', '250']]),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Apply'), el('a', { href: '/', class: 'button secondary' }, 'Clear')),
  );
}

/** @param {any} row */
function callLine(row) {
  return el(
    'tr',
    { 'data-call-id': row.callId },
    el('td', { class: 'time' }, el('a', { href: callPath(row.callId) }, el('time', { datetime: row.startTime }, row.time))),
    el('td', { class: 'room' }, el('a', { href: callPath(row.callId) }, row.roomName)),
    el('td', {}, row.direction),
    el('td', { class: 'number' }, row.from ?? '–'),
    el('td', { class: 'number' }, row.to ?? '–'),
    el('td', { class: 'duration' }, row.duration),
    el('td', {}, yesNo(row.answered)),
    el('td', {}, el('span', { class: `status status-${row.status === 'completed' ? 'ok' : row.status === 'in_progress' ? 'open' : 'other'}` }, row.status)),
    el('td', {}, yesNo(row.recording)),
  );
}

/**
 * @param {HTMLElement} main
 * @param {URLSearchParams} params
 */
export async function renderList(main, params) {
  const query = new URLSearchParams();
  for (const name of [...FILTER_NAMES, 'cursor']) {
    const value = params.get(name);
    if (value) query.set(name, value);
  }
  const form = filterForm(params);
  replace(main, el('h1', {}, 'Calls'), form, el('p', { class: 'loading' }, 'Loading…'));
  let page;
  try {
    page = await getJson(`/api/calls?${query}`);
  } catch (error) {
    replace(main, el('h1', {}, 'Calls'), form, errorBox(error instanceof Error ? error.message : String(error)));
    return;
  }
  const calls = /** @type {any[]} */ (page.calls);
  const next = new URLSearchParams(query);
  if (page.cursor) next.set('cursor', page.cursor);
  const first = new URLSearchParams(query);
  first.delete('cursor');
  const paging = el(
    'nav',
    { class: 'paging', 'aria-label': 'Pages of calls' },
    query.has('cursor') ? el('a', { href: `/?${first}`, class: 'button secondary', 'data-role': 'first-page' }, '« First page') : null,
    page.cursor ? el('a', { href: `/?${next}`, class: 'button', 'data-role': 'next-page', rel: 'next' }, 'Next page »') : null,
  );
  const table =
    calls.length === 0
      ? el('p', { class: 'empty', 'data-role': 'empty' }, 'No calls match these filters.')
      : el(
          'table',
          { id: 'calls', class: 'calls' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              ['Time', 'Room', 'Direction', 'From', 'To', 'Duration', 'Answered', 'Status', 'Recording'].map((h) => el('th', { scope: 'col' }, h)),
            ),
          ),
          el('tbody', {}, calls.map(callLine)),
        );
  replace(
    main,
    el('h1', {}, 'Calls'),
    form,
    el('p', { class: 'hint' }, `${calls.length} call${calls.length === 1 ? '' : 's'} on this page, newest first. Times in ${page.timezone}. From ${page.location}.`),
    table,
    paging,
  );
}
