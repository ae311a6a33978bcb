// The world map: the land outline of world.js in an equirectangular projection, with a
// marker per node.
import { s } from './dom.js';
import { LAND, SEAS, REGIONS } from './world.js';

const TOP = 84; // latitudes shown: 84°N …
const BOTTOM = -58; // … 58°S (nothing of ours lies further south)
const W = 360;
const H = TOP - BOTTOM;

const x = (lon) => lon + 180;
const y = (lat) => TOP - Math.max(BOTTOM, Math.min(TOP, lat));

function pathOf(rings) {
  return rings.map((r) => {
    let d = '';
    for (let i = 0; i < r.length; i += 2) d += `${i ? 'L' : 'M'}${x(r[i]).toFixed(1)} ${y(r[i + 1]).toFixed(1)}`;
    return `${d}Z`;
  }).join('');
}

let landPath;
let seaPath;

// declared reports whether a node declared its coordinates. GET /v1/nodes gives them as
// lat_e6 and lon_e6 (millionths of a degree) and leaves out a zero, so a node on the
// equator or the prime meridian has one of the two; one that declared none has neither.
export const declared = (node) => Number.isFinite(node.lat_e6) || Number.isFinite(node.lon_e6);

// locate returns a node's [lat, lon]: the coordinates it declared where it did (an absent
// one is 0), else its region's usual data-centre city; null when neither is known.
export function locate(node) {
  if (declared(node)) return [(node.lat_e6 || 0) / 1e6, (node.lon_e6 || 0) / 1e6];
  return REGIONS[node.region] || null;
}

// latLon formats a place as "50.11° N, 8.68° E".
export function latLon([lat, lon]) {
  const f = (v, pos, neg) => `${Math.abs(v).toFixed(2)}° ${v < 0 ? neg : pos}`;
  return `${f(lat, 'N', 'S')}, ${f(lon, 'E', 'W')}`;
}

// worldMap draws points ({lat, lon, online, title, href}) as markers of radius degrees;
// points at one place are spread on a small ring so each stays visible and clickable.
export function worldMap(points, label, radius = 2.4) {
  landPath = landPath || pathOf(LAND);
  seaPath = seaPath || pathOf(SEAS);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'map', role: 'img', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' },
    s('rect', { class: 'ocean', x: 0, y: 0, width: W, height: H }),
    [0, 23.44, -23.44].map((lat) => s('line', { class: lat ? 'grid tropic' : 'grid', x1: 0, x2: W, y1: y(lat), y2: y(lat) })),
    s('path', { class: 'land', d: landPath }),
    s('path', { class: 'sea', d: seaPath }));
  const groups = new Map();
  for (const p of points) {
    const key = `${p.lat.toFixed(1)},${p.lon.toFixed(1)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(p);
  }
  for (const group of groups.values()) {
    group.forEach((p, i) => {
      const r = group.length > 1 ? radius * 1.4 : 0;
      const a = (2 * Math.PI * i) / group.length - Math.PI / 2;
      const cx = x(p.lon) + r * Math.cos(a);
      const cy = y(p.lat) + r * Math.sin(a);
      const cls = p.online ? 'node on' : 'node off';
      const marker = s('g', { class: cls },
        p.online ? s('circle', { class: 'pulse', cx, cy, r: radius }) : null,
        s('circle', { class: 'dot', cx, cy, r: radius }),
        s('title', null, p.title));
      svg.append(p.href ? s('a', { href: p.href, 'data-nav': true }, marker) : marker);
    });
  }
  return svg;
}
