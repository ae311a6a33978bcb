// A node's page (/nodes/{id}): hardware, where it is, its record and its account.
import { getAll, enc } from './api.js';
import {
  h, s, fill, link, section, dl, table, tiles, omni, int, mib, short, badge, failed, ago, when, pctText,
} from './dom.js';
import { worldMap, locate, declared, latLon } from './map.js';
import { poll, live, title, ready } from './page.js';

export function nodePage(main, id, signal) {
  title(`Node ${short(id)}`);
  const body = h('div');
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('/', 'Network'), ' › Node'), body);
  poll(signal, async () => {
    // No endpoint returns one node: take it from the list.
    const d = await getAll({
      nodes: '/v1/nodes', account: `/v1/chain/accounts/${enc(id)}`, history: `/v1/nodes/${enc(id)}/history?limit=${HISTORY}`,
    }, signal);
    if (d.nodes.error) {
      fill(body, h('h1', null, 'Node'), failed('The node list', d.nodes.error));
      live.error(d.nodes.error);
    } else {
      const n = d.nodes.value.find((x) => x.id === id);
      fill(body, (n ? nodeView(n, d.account, d.history) : [
        h('h1', null, 'Node not found'),
        h('p', null, 'No node with the address ', h('code', null, id), ' is registered. ', link(`/accounts/${enc(id)}`, 'See the account'), '.')]));
      live.polling();
    }
    ready(main);
  });
}

// HISTORY is how many of its latest outcomes the page reads.
const HISTORY = 200;

function nodeView(n, account, history) {
  const at = locate(n);
  const done = n.jobs_verified + n.jobs_failed;
  return [
    h('h1', { class: 'id-title' }, 'Node ', h('code', null, n.id), ' ',
      n.online ? badge('online') : badge('offline'), ' ', badge(n.status || 'unknown', n.status === 'active' ? 'online' : 'inactive')),
    tiles([
      ['GPUs', `${int(n.gpus)} × ${n.gpu_model}`, n.online ? `${int(Math.max(0, n.free_gpus))} free now` : 'offline'],
      ['Jobs verified', done ? pctText(n.jobs_verified, done) : '—', `${int(n.jobs_verified)} verified, ${int(n.jobs_failed)} failed`],
      ['Price', omni(n.price_per_hour), 'per GPU-hour'],
      ['Stake', omni(n.stake), 'bonded on chain'],
    ]),
    h('div', { class: 'cols' },
      section('hw-h', 'Hardware',
        dl([
          ['GPU model', n.gpu_model],
          ['GPUs', int(n.gpus)],
          ['VRAM per GPU', mib(n.vram_mib)],
          ['Compute', `${n.tflops} TFLOPS`],
          ['Region', n.region || '—'],
          ['Containers', n.containers ? (n.unsandboxed ? `${n.containers} (unsandboxed)` : n.containers) : 'tensor kernels only'],
          ['Last heartbeat', n.online ? [when(n.last_heartbeat), ` (${ago(n.last_heartbeat)})`] : ago(n.last_heartbeat)],
        ])),
      section('where-h', 'Location',
        at ? worldMap([{ lat: at[0], lon: at[1], online: n.online, title: `${n.gpu_model} · ${latLon(at)}` }], `Map: node at ${latLon(at)}`, 4)
          : h('p', { class: 'muted' }, `Region ${n.region || '(none)'} has no known place, and the node declared no coordinates.`),
        at ? h('p', { class: 'muted' }, declared(n)
          ? `At ${latLon(at)}, where the node declared it is.`
          : `At ${latLon(at)}, its region\u2019s usual data-centre city: the node declared no coordinates.`) : null)),
    section('work-h', 'Work',
      n.running && n.running.length
        ? [h('p', null, 'Running now:'), h('ul', { class: 'plain' }, n.running.map((j) => h('li', null, link(`/jobs/${enc(j)}`, h('code', null, j)))))]
        : h('p', { class: 'muted' }, n.online ? 'Idle: its last heartbeat listed no job.' : 'Offline.'),
      h('h3', null, 'Reliability history'),
      history.error ? failed('The node\u2019s history', history.error) : reliability(history.value)),
    section('earn-h', 'Earnings and slashes',
      account.error ? failed('The node\u2019s account', account.error) : dl([
        ['Balance', omni(account.value.balance)],
        ['Spendable', omni(account.value.spendable)],
        ['Bonded', omni(account.value.bonded)],
      ]),
      h('p', null, link(`/accounts/${enc(n.id)}`, 'Account page')),
      history.error ? failed('The node\u2019s history', history.error) : earnings(history.value)),
  ];
}

const jobLink = (id) => (id ? link(`/jobs/${enc(id)}`, h('code', { title: id }, short(id))) : '—');
const blockTime = (unix) => when(new Date(unix * 1000).toISOString());

// reliability charts the share of the node's jobs verified after each outcome in the
// page of history, oldest on the left, starting from its record before that page.
function reliability(hist) {
  const entries = [...hist.entries].reverse();
  if (!entries.length) return h('p', { class: 'muted' }, 'No settled or failed job on chain yet.');
  const rec = hist.record;
  let ok = rec.settled - entries.filter((e) => e.kind === 'settled').length;
  let bad = rec.failed - entries.filter((e) => e.kind !== 'settled').length;
  const points = []; // [share verified, outcome]
  if (ok + bad > 0) points.push([ok / (ok + bad), 'before']);
  for (const e of entries) {
    if (e.kind === 'settled') ok++; else bad++;
    points.push([ok / (ok + bad), e.kind]);
  }
  const W = 600;
  const H = 120;
  const x = (i) => (points.length === 1 ? W / 2 : (i * W) / (points.length - 1));
  const y = (p) => 6 + (1 - p) * (H - 12);
  const line = points.map(([p], i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p).toFixed(1)}`).join(' ');
  const label = `Reliability over the last ${entries.length} outcomes: ${pctText(ok, ok + bad)} verified now`;
  return [
    s('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label },
      s('title', null, label),
      s('line', { class: 'grid', x1: 0, x2: W, y1: y(1), y2: y(1) }),
      s('line', { class: 'grid', x1: 0, x2: W, y1: y(0.5), y2: y(0.5) }),
      s('path', { class: 'spark-line', d: line, fill: 'none' }),
      points.map(([p, kind], i) => s('circle', { class: ['pt', kind !== 'settled' && kind !== 'before' && 'bad'], cx: x(i), cy: y(p), r: 3 }))),
    h('p', { class: 'muted' }, `Share of jobs verified after each of the node\u2019s last ${int(entries.length)} outcomes on chain (100% at the top line, 50% at the middle); `,
      `${int(rec.settled)} settled and ${int(rec.failed)} failed in all.`),
  ];
}

// earnings lists what the node was paid for each settled job and each slash it took.
function earnings(hist) {
  const rec = hist.record;
  const settled = hist.entries.filter((e) => e.kind === 'settled');
  const lost = hist.entries.filter((e) => e.kind !== 'settled');
  return [
    h('h3', null, 'Earnings'),
    dl([
      ['Earned in all', omni(rec.earned)],
      ['Jobs paid', int(rec.settled)],
      ['Slashed in all', rec.slashes ? `${omni(rec.slashed)} in ${int(rec.slashes)} slash${rec.slashes === 1 ? '' : 'es'}` : 'never slashed'],
    ]),
    table('Earnings by job', ['Job', '#Block', 'Time', '#Paid', '#Network reward'],
      settled.map((e) => [jobLink(e.job_id), int(e.height), blockTime(e.time_unix), omni(e.paid || 0), omni(e.reward || 0)]),
      'No job paid yet.'),
    h('h3', null, 'Slashes and failures'),
    table('Slashes and failures', ['Job', '#Block', 'Time', '#Slashed', 'Reason'],
      lost.map((e) => [jobLink(e.job_id), int(e.height), blockTime(e.time_unix), e.kind === 'slashed' ? omni(e.amount) : '—', e.reason || e.kind]),
      'No slash and no failed job.'),
    hist.next_before ? h('p', { class: 'muted' }, `Showing the latest ${int(hist.entries.length)} outcomes; older ones are at /v1/nodes/{id}/history?before=${hist.next_before}.`) : null,
  ];
}
