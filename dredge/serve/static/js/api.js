// The HTTP API of `dredge serve` / the daemon: /api/meta, /api/query, /api/ops.

export class ApiError extends Error {}

async function getJSON(url) {
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  let body;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`${url}: HTTP ${res.status}`);
  }
  if (!res.ok) throw new ApiError(body && body.error ? body.error : `HTTP ${res.status}`);
  return body;
}

export const meta = () => getJSON("/api/meta");
export const ops = () => getJSON("/api/ops");

// One query: {kind, by: [...], where: [...], from, to (epoch s), metric, limit, interval, ...prices}
// -> {kind, columns, rows, elapsed_ms}; rows also as objects in .records.
export async function query(q) {
  const p = new URLSearchParams();
  p.set("kind", q.kind);
  if (q.by && q.by.length) p.set("by", q.by.join(","));
  for (const w of q.where || []) p.append("where", w);
  if (q.from != null) p.set("from", iso(q.from));
  if (q.to != null) p.set("to", iso(q.to));
  for (const k of ["metric", "limit", "interval", "az_price", "region_price", "internet_price", "nat_price"]) {
    if (q[k] != null && q[k] !== "") p.set(k, String(q[k]));
  }
  const res = await getJSON(`/api/query?${p}`);
  res.records = res.rows.map((r) => Object.fromEntries(res.columns.map((c, i) => [c, r[i]])));
  return res;
}

const iso = (s) => new Date(s * 1000).toISOString().replace(".000Z", "Z");
