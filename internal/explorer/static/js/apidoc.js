// The API reference (/docs/api): the server's OpenAPI document, /v1/openapi.json,
// rendered readably. Operations are grouped by tag, each with its parameters, request
// body, responses and their schemas ($refs resolved, nested objects expanded), and its
// security requirement, explained from components.securitySchemes. Everything comes
// from the document: a route added to the API appears here without a change to this file.
import { get } from './api.js';
import { h, link } from './dom.js';
import { live, title, ready } from './page.js';

const SPEC = '/v1/openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const MAX_DEPTH = 8; // nested schemas shown inside one another, at most

export function apiPage(main, _arg, signal) {
  title('API reference');
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link('/', 'Network'), ' › API reference'));
  get(SPEC, signal).then((doc) => {
    if (signal.aborted) return;
    main.append(...render(doc).flat(Infinity).filter(Boolean));
    live.note(`OpenAPI ${doc.openapi || '?'} · ${(doc.info && doc.info.title) || 'API'} ${(doc.info && doc.info.version) || ''}`.trim());
    ready(main);
    if (location.hash) {
      let id = location.hash.slice(1);
      try {
        id = decodeURIComponent(id);
      } catch {
        // keep it as written
      }
      const target = document.getElementById(id);
      if (target) target.scrollIntoView();
    }
  }, (err) => {
    if (err.name === 'AbortError') return;
    main.append(h('h1', null, 'API reference'), h('p', { class: 'error', role: 'status' }, `The API description (${SPEC}) could not be loaded: ${err.message || err}`));
    live.error(err);
    ready(main);
  });
}

// anchor turns a name into an id fragment.
const anchor = (prefix, name) => `${prefix}-${String(name).replace(/[^A-Za-z0-9_-]+/g, '-')}`;

// deref follows a local JSON pointer (#/components/…) in doc; null when it leads nowhere.
function deref(doc, ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return null;
  let cur = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!cur || typeof cur !== 'object' || !Object.hasOwn(cur, key)) return null;
    cur = cur[key];
  }
  return cur;
}

// resolve follows $refs (of parameters, responses, bodies) to the object they name.
function resolve(doc, obj) {
  for (let i = 0; obj && obj.$ref && i < 16; i++) obj = deref(doc, obj.$ref);
  return obj || {};
}

const SCHEMA_REF = '#/components/schemas/';
const schemaName = (ref) => (typeof ref === 'string' && ref.startsWith(SCHEMA_REF) ? ref.slice(SCHEMA_REF.length) : null);

// operations lists the document's operations in its order: {method, path, op, params, id}.
function operations(doc) {
  const out = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    const pathItem = resolve(doc, item);
    for (const method of METHODS) {
      const op = pathItem[method];
      if (!op) continue;
      // Path-level parameters apply unless the operation redefines one (same name and in).
      const own = (op.parameters || []).map((p) => resolve(doc, p));
      const inherited = (pathItem.parameters || []).map((p) => resolve(doc, p))
        .filter((p) => !own.some((o) => o.name === p.name && o.in === p.in));
      out.push({
        method, path, op, params: [...inherited, ...own],
        id: anchor('op', op.operationId || `${method}-${path}`),
        route: `${method.toUpperCase()} ${path}`,
      });
    }
  }
  return out;
}

function render(doc) {
  const info = doc.info || {};
  const ops = operations(doc);
  const byRoute = new Map(ops.map((o) => [o.route, o]));
  const ctx = { doc, byRoute };
  const tags = [];
  const byTag = new Map();
  const tagInfo = new Map((doc.tags || []).map((t) => [t.name, t]));
  for (const t of doc.tags || []) {
    byTag.set(t.name, []);
    tags.push(t.name);
  }
  for (const o of ops) {
    const tag = (o.op.tags && o.op.tags[0]) || 'other';
    if (!byTag.has(tag)) {
      byTag.set(tag, []);
      tags.push(tag);
    }
    byTag.get(tag).push(o);
  }
  const shown = tags.filter((t) => byTag.get(t).length);
  const schemes = (doc.components && doc.components.securitySchemes) || {};
  const schemas = (doc.components && doc.components.schemas) || {};
  const servers = (doc.servers || []).map((s) => s.url).filter(Boolean);

  return [
    h('h1', null, info.title || 'API reference', info.version ? h('span', { class: 'muted version' }, ` ${info.version}`) : null),
    h('section', { class: 'card', 'aria-labelledby': 'about-h' },
      h('h2', { id: 'about-h', class: 'visually-hidden' }, 'About this API'),
      prose(info.description, ctx),
      h('p', { class: 'muted' },
        `${ops.length} operations, described by OpenAPI ${doc.openapi || '?'} at `, h('a', { href: SPEC }, h('code', null, SPEC)),
        servers.length ? ['; base URL ', servers.map((u, i) => [i ? ', ' : '', h('code', null, u)])] : null,
        '. Paths are relative to this server.')),
    h('nav', { class: 'card toc', 'aria-labelledby': 'toc-h' },
      h('h2', { id: 'toc-h' }, 'Contents'),
      h('div', { class: 'toc-cols' },
        shown.map((tag) => h('div', null,
          h('h3', null, h('a', { href: `#${anchor('tag', tag)}` }, tag)),
          h('ol', null, byTag.get(tag).map((o) => h('li', null,
            h('a', { href: `#${o.id}` }, verb(o.method), ' ', h('code', { class: 'path' }, o.path)),
            o.op.summary ? h('span', { class: 'muted' }, ` ${o.op.summary}`) : null))))),
        h('div', null,
          h('h3', null, 'Reference'),
          h('ul', null,
            Object.keys(schemes).length ? h('li', null, h('a', { href: '#auth' }, 'Authentication')) : null,
            h('li', null, h('a', { href: '#schemas' }, `Schemas (${Object.keys(schemas).length})`)))))),
    Object.keys(schemes).length ? securityPart(schemes, ops, ctx) : null,
    shown.map((tag) => h('section', { class: 'tag', id: anchor('tag', tag), 'aria-labelledby': `${anchor('tag', tag)}-h` },
      h('h2', { id: `${anchor('tag', tag)}-h` }, tag),
      tagInfo.get(tag) && tagInfo.get(tag).description ? prose(tagInfo.get(tag).description, ctx) : null,
      byTag.get(tag).map((o) => operation(o, ctx)))),
    h('section', { class: 'card', id: 'schemas', 'aria-labelledby': 'schemas-h' },
      h('h2', { id: 'schemas-h' }, 'Schemas'),
      h('p', { class: 'muted' }, 'The objects the operations take and return. A property marked required is always present; the others may be absent.'),
      Object.entries(schemas).map(([name, schema]) => h('section', { class: 'schema-def', id: anchor('schema', name), 'aria-labelledby': `${anchor('schema', name)}-h` },
        h('h3', { id: `${anchor('schema', name)}-h` }, h('code', null, name), ' ', h('span', { class: 'muted ptype' }, typeLabel(schema, ctx, false))),
        prose(schema.description, ctx),
        facts(schema),
        fields(schema, ctx, new Set([name]), 0, false)))),
  ];
}

// securityPart explains each security scheme: where its credentials go and how they are
// made, and which operations require it.
function securityPart(schemes, ops, ctx) {
  return h('section', { class: 'card', id: 'auth', 'aria-labelledby': 'auth-h' },
    h('h2', { id: 'auth-h' }, 'Authentication'),
    h('p', null, 'Most operations are open to anyone. Those that read or list what belongs to one account name a security scheme below: the request must carry its credentials.'),
    Object.entries(schemes).map(([name, raw]) => {
      const scheme = resolve(ctx.doc, raw);
      const users = ops.filter((o) => requirements(o.op, ctx.doc).some((req) => Object.hasOwn(req, name)));
      let header = null;
      let rest = scheme.description || '';
      // A description that opens with the header's value ("OmniSig address=…: …") shows
      // it as the header line it is.
      if (scheme.type === 'apiKey' && scheme.in === 'header' && rest.startsWith(`${name} `)) {
        const end = rest.indexOf('": ');
        if (end > 0) {
          header = `${scheme.name}: ${rest.slice(0, end + 1)}`;
          rest = rest.slice(end + 3);
          rest = rest.charAt(0).toUpperCase() + rest.slice(1);
        }
      }
      return h('section', { id: anchor('auth', name), class: 'scheme', 'aria-labelledby': `${anchor('auth', name)}-h` },
        h('h3', { id: `${anchor('auth', name)}-h` }, h('code', null, name), ' ', h('span', { class: 'muted' }, schemeKind(scheme))),
        header ? [h('p', null, 'Send the header:'), h('pre', { class: 'example' }, h('code', null, header))] : null,
        prose(rest, ctx),
        users.length ? h('p', null, 'Required by ', users.map((o, i) => [i ? ', ' : '', h('a', { href: `#${o.id}` }, h('code', null, o.op.operationId || o.route))]), '.') : null);
    }));
}

function schemeKind(s) {
  if (s.type === 'apiKey') return `API key in the ${s.name} ${s.in === 'header' ? 'header' : s.in === 'query' ? 'query parameter' : s.in || ''}`.trim();
  if (s.type === 'http') return `HTTP ${s.scheme || ''} authentication${s.bearerFormat ? ` (${s.bearerFormat})` : ''}`;
  return s.type || '';
}

// requirements is what an operation must satisfy: its own security, else the document's.
const requirements = (op, doc) => op.security || doc.security || [];

const verb = (method) => h('span', { class: ['verb', `v-${method}`] }, method.toUpperCase());

function operation(o, ctx) {
  const { op } = o;
  const reqs = requirements(op, ctx.doc);
  const responses = Object.entries(op.responses || {});
  const body = op.requestBody ? resolve(ctx.doc, op.requestBody) : null;
  return h('article', { class: 'card op', id: o.id, 'aria-labelledby': `${o.id}-h` },
    h('h3', { id: `${o.id}-h`, class: 'op-title' },
      verb(o.method), ' ', h('code', { class: 'path' }, o.path),
      h('a', { class: 'permalink', href: `#${o.id}`, 'aria-label': `Link to ${o.route}` }, '#')),
    h('p', { class: 'op-sum' },
      op.summary ? h('strong', null, op.summary) : null,
      op.operationId ? h('span', { class: 'muted' }, ' · operationId ', h('code', null, op.operationId)) : null,
      op.deprecated ? [' ', h('span', { class: 'badge b-warn' }, 'deprecated')] : null),
    prose(op.description, ctx),
    authLine(reqs, ctx),
    o.params.length ? [h('h4', null, 'Parameters'), h('ul', { class: 'props' }, o.params.map((p) => paramRow(p, ctx)))] : null,
    body ? [
      h('h4', null, 'Request body', body.required ? h('span', { class: 'req' }, 'required') : h('span', { class: 'muted' }, ' (optional)')),
      prose(body.description, ctx),
      content(body.content, ctx, 'all')] : null,
    responses.length ? [h('h4', null, 'Responses'), h('ul', { class: 'responses' }, responses.map(([code, r]) => responseRow(code, r, ctx)))] : null);
}

// authLine says which security schemes an operation requires (alternatives joined by
// "or", schemes required together by "and") and in which header their credentials go.
function authLine(reqs, ctx) {
  const names = [...new Set(reqs.flatMap((req) => Object.keys(req)))];
  if (!names.length) return h('p', { class: 'auth' }, h('span', { class: 'muted' }, 'No authentication: open to anyone.'));
  const headers = [...new Set(names.map((n) => schemeHeader(ctx.doc, n)).filter(Boolean))];
  return h('p', { class: 'auth' },
    h('span', { class: 'badge b-warn' }, 'signed'), ' Requires ',
    reqs.map((req, i) => [i ? ' or ' : '', Object.keys(req).length
      ? Object.keys(req).map((k, j) => [j ? ' and ' : '', h('a', { href: `#${anchor('auth', k)}` }, h('code', null, k))])
      : 'nothing']),
    headers.length ? [', sent in the ', headers.map((n, i) => [i ? ', ' : '', h('code', null, n)]), ' header'] : null, '.');
}

function schemeHeader(doc, name) {
  const s = resolve(doc, ((doc.components || {}).securitySchemes || {})[name]);
  if (s.type === 'apiKey' && s.in === 'header') return s.name;
  if (s.type === 'http') return 'Authorization';
  return null;
}

function paramRow(p, ctx) {
  const schema = p.schema || (p.content && Object.values(p.content)[0] && Object.values(p.content)[0].schema) || {};
  return h('li', { class: 'prop' },
    h('div', { class: 'prop-head' },
      h('code', { class: 'pname' }, p.name || '?'),
      p.required ? h('span', { class: 'req' }, 'required') : null,
      h('span', { class: 'pin' }, p.in || ''),
      h('span', { class: 'ptype' }, typeLabel(schema, ctx, true)),
      constraints(schema)),
    prose(p.description || schema.description, ctx),
    facts(schema),
    p.deprecated ? h('p', null, h('span', { class: 'badge b-warn' }, 'deprecated')) : null);
}

function responseRow(code, raw, ctx) {
  const r = resolve(ctx.doc, raw);
  const ok = /^[23]/.test(code);
  const kind = ok ? 'ok' : code === 'default' ? 'other' : 'err';
  const headers = Object.entries(r.headers || {});
  return h('li', { class: ['response', `r-${kind}`] },
    h('div', { class: 'response-head' },
      h('span', { class: ['rcode', `rc-${kind}`] }, code === 'default' ? 'default' : code),
      h('span', null, prose(r.description, ctx, true))),
    headers.length ? h('ul', { class: 'props' }, headers.map(([name, hd]) => {
      const hdr = resolve(ctx.doc, hd);
      const schema = hdr.schema || {};
      return h('li', { class: 'prop' },
        h('div', { class: 'prop-head' }, h('code', { class: 'pname' }, name), h('span', { class: 'pin' }, 'header'),
          h('span', { class: 'ptype' }, typeLabel(schema, ctx, true)), constraints(schema)),
        prose(hdr.description, ctx), facts(schema));
    })) : null,
    content(r.content, ctx, ok && 'top'));
}

// content shows a body's media types, each with its schema and its fields: open is 'all'
// to unfold every nested named schema (request bodies), 'top' for the schema's own fields
// only (successful responses), false to fold them (errors).
function content(media, ctx, open) {
  const entries = Object.entries(media || {});
  if (!entries.length) return null;
  return entries.map(([type, m]) => {
    const schema = m.schema || {};
    const name = schemaName(schema.$ref);
    const inner = fields(schema, ctx, new Set(name ? [name] : []), 0, open);
    const example = m.example !== undefined ? m.example : schema.example;
    return h('div', { class: 'media' },
      h('p', { class: 'media-head' }, h('code', { class: 'mtype' }, type), ' ', h('span', { class: 'ptype' }, typeLabel(schema, ctx, true)), constraints(schema)),
      schema.$ref ? null : [prose(schema.description, ctx), facts(schema)],
      inner ? (name ? h('details', { class: 'fields', open: Boolean(open) }, h('summary', null, `Fields of ${name}`), inner) : inner) : null,
      example !== undefined ? h('pre', { class: 'example' }, h('code', null, typeof example === 'string' ? example : JSON.stringify(example, null, 2))) : null);
  });
}

// typeLabel names a schema's type: a link for a named schema, "array of …", "map of …".
function typeLabel(schema, ctx, linked) {
  if (!schema || typeof schema !== 'object') return 'any';
  if (schema.$ref) {
    const name = schemaName(schema.$ref);
    if (!name) return h('code', null, schema.$ref);
    return linked ? h('a', { class: 'tref', href: `#${anchor('schema', name)}` }, name) : h('span', { class: 'tref' }, name);
  }
  const label = [];
  for (const [key, sep] of [['oneOf', ' or '], ['anyOf', ' or '], ['allOf', ' and ']]) {
    if (Array.isArray(schema[key])) label.push(schema[key].map((s, i) => [i ? sep : '', typeLabel(s, ctx, linked)]));
  }
  if (!label.length) {
    const type = Array.isArray(schema.type) ? schema.type.join(' or ') : schema.type;
    if (type === 'array' || (!type && schema.items)) {
      label.push('array of ', typeLabel(schema.items, ctx, linked));
    } else if ((type === 'object' || !type) && !schema.properties && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      label.push('map of string to ', typeLabel(schema.additionalProperties, ctx, linked));
    } else {
      label.push(type || (schema.properties ? 'object' : 'any'));
      if (schema.format) label.push(` (${schema.format})`);
    }
  }
  if (schema.nullable) label.push(' or null');
  return label;
}

// constraints lists a schema's limits as small chips.
function constraints(schema) {
  if (!schema || typeof schema !== 'object') return null;
  const out = [];
  const num = (v) => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
  if (schema.minimum !== undefined) out.push(`${schema.exclusiveMinimum === true ? '>' : '≥'} ${num(schema.minimum)}`);
  if (schema.maximum !== undefined) out.push(`${schema.exclusiveMaximum === true ? '<' : '≤'} ${num(schema.maximum)}`);
  if (typeof schema.exclusiveMinimum === 'number') out.push(`> ${num(schema.exclusiveMinimum)}`);
  if (typeof schema.exclusiveMaximum === 'number') out.push(`< ${num(schema.exclusiveMaximum)}`);
  if (schema.minLength !== undefined) out.push(`length ≥ ${num(schema.minLength)}`);
  if (schema.maxLength !== undefined) out.push(`length ≤ ${num(schema.maxLength)}`);
  if (schema.minItems) out.push(`≥ ${num(schema.minItems)} items`);
  if (schema.maxItems !== undefined) out.push(`≤ ${num(schema.maxItems)} items`);
  if (schema.uniqueItems) out.push('unique items');
  if (schema.default !== undefined) out.push(`default ${JSON.stringify(schema.default)}`);
  if (schema.readOnly) out.push('read-only');
  if (schema.writeOnly) out.push('write-only');
  if (schema.additionalProperties === false && schema.properties) out.push('no other fields');
  if (schema.deprecated) out.push('deprecated');
  return out.length ? h('span', { class: 'chips' }, out.map((c) => h('span', { class: 'chip' }, c))) : null;
}

// facts shows a schema's enum and pattern (of its items, for an array of them).
function facts(schema) {
  if (!schema || typeof schema !== 'object') return null;
  const s = schema.enum || schema.pattern || !schema.items ? schema : schema.items;
  const out = [];
  if (Array.isArray(s.enum)) {
    out.push(h('p', { class: 'enum' }, 'One of: ', s.enum.map((v, i) => [i ? ', ' : '', h('code', null, JSON.stringify(v))])));
  }
  if (s.pattern) out.push(h('p', { class: 'enum' }, 'Pattern: ', h('code', null, s.pattern)));
  return out.length ? out : null;
}

// fields lists an object schema's properties, each with its type, required marker,
// constraints, enum and description, and the fields of its own object value nested under
// it: inline when the object is anonymous, under its name when it is a named schema
// (unfolded where openRefs is 'all', or at this level where it is 'top'). seen holds the
// named schemas being expanded, so a schema that contains itself ends in a link.
function fields(schema, ctx, seen, depth, openRefs) {
  if (!schema || typeof schema !== 'object' || depth > MAX_DEPTH) return null;
  if (schema.$ref) {
    const target = deref(ctx.doc, schema.$ref);
    return target ? fields(target, ctx, seen, depth, openRefs) : null;
  }
  const parts = [];
  for (const key of ['allOf', 'oneOf', 'anyOf']) {
    if (!Array.isArray(schema[key])) continue;
    parts.push(h('p', { class: 'muted' }, key === 'allOf' ? 'All of:' : 'One of:'),
      h('ul', { class: 'props' }, schema[key].map((s) => h('li', { class: 'prop' },
        h('div', { class: 'prop-head' }, h('span', { class: 'ptype' }, typeLabel(s, ctx, true))),
        nested(s, ctx, seen, depth, openRefs)))));
  }
  if (schema.items) return nested(schema.items, ctx, seen, depth, openRefs);
  const props = Object.entries(schema.properties || {});
  if (props.length) {
    const required = new Set(schema.required || []);
    parts.push(h('ul', { class: 'props' }, props.map(([name, p]) => h('li', { class: 'prop' },
      h('div', { class: 'prop-head' },
        h('code', { class: 'pname' }, name),
        required.has(name) ? h('span', { class: 'req' }, 'required') : null,
        h('span', { class: 'ptype' }, typeLabel(p, ctx, true)),
        constraints(p)),
      prose(p.description || (p.$ref && (deref(ctx.doc, p.$ref) || {}).description), ctx),
      facts(p.$ref ? null : p),
      nested(p, ctx, seen, depth + 1, openRefs === 'all' && 'all')))));
  }
  const extra = schema.additionalProperties;
  if (extra && typeof extra === 'object') {
    const inner = nested(extra, ctx, seen, depth + 1, openRefs === 'all' && 'all');
    if (props.length) parts.push(h('p', { class: 'muted' }, 'Other fields: ', typeLabel(extra, ctx, true), '.'));
    if (inner) parts.push(h('div', { class: 'prop-values' }, h('p', { class: 'muted' }, 'Each value:'), inner));
  }
  return parts.length ? parts : null;
}

// nested shows the fields of a property's object value, or of its array's items.
function nested(schema, ctx, seen, depth, open) {
  if (!schema || typeof schema !== 'object') return null;
  const inner = schema.items && !schema.$ref ? schema.items : schema;
  const name = schemaName(inner.$ref);
  if (name) {
    if (seen.has(name)) return null;
    const sub = new Set(seen).add(name);
    const body = fields(inner, ctx, sub, depth, open === 'all' && 'all');
    return body ? h('details', { class: 'fields', open: Boolean(open) }, h('summary', null, `Fields of ${name}`), body) : null;
  }
  if (inner.properties || inner.allOf || inner.oneOf || inner.anyOf || (inner.additionalProperties && typeof inner.additionalProperties === 'object')) {
    const body = fields(inner, ctx, seen, depth, open);
    return body ? h('div', { class: 'nested' }, body) : null;
  }
  return null;
}

// prose renders a description as text: paragraphs at blank lines, `code` spans, and
// routes of this API ("PUT /v1/jobs/{id}/inputs/{name}") linked to their operations.
// It never interprets the text as markup.
function prose(text, ctx, inline = false) {
  if (typeof text !== 'string' || !text.trim()) return null;
  const paras = text.split(/\n\s*\n/).map((para) => para.split(/(`[^`]+`)/).map((chunk) => {
    if (/^`[^`]+`$/.test(chunk)) return h('code', null, chunk.slice(1, -1));
    const out = [];
    const re = /\b(GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS) (\/[^\s,;()]*[^\s,;().])/g;
    let last = 0;
    for (let m = re.exec(chunk); m; m = re.exec(chunk)) {
      const o = ctx.byRoute.get(`${m[1]} ${m[2]}`);
      if (!o) continue;
      out.push(chunk.slice(last, m.index), h('a', { href: `#${o.id}` }, h('code', null, m[0])));
      last = m.index + m[0].length;
    }
    out.push(chunk.slice(last));
    return out;
  }));
  if (inline) return paras.map((p, i) => [i ? ' ' : '', p]);
  return paras.map((p) => h('p', { class: 'desc' }, p));
}
