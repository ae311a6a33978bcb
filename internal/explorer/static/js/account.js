// An account's page (/accounts/{address}): balances, vesting, unbonding, and its roles.
import { getAll, enc } from './api.js';
import { h, fill, link, section, dl, table, omni, int, short, badge, unavailable, failed } from './dom.js';
import { poll, live, title, ready } from './page.js';

export function accountPage(main, addr, signal) {
  title(`Account ${short(addr)}`);
  const body = h('div');
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('/', 'Network'), ' › Account'), body);
  poll(signal, async () => {
    const d = await getAll({
      account: `/v1/chain/accounts/${enc(addr)}`, unbonding: `/v1/chain/unbonding/${enc(addr)}`,
      nodes: '/v1/nodes', validators: '/v1/chain/validators',
    }, signal);
    fill(body, accountView(addr, d));
    if (d.account.error) live.error(d.account.error);
    else live.polling();
    ready(main);
  });
}

function accountView(addr, d) {
  const heading = h('h1', { class: 'id-title' }, 'Account ', h('code', null, addr));
  if (d.account.error) return [heading, failed('The account', d.account.error)];
  const a = d.account.value;
  const isNode = (d.nodes.value || []).some((n) => n.id === addr);
  const val = (d.validators.value || []).find((v) => v.address === addr);
  const roles = [];
  if (isNode) roles.push(h('li', null, 'Runs a node: ', link(`/nodes/${enc(addr)}`, 'node page')));
  if (val) roles.push(h('li', null, `Validator with ${omni(val.stake)} staked `, val.jailed ? badge('jailed', 'failed') : badge('active', 'online')));
  const v = a.vesting;
  return [
    heading,
    dl([
      ['Balance', omni(a.balance)],
      ['Spendable', omni(a.spendable)],
      ['Locked (vesting)', a.locked ? omni(a.locked) : null],
      ['Bonded (staked or unbonding)', omni(a.bonded)],
      ['Sequence', int(a.seq)],
      ['Vesting', v ? `${omni(v.total)}: cliff ${new Date(v.cliff_unix * 1000).toISOString().slice(0, 10)}, fully vested ${new Date(v.end_unix * 1000).toISOString().slice(0, 10)}` : null],
    ]),
    roles.length ? h('ul', { class: 'plain' }, roles) : null,
    section('unbond-h', 'Unbonding',
      d.unbonding.error ? failed('Unbonding', d.unbonding.error)
        : table('Unbonding', ['Role', '#Amount', 'Returns'], d.unbonding.value.map((u) => [
          u.role, omni(u.amount), new Date(u.mature_unix * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC',
        ]), 'Nothing is unbonding.')),
    section('history-h', 'History',
      unavailable('Jobs and transfers', 'The API lists an account\u2019s jobs only to a request that account signed, and has no transaction history.')),
  ];
}
