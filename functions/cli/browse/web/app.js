// @ts-check
/** Chooses the page from the address: `/` the list, `/calls/<id>` a call, `/overview` the overview. */
import { errorBox, replace } from './dom.js';
import { renderList } from './list.js';
import { renderCall } from './call.js';
import { renderOverview } from './overview.js';

async function route() {
  const main = /** @type {HTMLElement} */ (document.getElementById('main'));
  const path = location.pathname;
  const nav = path === '/overview' ? 'overview' : path === '/' ? 'list' : '';
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.getAttribute('data-nav') === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const search = /** @type {HTMLInputElement | null} */ (document.querySelector('form.search input[name="q"]'));
  const params = new URLSearchParams(location.search);
  if (search && path === '/') search.value = params.get('room') ?? params.get('number') ?? '';
  try {
    const call = /^\/calls\/([^/]+)$/.exec(path);
    if (call) await renderCall(main, decodeURIComponent(call[1] ?? ''));
    else if (path === '/overview') await renderOverview(main, params);
    else await renderList(main, params);
  } catch (error) {
    replace(main, errorBox(error instanceof Error ? error.message : String(error)));
  }
  document.body.setAttribute('data-state', 'ready');
}

void route();
