// What every page shares: polling, the live indicator, the document title and the
// "ready" mark the browser test waits for.

// POLL_MS is how often pages refresh what they show.
export const POLL_MS = 5000;

// poll runs fn now and then POLL_MS (or ms) after each run ends, until signal aborts or
// fn returns false. It skips runs while the tab is hidden.
export function poll(signal, fn, ms = POLL_MS) {
  let timer;
  const run = async () => {
    if (signal.aborted) return;
    if (!document.hidden) {
      try {
        if (await fn() === false) return;
      } catch (err) {
        if (err.name !== 'AbortError') live.error(err);
      }
    }
    if (!signal.aborted) timer = setTimeout(run, ms);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  run();
}

const clock = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function setLive(state, text) {
  const p = document.getElementById('live');
  const t = document.getElementById('live-text');
  if (!p || !t) return;
  p.dataset.state = state;
  t.textContent = text;
}

// live reports how fresh the page is.
export const live = {
  polling: () => setLive('live', `Live · updated ${clock.format(new Date())} · refreshes every ${POLL_MS / 1000} s`),
  streaming: () => setLive('live', `Live · following the job's events · updated ${clock.format(new Date())}`),
  final: (status) => setLive('final', `Final: ${status} · updated ${clock.format(new Date())}`),
  error: (err) => setLive('error', `Not updating: ${err && err.message ? err.message : err}`),
  note: (text) => setLive('final', text), // a page that does not refresh
};

// title sets the document title.
export function title(text) {
  document.title = text ? `${text} · OmniSync explorer` : 'OmniSync explorer';
}

// ready marks the page as rendered from the API at least once.
export function ready(main) {
  main.dataset.ready = 'true';
}

// isFinal reports whether a job's status is terminal (api.Final).
export const isFinal = (status) => ['settled', 'failed', 'cancelled', 'expired'].includes(status);
