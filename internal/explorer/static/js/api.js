// The REST API, read from the same origin that served the explorer.

export class APIError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// get fetches a JSON document; a non-2xx answer throws an APIError carrying the API's
// own message.
export async function get(path, signal) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store', signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new APIError(0, 'the server did not answer');
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: keep the status text
  }
  if (!res.ok) throw new APIError(res.status, (body && body.error) || `${res.status} ${res.statusText}`, body && body.code);
  return body;
}

// getAll fetches several documents at once and never throws: each entry is
// {value} or {error}, so one failing endpoint leaves the others' sections standing.
export async function getAll(paths, signal) {
  const keys = Object.keys(paths);
  const settled = await Promise.allSettled(keys.map((k) => get(paths[k], signal)));
  if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
  const out = {};
  keys.forEach((k, i) => {
    out[k] = settled[i].status === 'fulfilled' ? { value: settled[i].value } : { error: settled[i].reason };
  });
  return out;
}

export const enc = encodeURIComponent;

// txURL links a transaction hash to the chain's CometBFT RPC, when /v1/health names one.
export function txURL(health, hash) {
  const rpc = health && health.chain_rpc;
  if (!rpc || !/^https?:\/\//.test(rpc) || !/^[0-9A-Fa-f]{64}$/.test(hash)) return null;
  return `${rpc.replace(/\/$/, '')}/tx?hash=0x${hash}`;
}
