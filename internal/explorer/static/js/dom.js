// Element builders and number formats. Text from the API only ever becomes text nodes or
// attribute values, never markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'width%') el.style.width = `${Math.max(0, Math.min(100, v))}%`;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// h('p', {class: 'x'}, 'text', child…) makes an HTML element.
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

// fill replaces el's children, skipping empty ones as h does.
export const fill = (el, ...children) => {
  el.replaceChildren();
  return build(el, null, children);
};

// s('circle', {cx: 1}) makes an SVG element.
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

// link is an in-app link: main.js routes it without reloading.
export const link = (href, ...children) => h('a', { href, 'data-nav': true }, ...children);

export const UOMNI = 1_000_000;

const omniFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 6 });
const compactFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const intFmt = new Intl.NumberFormat('en-US');

// omniNum formats uomni as a number of OMNI with up to six decimals; omni adds the unit.
export const omniNum = (uomni) => (typeof uomni === 'number' ? omniFmt.format(uomni / UOMNI) : '—');
export const omni = (uomni) => (typeof uomni === 'number' ? `${omniNum(uomni)} OMNI` : '—');

// omniShort formats large amounts with M/B suffixes for tiles.
export function omniShort(uomni) {
  if (typeof uomni !== 'number') return '—';
  const v = uomni / UOMNI;
  if (Math.abs(v) >= 1e9) return `${compactFmt.format(v / 1e9)}B OMNI`;
  if (Math.abs(v) >= 1e6) return `${compactFmt.format(v / 1e6)}M OMNI`;
  return omni(uomni);
}

export const int = (n) => (typeof n === 'number' ? intFmt.format(n) : '—');

// decimal formats a number with up to two decimals.
export const decimal = (n) => (typeof n === 'number' ? compactFmt.format(n) : '—');

// bp formats basis points as a percentage.
export const bp = (n) => (typeof n === 'number' ? `${compactFmt.format(n / 100)}%` : '—');

export const pct = (part, whole) => (whole > 0 ? (100 * part) / whole : 0);

export function pctText(part, whole) {
  if (!(whole > 0)) return '—';
  const p = (100 * part) / whole;
  return p > 0 && p < 0.01 ? '<0.01%' : `${compactFmt.format(p)}%`;
}

export function mib(n) {
  if (typeof n !== 'number') return '—';
  return n >= 1024 ? `${compactFmt.format(n / 1024)} GiB` : `${intFmt.format(n)} MiB`;
}

// short abbreviates an address or hash for tables; the full value goes in a title.
export function short(id) {
  if (typeof id !== 'string') return '—';
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-4)}` : id;
}

export function millis(ms) {
  if (typeof ms !== 'number') return '—';
  if (ms < 1000) return `${ms < 10 ? compactFmt.format(ms) : intFmt.format(Math.round(ms))} ms`;
  if (ms < 120_000) return `${compactFmt.format(ms / 1000)} s`;
  return `${compactFmt.format(ms / 60_000)} min`;
}

// seconds formats a duration given in seconds.
export function seconds(sec) {
  if (typeof sec !== 'number') return '—';
  if (sec < 120) return `${sec} s`;
  if (sec < 7200) return `${compactFmt.format(sec / 60)} min`;
  if (sec < 172800) return `${compactFmt.format(sec / 3600)} h`;
  return `${compactFmt.format(sec / 86400)} days`;
}

const timeFmt = new Intl.DateTimeFormat('en-GB', {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});

const msFmt = new Intl.DateTimeFormat('en-GB', {
  hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3,
});

// when renders a timestamp as a <time> element (the time of day to the millisecond when
// precise), or a dash for the zero time.
export function when(iso, precise = false) {
  const t = Date.parse(iso);
  if (!iso || Number.isNaN(t) || t <= 0) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: iso }, (precise ? msFmt : timeFmt).format(new Date(t)));
}

export function ago(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!iso || Number.isNaN(t) || t <= 0) return 'never';
  const sec = Math.max(0, Math.round((now - t) / 1000));
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.round(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.round(sec / 3600)} h ago`;
  return `${Math.round(sec / 86400)} d ago`;
}

// dl builds a description list from [term, value] pairs, skipping empty values.
export function dl(pairs, cls = 'facts') {
  const el = h('dl', { class: cls });
  for (const [term, value] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    el.append(h('div', null, h('dt', null, term), h('dd', null, value)));
  }
  return el;
}

// table builds a table in a scrolling wrapper: head is a list of column titles (a title
// starting with '#' is right-aligned, for numbers), rows lists of cells. A table that
// fits wraps its text on a phone rather than scroll sideways.
export function table(caption, head, rows, empty = 'None.', fit = false) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  const num = head.map((t) => t.startsWith('#'));
  return h('div', { class: ['table-wrap', fit && 'fit'], tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', null,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, head.map((t, i) => h('th', { scope: 'col', class: num[i] && 'num' }, num[i] ? t.slice(1) : t)))),
      h('tbody', null, rows.map((r) => h('tr', null, r.map((c, i) => h('td', { class: num[i] && 'num' }, c)))))));
}

// badge shows a status word in its colour.
export const badge = (text, kind = text) => h('span', { class: ['badge', `b-${String(kind).replace(/[^a-z_-]/gi, '')}`] }, text);

// unavailable says plainly that the API does not offer something yet.
export function unavailable(what, why) {
  return h('p', { class: 'na' }, h('strong', null, `${what}: `), 'not available yet. ', why);
}

// failed shows why a request failed, in place of the section it would have filled.
export const failed = (what, err) => h('p', { class: 'error', role: 'status' }, `${what} could not be loaded: ${err && err.message ? err.message : err}`);

// bar draws a stacked horizontal bar of [label, value, class] segments.
export function bar(segments, label) {
  const total = segments.reduce((a, [, v]) => a + (v > 0 ? v : 0), 0);
  return h('div', { class: 'stack', role: 'img', 'aria-label': label },
    segments.filter(([, v]) => v > 0).map(([name, v, cls]) =>
      h('span', { class: ['seg', cls], 'width%': pct(v, total), title: `${name}: ${pctText(v, total)}` })));
}

// swatch is a legend's colour square for a bar segment class.
export const swatch = (cls) => h('span', { class: ['swatch', cls], 'aria-hidden': 'true' });

export const section = (id, title, ...children) =>
  h('section', { 'aria-labelledby': id, class: 'card' }, h('h2', { id }, title), ...children);

// tiles shows headline figures: [label, value, note].
export function tiles(items) {
  return h('ul', { class: 'tiles' }, items.map(([label, value, note]) =>
    h('li', null, h('span', { class: 'label' }, label), h('strong', null, value), note ? h('span', { class: 'note' }, note) : null)));
}
