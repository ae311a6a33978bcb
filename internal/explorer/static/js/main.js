// The explorer's entry point: routes paths to pages without reloading, and runs the search.
import { get, enc } from './api.js';
import { h, link } from './dom.js';
import { title, ready } from './page.js';
import { networkPage } from './network.js';
import { jobPage } from './job.js';
import { nodePage } from './node.js';
import { accountPage } from './account.js';
import { apiPage } from './apidoc.js';

const routes = [
  [/^\/$/, networkPage],
  [/^\/jobs\/([^/]+)$/, jobPage],
  [/^\/nodes\/([^/]+)$/, nodePage],
  [/^\/accounts\/([^/]+)$/, accountPage],
  [/^\/docs\/api$/, apiPage],
];

let current = null; // the AbortController of the page on screen
let shown = null; // the path and query of the page on screen

function show() {
  if (current) current.abort();
  current = new AbortController();
  shown = location.pathname + location.search;
  for (const a of document.querySelectorAll('.nav a')) {
    if (a.getAttribute('href') === location.pathname) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  for (const k of Object.keys(main.dataset)) delete main.dataset[k];
  for (const [re, page] of routes) {
    const m = re.exec(location.pathname);
    if (m) {
      let arg = '';
      try {
        arg = decodeURIComponent(m[1] || '');
      } catch {
        arg = m[1];
      }
      page(main, arg, current.signal);
      return;
    }
  }
  title('Not found');
  main.append(h('h1', null, 'Page not found'), h('p', null, 'Nothing lives at this address. ', link('/', 'Back to the network')));
  ready(main);
}

export function go(path) {
  if (path !== location.pathname + location.search + location.hash) history.pushState(null, '', path);
  show();
  window.scrollTo(0, 0);
  document.getElementById('main').focus({ preventScroll: true });
}

// search opens the page for a job id, a node or an address.
async function search(q) {
  q = q.trim();
  if (!q) return;
  if (q.startsWith('job-')) return go(`/jobs/${enc(q)}`);
  try {
    const nodes = await get('/v1/nodes');
    if (nodes.some((n) => n.id === q)) return go(`/nodes/${enc(q)}`);
  } catch {
    // no node list: fall through to the shape of q
  }
  if (/^[1-9A-HJ-NP-Za-km-z]{32,44}$/.test(q)) return go(`/accounts/${enc(q)}`);
  return go(`/jobs/${enc(q)}`);
}

document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  go(a.getAttribute('href'));
});

document.getElementById('search').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('q');
  search(input.value).then(() => input.blur());
});

// A link to an anchor on the page (#…) moves within it and fires popstate too: only a
// change of page renders anew.
window.addEventListener('popstate', () => {
  if (location.pathname + location.search !== shown) show();
});

// /?q=… is where the search form goes without JavaScript's help, or from a bookmark.
const q = new URLSearchParams(location.search).get('q');
if (location.pathname === '/' && q) {
  document.getElementById('q').value = q;
  search(q);
} else {
  show();
}
