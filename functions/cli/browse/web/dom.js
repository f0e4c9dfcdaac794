// @ts-check
/**
 * The only way the pages build elements. Untrusted text (room names, numbers, transcripts) goes
 * in as text nodes; attributes are limited to a list of harmless ones, and links and media
 * sources must be same-origin paths. Nothing here (or anywhere in the front end) uses innerHTML.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Attributes the pages may set. Event handlers (on*), style and srcdoc are never among them. */
const SAFE_ATTRIBUTES = new Set([
  'class', 'id', 'title', 'role', 'lang', 'hidden', 'tabindex',
  'aria-label', 'aria-current', 'aria-hidden', 'aria-describedby', 'aria-live',
  'data-call-id', 'data-role', 'data-kind', 'data-field', 'data-state',
  'href', 'src', 'download', 'rel',
  'datetime', 'type', 'name', 'value', 'placeholder', 'for', 'method', 'action', 'autocomplete', 'inputmode', 'selected', 'checked',
  'controls', 'preload', 'colspan', 'scope', 'min', 'max', 'step',
  // SVG
  'viewBox', 'width', 'height', 'x', 'y', 'x1', 'x2', 'y1', 'y2', 'cx', 'cy', 'r', 'rx', 'd', 'points',
  'fill', 'stroke', 'stroke-width', 'stroke-dasharray', 'text-anchor', 'dominant-baseline', 'transform', 'preserveAspectRatio', 'focusable',
]);

const URL_ATTRIBUTES = new Set(['href', 'src', 'action']);

/** A same-origin path (`/calls/RM_x`, `/?room=a`), or throws. */
export function samePath(value) {
  const text = String(value);
  if (!/^\/(?![/\\])/.test(text) && !text.startsWith('?') && !text.startsWith('#')) throw new Error(`not a same-origin path: ${text}`);
  return text;
}

/**
 * @param {Element} node
 * @param {Record<string, string | number | boolean | null | undefined>} attributes
 */
function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (!SAFE_ATTRIBUTES.has(name)) throw new Error(`attribute ${name} is not allowed`);
    const text = value === true ? '' : String(value);
    node.setAttribute(name, URL_ATTRIBUTES.has(name) ? samePath(text) : text);
  }
}

/** @typedef {Node | string | number | null | undefined | false | any[]} Child */

/**
 * @param {Node} node
 * @param {Child[]} children
 */
function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (typeof child === 'string' || typeof child === 'number') node.appendChild(document.createTextNode(String(child)));
    else node.appendChild(child);
  }
}

/**
 * An HTML element with safe attributes and text or element children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attributes]
 * @param {Child[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  append(node, children);
  return node;
}

/**
 * An SVG element.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attributes]
 * @param {Child[]} children
 * @returns {SVGElement}
 */
export function svg(tag, attributes = {}, ...children) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  setAttributes(node, attributes);
  append(node, children);
  return node;
}

/**
 * Replaces a container's content.
 * @param {Element} container
 * @param {Child[]} children
 */
export function replace(container, ...children) {
  container.replaceChildren();
  append(container, children);
}

/** A message box for a failure, as text. */
export function errorBox(message) {
  return el('p', { class: 'error', role: 'alert' }, String(message));
}

/**
 * GET a JSON endpoint of this server; a failure throws with the server's one-line message.
 * @param {string} path
 * @returns {Promise<any>}
 */
export async function getJson(path) {
  const response = await fetch(samePath(path), { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  if (!response.ok) throw new Error(body && typeof body.error === 'string' ? body.error : `the server answered ${response.status}`);
  return body;
}

/** `/calls/<id>` for a call id. */
export function callPath(callId) {
  return `/calls/${encodeURIComponent(String(callId))}`;
}

/** Yes / no badge. */
export function yesNo(value, yes = 'yes', no = 'no') {
  return el('span', { class: value ? 'badge yes' : 'badge no' }, value ? yes : no);
}
