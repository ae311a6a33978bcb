// A node's page (/nodes/{id}): hardware, where it is, its record and its account.
import { getAll, enc } from './api.js';
import {
  h, fill, link, section, dl, tiles, omni, int, mib, short, badge, unavailable, failed, ago, when, pctText,
} from './dom.js';
import { worldMap, locate, declared, latLon } from './map.js';
import { poll, live, title, ready } from './page.js';

export function nodePage(main, id, signal) {
  title(`Node ${short(id)}`);
  const body = h('div');
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('/', 'Network'), ' › Node'), body);
  poll(signal, async () => {
    // No endpoint returns one node: take it from the list.
    const d = await getAll({ nodes: '/v1/nodes', account: `/v1/chain/accounts/${enc(id)}` }, signal);
    if (d.nodes.error) {
      fill(body, h('h1', null, 'Node'), failed('The node list', d.nodes.error));
      live.error(d.nodes.error);
    } else {
      const n = d.nodes.value.find((x) => x.id === id);
      fill(body, (n ? nodeView(n, d.account) : [
        h('h1', null, 'Node not found'),
        h('p', null, 'No node with the address ', h('code', null, id), ' is registered. ', link(`/accounts/${enc(id)}`, 'See the account'), '.')]));
      live.polling();
    }
    ready(main);
  });
}

function nodeView(n, account) {
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
      unavailable('Reliability history', 'The API gives the running totals above, not how they changed over time, nor the node\u2019s past jobs.')),
    section('earn-h', 'Earnings and slashes',
      account.error ? failed('The node\u2019s account', account.error) : dl([
        ['Balance', omni(account.value.balance)],
        ['Spendable', omni(account.value.spendable)],
        ['Bonded', omni(account.value.bonded)],
      ]),
      h('p', null, link(`/accounts/${enc(n.id)}`, 'Account page')),
      unavailable('Earnings', 'The balance is all the API reports: it has no history of the payments and network rewards a node received.'),
      unavailable('Slashes', 'Slashing events are recorded on chain but no endpoint lists them.')),
  ];
}
