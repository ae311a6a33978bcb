// The network page (/): nodes and GPUs, the token, blocks, and governance.
import { getAll, enc } from './api.js';
import {
  h, fill, link, section, table, dl, tiles, omni, omniNum, omniShort, int, bp, pctText, short, badge, unavailable, failed, bar, swatch, ago, seconds,
} from './dom.js';
import { worldMap, locate, declared } from './map.js';
import { poll, live, title, ready } from './page.js';

export function networkPage(main, _arg, signal) {
  title('Network');
  const parts = { nodes: h('div'), token: h('div'), chain: h('div'), gov: h('div') };
  main.append(
    h('h1', null, 'Network'),
    section('nodes-h', 'Nodes and GPUs', parts.nodes),
    section('token-h', 'Token', parts.token),
    section('gov-h', 'Governance', parts.gov),
    section('chain-h', 'Blocks and transactions', parts.chain));
  poll(signal, async () => {
    const d = await getAll({
      health: '/v1/health', nodes: '/v1/nodes', supply: '/v1/chain/supply', params: '/v1/chain/params',
      validators: '/v1/chain/validators', proposals: '/v1/chain/proposals',
    }, signal);
    const health = d.health.value || {};
    fill(parts.nodes, nodesPart(d, health));
    fill(parts.token, tokenPart(d));
    fill(parts.gov, govPart(d));
    fill(parts.chain, chainPart(health));
    if (d.health.error && d.nodes.error && d.supply.error) live.error(d.health.error);
    else live.polling();
    ready(main);
  });
}

function nodesPart(d, health) {
  if (d.nodes.error) return [failed('The node list', d.nodes.error)];
  const nodes = d.nodes.value || [];
  const online = nodes.filter((n) => n.online);
  const sum = (list, f) => list.reduce((a, n) => a + (f(n) || 0), 0);
  const points = [];
  const unplaced = [];
  let byRegion = 0;
  for (const n of nodes) {
    const at = locate(n);
    if (!at) {
      unplaced.push(n);
      continue;
    }
    if (!declared(n)) byRegion += 1;
    points.push({
      lat: at[0], lon: at[1], online: n.online, href: `/nodes/${enc(n.id)}`,
      title: `${n.gpu_model} ×${n.gpus} · ${n.region || 'no region'} · ${n.online ? 'online' : 'offline'} · ${short(n.id)}`,
    });
  }
  const byModel = new Map();
  for (const n of online) {
    const m = byModel.get(n.gpu_model) || { nodes: 0, gpus: 0, free: 0 };
    m.nodes += 1;
    m.gpus += n.gpus;
    m.free += Math.max(0, n.free_gpus);
    byModel.set(n.gpu_model, m);
  }
  const models = [...byModel.entries()].sort((a, b) => b[1].gpus - a[1].gpus);
  return [
    tiles([
      ['Nodes online', `${int(online.length)} of ${int(nodes.length)}`, 'registered on chain'],
      ['GPUs online', int(sum(online, (n) => n.gpus)), `${int(sum(online, (n) => Math.max(0, n.free_gpus)))} free now`],
      ['Jobs verified', int(sum(nodes, (n) => n.jobs_verified)), `${int(sum(nodes, (n) => n.jobs_failed))} failed`],
      ['Chain', health.chain_id || '—', health.role ? `${health.role} node` : 'via this router'],
    ]),
    h('div', { class: 'overview' },
      h('figure', { class: 'map-fig' },
        worldMap(points, `World map of ${nodes.length} nodes, ${online.length} online`),
        h('figcaption', null,
          h('span', { class: 'key on' }, 'online'), h('span', { class: 'key off' }, 'offline'),
          ' Each node is placed where it declared it is.',
          byRegion ? ` ${byRegion} that declared no coordinates ${byRegion === 1 ? 'is' : 'are'} placed at ${byRegion === 1 ? 'its' : 'their'} region\u2019s usual data-centre city.` : '',
          unplaced.length ? ` ${unplaced.length} with neither coordinates nor a known region ${unplaced.length === 1 ? 'is' : 'are'} not on the map.` : '')),
      h('div', null,
        h('h3', { class: 'first' }, 'GPUs online by model'),
        table('GPUs online by model', ['Model', '#Nodes', '#GPUs', '#Free'],
          models.map(([model, m]) => [model, int(m.nodes), int(m.gpus), int(m.free)]), 'No node is online.'),
        h('h3', null, 'Jobs and placement'),
        unavailable('Jobs per minute', 'The API lists jobs only to their signed consumer and reports no job rate.'),
        unavailable('Placement latency', 'No endpoint reports how long the router takes to place a job.'))),
    h('h3', null, 'Nodes'),
    table('Nodes', ['Node', 'GPU', 'Region', 'State', '#Price / GPU-h', '#Stake', '#Verified', '#Failed', 'Heartbeat'],
      nodes.map((n) => [
        link(`/nodes/${enc(n.id)}`, h('code', { title: n.id }, short(n.id))),
        `${n.gpu_model} ×${n.gpus}`,
        n.region || '—',
        h('span', { class: 'badges' }, n.online ? badge('online') : badge('offline'), n.status !== 'active' ? badge(n.status || 'unknown', 'inactive') : null),
        omni(n.price_per_hour), omni(n.stake), int(n.jobs_verified), int(n.jobs_failed),
        n.online ? ago(n.last_heartbeat) : h('span', { class: 'muted' }, ago(n.last_heartbeat)),
      ]), 'No node has registered yet.'),
  ];
}

const BUCKETS = [
  ['Liquid', 'liquid', 'c-liquid'], ['Vesting', 'vesting', 'c-vesting'], ['Staked', 'staked', 'c-staked'],
  ['Unbonding', 'unbonding', 'c-unbonding'], ['In escrow', 'escrowed', 'c-escrow'],
];
const POOLS = {
  network_rewards: ['Network rewards pool', 'c-rewards'], ecosystem: ['Ecosystem treasury', 'c-eco'],
  buyback: ['Buy-back fund', 'c-buyback'], validator_rewards: ['Validator reward pool', 'c-valpool'],
};

function tokenPart(d) {
  if (d.supply.error) return [failed('The supply', d.supply.error)];
  const sp = d.supply.value;
  const pools = sp.pools || {};
  const rows = BUCKETS.map(([name, key, cls]) => [name, sp[key] || 0, cls]);
  for (const [key, amount] of Object.entries(pools).sort()) {
    const [name, cls] = POOLS[key] || [`Pool ${key}`, 'c-pool'];
    rows.push([name, amount, cls]);
  }
  rows.push(['Burned', sp.burned || 0, 'c-burned']);
  const params = d.params.value;
  return [
    tiles([
      ['Total supply', omniShort(sp.total), 'minted, burned included'],
      ['Burned', omniShort(sp.burned), `${pctText(sp.burned, sp.total)} of the total`],
      ['Staked', omniShort(sp.staked), `${pctText(sp.staked, sp.total)} of the total`],
      ['Validator reward pool', omniShort(pools.validator_rewards || 0), 'undistributed fee share'],
    ]),
    h('h3', null, 'Supply breakdown'),
    bar(rows, 'Supply breakdown'),
    h('div', { class: 'cols' },
      h('div', null,
        table('Supply breakdown', ['', 'Bucket', '#OMNI', '#Share'],
          rows.map(([name, amount, cls]) => [swatch(cls), name, omniNum(amount), pctText(amount, sp.total)]), '', true)),
      h('div', null,
        h('h3', { class: 'first' }, 'Validators'),
        d.validators.error ? failed('The validator set', d.validators.error)
          : table('Validators', ['Validator', '#Stake', '#Voting power', 'State'],
            d.validators.value.map((v) => [
              link(`/accounts/${enc(v.address)}`, h('code', { title: v.address }, short(v.address))),
              omni(v.stake), int(v.power), v.jailed ? badge('jailed', 'failed') : badge('active', 'online'),
            ]), 'No validators.'),
        unavailable('Realised APY', 'The API reports stakes and the undistributed reward pool, but no history of rewards paid to validators, from which a realised yield would follow.'),
        h('h3', null, 'Economics'),
        params ? dl([
          ['Burned from every payment', bp(params.burn_bp)],
          ['Protocol fee', bp(params.fee_bp)],
          ['Validators\u2019 share of fees', bp(params.validator_fee_share_bp)],
          ['Buy-back share of fees', bp(params.buyback_fee_share_bp)],
          ['Network reward per GPU-hour', omni(params.reward_per_gpu_hour)],
          ['Minimum node stake', omni(params.min_node_stake)],
          ['Minimum validator stake', omni(params.min_validator_stake)],
          ['Unbonding period', seconds(params.unbonding_seconds)],
        ]) : failed('The chain parameters', d.params.error))),
  ];
}

function govPart(d) {
  if (d.proposals.error) return [failed('The proposals', d.proposals.error)];
  const params = d.params.value;
  const sp = d.supply.value;
  const props = [...d.proposals.value].sort((a, b) => b.id - a.id);
  const rules = params ? h('p', { class: 'muted' },
    `A proposal passes when at least ${bp(params.gov_quorum_bp)} of all stake votes and more than ${bp(params.gov_threshold_bp)} of yes-or-no votes are yes; voting lasts ${int(params.gov_voting_blocks)} blocks.`) : null;
  if (!props.length) return [rules, h('p', null, 'No proposals yet.')];
  return [rules, h('ol', { class: 'proposals' }, props.map((p) => proposal(p, params, sp)))];
}

function proposal(p, params, sp) {
  const cast = p.yes + p.no + p.abstain;
  const tally = [['Yes', p.yes, 'c-yes'], ['No', p.no, 'c-no'], ['Abstain', p.abstain, 'c-abstain']];
  const changes = Object.entries(p.params || {}).map(([k, v]) => h('li', null, h('code', null, k), ': ',
    params && k in params ? [h('code', null, JSON.stringify(params[k])), ' → '] : null, h('code', null, JSON.stringify(v))));
  let turnout = null;
  if (p.status === 'voting' && sp && params) {
    const stake = sp.staked + sp.unbonding;
    turnout = h('p', { class: 'muted' }, `Turnout so far ${pctText(cast, stake)} of stake (quorum ${bp(params.gov_quorum_bp)}); yes ${pctText(p.yes, p.yes + p.no)} of yes-or-no (threshold ${bp(params.gov_threshold_bp)}).`);
  }
  return h('li', { class: 'proposal' },
    h('h3', null, `#${p.id} ${p.title}`, ' ', badge(p.status)),
    p.description ? h('p', null, p.description) : null,
    changes.length ? h('ul', { class: 'changes' }, changes) : null,
    p.spend ? h('p', null, `Spend ${omni(p.spend.amount)} from the treasury to `, link(`/accounts/${enc(p.spend.to)}`, h('code', null, short(p.spend.to)))) : null,
    cast ? bar(tally, `Tally: yes ${omni(p.yes)}, no ${omni(p.no)}, abstain ${omni(p.abstain)}`) : h('p', { class: 'muted' }, 'No votes yet.'),
    h('ul', { class: 'legend' }, tally.map(([name, v, cls]) => h('li', null, swatch(cls), `${name} ${omni(v)}`, cast ? ` (${pctText(v, cast)})` : ''))),
    turnout,
    dl([
      ['Proposer', link(`/accounts/${enc(p.proposer)}`, h('code', { title: p.proposer }, short(p.proposer)))],
      ['Submitted at height', int(p.submit_height)],
      ['Voting ends at height', int(p.voting_end_height)],
      ['Applied at height', p.applied_height ? int(p.applied_height) : null],
      ['Result', p.result || null],
    ], 'facts inline'));
}

function chainPart(health) {
  const rpc = health.chain_rpc;
  return [
    unavailable('Recent blocks and transactions', 'The REST API has no block or transaction listing yet.'),
    rpc && /^https?:\/\//.test(rpc)
      ? h('p', null, 'The chain\u2019s CometBFT RPC serves them meanwhile: ',
        h('a', { href: `${rpc.replace(/\/$/, '')}/blockchain`, rel: 'noreferrer' }, 'latest blocks'), ' · ',
        h('a', { href: `${rpc.replace(/\/$/, '')}/status`, rel: 'noreferrer' }, 'chain status'), '.')
      : null,
  ];
}
