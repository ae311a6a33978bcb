// The network page (/): nodes and GPUs, this router's recent work, the token, blocks and
// transactions, and governance.
import { getAll, enc, txURL } from './api.js';
import {
  h, fill, link, section, table, dl, tiles, omni, omniNum, omniShort, int, bp, pctText, short, badge, failed, bar, swatch, ago, seconds,
  decimal, millis,
} from './dom.js';
import { worldMap, locate, declared } from './map.js';
import { poll, live, title, ready } from './page.js';

export function networkPage(main, _arg, signal) {
  title('Network');
  const parts = { nodes: h('div'), token: h('div'), chain: h('div'), gov: h('div') };
  main.append(
    h('h1', null, 'Network'),
    section('nodes-h', 'Nodes and GPUs', parts.nodes),
    section('chain-h', 'Blocks and transactions', parts.chain),
    section('token-h', 'Token', parts.token),
    section('gov-h', 'Governance', parts.gov));
  poll(signal, async () => {
    const d = await getAll({
      health: '/v1/health', nodes: '/v1/nodes', supply: '/v1/chain/supply', params: '/v1/chain/params', rewards: '/v1/chain/validator-rewards',
      validators: '/v1/chain/validators', proposals: '/v1/chain/proposals',
      blocks: `/v1/chain/blocks?limit=${BLOCKS}`, stats: '/v1/stats',
    }, signal);
    const health = d.health.value || {};
    const proposers = await proposerAccounts(d.validators.value);
    if (signal.aborted) return;
    fill(parts.nodes, nodesPart(d, health));
    fill(parts.token, tokenPart(d));
    fill(parts.gov, govPart(d));
    fill(parts.chain, chainPart(d, health, proposers));
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
          models.map(([model, m]) => [model, int(m.nodes), int(m.gpus), int(m.free)]), 'No node is online.'))),
    h('h3', null, 'Jobs on this router'),
    statsPart(d.stats),
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
        realisedAPY(d.rewards),
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

const YEAR_SECONDS = 365 * 24 * 3600;

// realisedAPY annualises what the validator reward pool paid over the chain's recent
// window (GET /v1/chain/validator-rewards) against the stake bonded now.
function realisedAPY(rewards) {
  if (rewards.error) return failed('The validators\u2019 rewards', rewards.error);
  const w = rewards.value;
  const span = w.to_unix - w.from_unix;
  const blocks = w.to_height - w.from_height + 1;
  const how = `Rewards paid to validators over the last ${int(blocks)} blocks (heights ${int(w.from_height)}\u2013${int(w.to_height)}, ${seconds(span)}), ` +
    `${omni(w.paid)} on ${omni(w.bonded)} bonded, annualised: paid \u00f7 bonded \u00d7 (one year \u00f7 ${seconds(span)}).`;
  if (!(w.bonded > 0) || !(span > 0)) {
    return h('p', { class: 'apy' }, h('strong', null, 'Realised APY: '), '\u2014 (no bonded stake or no time elapsed yet). ', how);
  }
  const apy = (100 * w.paid * YEAR_SECONDS) / (w.bonded * span);
  return h('p', { class: 'apy' }, h('strong', null, 'Realised APY: '), h('span', { class: 'apy-value' }, apy > 0 && apy < 0.01 ? '<0.01%' : `${decimal(apy)}%`), '. ', how);
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

// statsPart shows this router's recent work (/v1/stats). Each router reports the jobs it
// holds, so the figures are this router's, not the network's.
function statsPart(stats) {
  if (stats.error) {
    if (stats.error.status === 503) {
      return h('p', { class: 'na' }, h('strong', null, 'Jobs per minute and placement latency: '),
        'only a router reports them, from the jobs it holds, and this server is not one (its /v1/stats answers 503). Open the explorer on a router to see them.');
    }
    return failed('This router\u2019s stats', stats.error);
  }
  const st = stats.value || {};
  const span = seconds(st.window_seconds);
  const placed = st.placements_in_window > 0;
  return [
    tiles([
      ['Settled per minute', decimal(st.settled_per_minute), `${int(st.settled_in_window)} settled in the last ${span}`],
      ['Waiting', int(st.waiting), 'jobs not placed on a node yet'],
      ['Running', int(st.running), 'jobs on nodes now'],
      ['Placement p50 / p90', placed ? pair(millis(st.placement_p50_ms), millis(st.placement_p90_ms)) : '—',
        placed ? `escrow to node, ${int(st.placements_in_window)} placed in ${span}` : `no job placed in the last ${span}`],
    ]),
    h('p', { class: 'muted small' }, 'Figures from this router (', h('code', { title: st.router }, short(st.router)),
      ') alone: each router counts the jobs it holds.'),
  ];
}

// pair joins two durations, naming a unit they share once: "6.2 / 9 ms".
function pair(a, b) {
  const unit = b.slice(b.lastIndexOf(' '));
  return a.endsWith(unit) ? `${a.slice(0, -unit.length)} / ${b}` : `${a} / ${b}`;
}

// BLOCKS is how many of the latest blocks the page shows; TXS how many transactions.
const BLOCKS = 20;
const TXS = 20;

// proposerAccounts maps a block's proposer (a CometBFT consensus address: the first 20
// bytes of the SHA-256 of the validator's consensus key, in hex) to the validator's account.
// Browsers hash only in secure contexts (https or localhost); elsewhere the map is empty.
const hashed = new Map(); // pub_key (base64) → consensus address
async function proposerAccounts(validators) {
  const out = new Map();
  if (!Array.isArray(validators) || !(globalThis.crypto && crypto.subtle)) return out;
  for (const v of validators) {
    if (typeof v.pub_key !== 'string') continue;
    let addr = hashed.get(v.pub_key);
    if (!addr) {
      try {
        const key = Uint8Array.from(atob(v.pub_key), (c) => c.charCodeAt(0));
        const sum = new Uint8Array(await crypto.subtle.digest('SHA-256', key));
        addr = [...sum.slice(0, 20)].map((b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
        hashed.set(v.pub_key, addr);
      } catch {
        continue;
      }
    }
    out.set(addr, v.address);
  }
  return out;
}

// kinds counts a block's transactions by kind, in the order they first appear.
function kinds(txs) {
  const n = new Map();
  for (const tx of txs || []) n.set(tx.kind, (n.get(tx.kind) || 0) + 1);
  return [...n.entries()];
}

const kindBadge = (kind, count = 1) => h('span', { class: 'badge tx-kind', title: count > 1 ? `${count} ${kind} transactions` : null },
  count > 1 ? `${kind} ×${count}` : kind);

function proposer(addr, proposers) {
  const acct = proposers.get(addr);
  if (acct) return link(`/accounts/${enc(acct)}`, h('code', { title: `validator ${acct} (consensus address ${addr})` }, short(acct)));
  return h('code', { title: addr }, short(addr));
}

function txResult(tx) {
  return tx.code === 0 ? badge('ok', 'settled') : badge(`failed, code ${tx.code}`, 'failed');
}

function chainPart(d, health, proposers) {
  const rpc = health.chain_rpc;
  const rpcLinks = rpc && /^https?:\/\//.test(rpc)
    ? h('p', null, 'The chain\u2019s CometBFT RPC serves them: ',
      h('a', { href: `${rpc.replace(/\/$/, '')}/blockchain`, rel: 'noreferrer' }, 'latest blocks'), ' · ',
      h('a', { href: `${rpc.replace(/\/$/, '')}/status`, rel: 'noreferrer' }, 'chain status'), '.')
    : null;
  if (d.blocks.error) {
    if (d.blocks.error.status === 503) {
      return [h('p', { class: 'na' }, h('strong', null, 'Recent blocks and transactions: '),
        'this server reads no chain RPC, so it lists no blocks (its /v1/chain/blocks answers 503).'), rpcLinks];
    }
    return [failed('The recent blocks', d.blocks.error), rpcLinks];
  }
  const blocks = d.blocks.value || [];
  const now = Date.now();
  const txs = [];
  for (const b of blocks) {
    for (const tx of b.txs || []) if (txs.length < TXS) txs.push([tx, b.height]);
  }
  return [
    h('h3', { class: 'first' }, 'Recent blocks'),
    table('Recent blocks', ['#Height', 'Age', '#Txs', 'Kinds', 'Proposer'], blocks.map((b) => [
      int(b.height),
      h('span', { class: 'nowrap', title: b.time }, ago(b.time, now)),
      int((b.txs || []).length),
      (b.txs || []).length ? h('span', { class: 'badges wrap-badges' }, kinds(b.txs).map(([k, n]) => kindBadge(k, n))) : h('span', { class: 'muted' }, 'empty'),
      proposer(b.proposer, proposers),
    ]), 'The chain has no blocks yet.', true),
    h('h3', null, 'Recent transactions'),
    table('Recent transactions', ['Kind', 'Signer', 'Result', '#Block', 'Hash'], txs.map(([tx, height]) => {
      const url = txURL(health, tx.hash);
      const hash = h('code', { title: tx.hash }, short(tx.hash));
      return [
        kindBadge(tx.kind),
        tx.signer ? link(`/accounts/${enc(tx.signer)}`, h('code', { title: tx.signer }, short(tx.signer))) : h('span', { class: 'muted' }, '—'),
        txResult(tx),
        int(height),
        url ? h('a', { href: url, rel: 'noreferrer' }, hash) : hash,
      ];
    }), `No transactions in the last ${blocks.length} blocks.`, true),
    h('p', { class: 'muted small' },
      `The latest ${blocks.length} blocks, newest first, and the newest ${txs.length} transactions in them. `,
      txURL(health, '0'.repeat(64)) ? 'A hash opens the transaction in the chain\u2019s CometBFT RPC.' : 'This server names no chain RPC to open a transaction in.'),
  ];
}
