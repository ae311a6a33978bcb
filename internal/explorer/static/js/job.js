// A job's page (/jobs/{id}): its states with their reasons, node, verification and
// payment, followed live through the job's event stream until it is final.
import { get, enc, txURL, APIError } from './api.js';
import {
  h, fill, link, section, table, dl, omni, int, bp, millis, short, badge, failed, bar, swatch, when, pctText,
} from './dom.js';
import { poll, live, title, ready, isFinal } from './page.js';

const STEPS = ['queued', 'assigned', 'running', 'computed', 'settled'];

// KINDS says what each workload kind (api.Workload.Kind) runs.
const KINDS = { tensor: 'a tensor kernel', container: 'a container image' };

export function jobPage(main, id, signal) {
  title(`Job ${id}`);
  const body = h('div');
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('/', 'Network'), ' › Job'), body);
  let health = {};
  const render = (job) => {
    fill(body, jobView(job, health));
    ready(main);
  };
  (async () => {
    let job;
    try {
      [job, health] = await Promise.all([get(`/v1/jobs/${enc(id)}`, signal), get('/v1/health', signal).catch(() => ({}))]);
    } catch (err) {
      if (err.name === 'AbortError') return;
      fill(body, (err instanceof APIError && err.status === 404
        ? [h('h1', null, 'Job not found'), h('p', null, 'This network has no job ', h('code', null, id), '.')]
        : [h('h1', null, 'Job'), failed('The job', err)]));
      live.error(err);
      ready(main);
      return;
    }
    render(job);
    if (isFinal(job.status)) {
      live.final(job.status);
      return;
    }
    follow(id, signal, (j) => {
      main.dataset.updates = 'events'; // the browser test looks for this
      render(j);
    }, render);
  })();
}

// follow streams the job's events to onEvent; should the stream fail, it polls instead
// (to onPoll).
function follow(id, signal, onEvent, onPoll) {
  if (signal.aborted) return;
  const es = new EventSource(`/v1/jobs/${enc(id)}/events`);
  signal.addEventListener('abort', () => es.close());
  live.streaming();
  es.addEventListener('job', (e) => {
    const job = JSON.parse(e.data);
    onEvent(job);
    if (isFinal(job.status)) {
      es.close();
      live.final(job.status);
    } else {
      live.streaming();
    }
  });
  es.addEventListener('error', (e) => {
    es.close();
    if (signal.aborted) return;
    if (e.data) live.error(JSON.parse(e.data).error);
    poll(signal, async () => {
      const job = await get(`/v1/jobs/${enc(id)}`, signal);
      onPoll(job);
      if (isFinal(job.status)) {
        live.final(job.status);
        return false;
      }
      live.polling();
      return true;
    }, 3000);
  });
}

function jobView(job, health) {
  const events = job.events || [];
  return [
    h('h1', { class: 'id-title' }, 'Job ', h('code', null, job.id), ' ', badge(job.status)),
    dl([
      ['Status', job.status],
      ['Submitted', events.length ? when(events[0].time) : null],
      ['Consumer', job.consumer ? link(`/accounts/${enc(job.consumer)}`, h('code', null, job.consumer)) : null],
      ['Node', job.node ? link(`/nodes/${enc(job.node)}`, h('code', null, job.node)) : null],
      ['Kind', job.kind ? [job.kind, KINDS[job.kind] ? h('span', { class: 'muted' }, ` · ${KINDS[job.kind]}`) : null] : null],
      ['Verification', job.verification ? [job.verification, job.replicas && job.replicas.length ? h('span', { class: 'muted' }, ` · ${job.replicas.length} replicas`) : null] : null],
      ['Attempts', job.attempts ? int(job.attempts) : null],
      ['Error', job.error || null],
    ], 'facts two'),
    steps(job.status, events),
    h('div', { class: 'cols' },
      section('payment-h', 'Payment', payment(job, health)),
      h('div', null,
        section('verify-h', 'Verification', verification(job, events)),
        section('placement-h', 'Placement', placement(job)))),
    section('timeline-h', 'Timeline', timeline(events)),
  ];
}

// steps shows how far the job has come along the path to settlement.
function steps(status, events) {
  const seen = new Set(events.map((e) => e.stage));
  const at = STEPS.indexOf(status);
  const items = STEPS.map((step, i) => {
    let state = 'todo';
    if (at >= 0) state = i < at || step === 'settled' && i === at ? 'done' : i === at ? 'now' : 'todo';
    else if (seen.has(step)) state = 'done';
    return h('li', { class: state, 'aria-current': state === 'now' ? 'step' : null }, step.replace('_', ' '));
  });
  if (status === 'awaiting_inputs') items.unshift(h('li', { class: 'now', 'aria-current': 'step' }, 'awaiting inputs'));
  if (at < 0 && status !== 'awaiting_inputs') items.push(h('li', { class: 'stop', 'aria-current': 'step' }, status));
  return h('ol', { class: 'steps', 'aria-label': 'Progress' }, items);
}

function timeline(events) {
  if (!events.length) {
    return h('p', { class: 'muted' }, 'No events: this server reads the job from the chain only (the router that ran it records each step).');
  }
  const start = Date.parse(events[0].time);
  return h('ol', { class: 'timeline' }, events.map((e) => {
    const t = Date.parse(e.time);
    return h('li', null,
      h('div', { class: 'when' }, when(e.time, true), h('span', { class: 'offset' }, ` +${((t - start) / 1000).toFixed(2)} s`)),
      h('div', null, badge(e.stage, stageKind(e.stage)), ' ', e.message));
  }));
}

function stageKind(stage) {
  if (['settled', 'attested', 'decided'].includes(stage)) return 'settled';
  if (['failed', 'refunded', 'stopped'].includes(stage)) return 'failed';
  if (['retry', 'taken_over', 'resumed', 'awaiting_inputs'].includes(stage)) return 'warn';
  return 'step';
}

function placement(job) {
  const out = [job.node ? dl([['Node', link(`/nodes/${enc(job.node)}`, h('code', { title: job.node }, short(job.node)))]]) : h('p', { class: 'muted' }, 'Not placed yet.')];
  const sc = job.scores;
  if (sc) {
    out.push(h('h3', null, `Score ${bp(sc.total)}`), h('ul', { class: 'scores' },
      [['Compute', sc.compute], ['Latency', sc.latency], ['Reliability', sc.reliability], ['Price', sc.price]].map(([name, v]) =>
        h('li', null, h('span', null, name), h('span', { class: 'meter', role: 'img', 'aria-label': `${name} ${bp(v)}` },
          h('span', { 'width%': v / 100 })), h('span', { class: 'num' }, bp(v))))));
  }
  return out;
}

function verification(job, events) {
  const verdicts = events.filter((e) => e.stage === 'attested' || e.stage === 'decided' || e.stage === 'verifying');
  const out = [dl([
    ['Verified', job.verified ? badge('verified', 'settled') : isFinal(job.status) ? badge('not verified', 'failed') : 'not yet'],
    ['Verdict', job.verdict || null],
    ['Result digest', job.result_digest ? h('code', { class: 'wrap' }, job.result_digest) : null],
  ])];
  if (verdicts.length) out.push(h('ul', { class: 'verdicts' }, verdicts.map((e) => h('li', null, when(e.time), ' ', e.message))));
  if (job.replicas && job.replicas.length) out.push(h('h3', null, 'Replicas'), replicas(job, events));
  return out;
}

// replicas shows each run of a redundant job: its node, the digest it revealed (the chain
// shows digests once every replica has sealed and revealed), what it was paid from the
// budget and rewarded from the pool, and whether
// it agreed with the job's result digest.
function replicas(job, events) {
  const final = isFinal(job.status);
  const allSealed = events.some((e) => e.stage === 'revealing');
  const rows = job.replicas.map((r) => {
    let digest;
    if (r.result_digest) digest = h('code', { title: r.result_digest }, shortDigest(r.result_digest));
    else if (!final && allSealed) digest = h('span', { class: 'muted' }, 'sealed, not revealed yet');
    else digest = h('span', { class: 'muted', title: final ? 'never revealed' : 'not revealed yet' }, '—');
    return [
      link(`/nodes/${enc(r.node)}`, h('code', { title: r.node }, short(r.node))),
      replicaOutcome(job, r, final),
      digest,
      r.paid ? omni(r.paid) : h('span', { class: 'muted' }, '—'),
      r.reward ? omni(r.reward) : h('span', { class: 'muted' }, '—'),
    ];
  });
  return [
    table('Replicas', ['Node', 'Outcome', 'Revealed digest', '#Paid', '#Network reward'], rows, '', true),
    h('p', { class: 'muted small' }, job.result_digest
      ? 'A replica agreed when its digest is the job’s result digest; the chain pays the replicas that agreed.'
      : 'Each replica seals its result first; the digests show once every replica has sealed and revealed, and the chain pays those that agree.'),
  ];
}

// shortDigest abbreviates a digest after its algorithm ("sha256:7de304ef…1e9a" → "7de304ef…1e9a").
function shortDigest(d) {
  const hex = d.slice(d.indexOf(':') + 1);
  return hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : hex;
}

// replicaOutcome is a replica's badge: outvoted when the digest it revealed is not the
// job's, not paid when the job settled without paying it (it revealed too late, or not at
// all), agreed when its digest is the job's; nothing to say before the chain decides.
function replicaOutcome(job, r, final) {
  const decided = Boolean(job.result_digest);
  if (decided && r.result_digest && r.result_digest !== job.result_digest) return badge('outvoted');
  if (job.payment && !r.paid) return badge('not paid', 'unpaid');
  if (decided && r.result_digest === job.result_digest) return badge('agreed');
  return h('span', { class: 'muted' }, final ? '—' : 'pending');
}

// txOrder sorts a job's transactions in the order its life produces them.
function txOrder(step) {
  const i = ['create', 'assign', 'result', 'reveal', 'attest', 'settle', 'release'].findIndex((k) => step.startsWith(k));
  return i < 0 ? 99 : i;
}

function payment(job, health) {
  const out = [];
  const p = job.payment;
  if (!p) {
    out.push(h('p', { class: 'muted' }, isFinal(job.status) ? 'The chain recorded no settlement for this job.' : 'The budget stays in escrow until the job settles.'));
  } else {
    const split = [
      ['Paid to the node', p.paid_to_node, 'c-staked'], ['Burned', p.burned, 'c-burned'], ['Protocol fee', p.protocol_fee, 'c-eco'],
    ];
    out.push(
      dl([
        ['Budget (escrow)', omni(p.budget)],
        ['Cost', `${omni(p.cost)} for ${millis(p.billed_millis)} of GPU time`],
        ['Refunded', `${omni(p.refunded)} to the consumer`],
        ['Network reward', p.network_reward ? `${omni(p.network_reward)} to the node from the rewards pool, on top of the budget` : null],
      ]),
      h('h3', null, 'How the cost was divided'),
      bar(split, 'How the cost was divided'),
      table('How the budget was divided', ['', 'Share', '#Amount', '#Of cost'],
        [...split, ['Refunded to the consumer', p.refunded, 'c-liquid']].map(([name, v, cls], i) =>
          [swatch(cls), name, omni(v), i < split.length ? pctText(v, p.cost) : '—']), '', true));
  }
  const txs = Object.entries(job.txs || {}).sort(([a], [b]) => txOrder(a) - txOrder(b) || a.localeCompare(b));
  out.push(h('h3', null, 'Transactions'));
  if (!txs.length) {
    out.push(h('p', { class: 'muted' }, 'No transaction hashes recorded on this server.'));
  } else {
    out.push(table('Transactions', ['Step', 'Transaction'], txs.map(([step, hash]) => {
      const url = txURL(health, hash);
      const code = h('code', { class: 'wrap' }, hash);
      return [step, url ? h('a', { href: url, rel: 'noreferrer' }, code) : code];
    }), '', true));
    if (!txURL(health, txs[0][1])) out.push(h('p', { class: 'muted' }, 'Transaction pages are not available yet: the REST API has no transaction lookup.'));
    else out.push(h('p', { class: 'muted' }, 'Links open the transaction in the chain\u2019s CometBFT RPC: the REST API has no transaction lookup yet.'));
  }
  return out;
}
