// The view's state lives in the URL's query string, so a view can be shared as a link:
//   where=dim=value (repeatable, as `dredge query --where`), from/to (ISO 8601, UTC) or
//   range=1h|6h|24h|7d|all (relative to the end of the data), plus a page's own keys (app=...).

export const RANGES = { "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, all: null };
export const DEFAULT_RANGE = "24h";
const NICE_INTERVALS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
const MAX_BUCKETS = 300;

export function readState(search = window.location.search) {
  const p = new URLSearchParams(search);
  const extra = {};
  for (const [k, v] of p) {
    if (!["where", "from", "to", "range"].includes(k)) extra[k] = v;
  }
  return {
    where: p.getAll("where").filter((w) => w.trim() !== ""),
    from: p.get("from") || null,
    to: p.get("to") || null,
    range: p.get("range") || null,
    extra,
  };
}

export function toSearch(state) {
  const p = new URLSearchParams();
  for (const w of state.where) p.append("where", w);
  if (state.from && state.to) {
    p.set("from", state.from);
    p.set("to", state.to);
  } else if (state.range) {
    p.set("range", state.range);
  }
  for (const [k, v] of Object.entries(state.extra)) {
    if (v != null && v !== "") p.set(k, v);
  }
  const text = p.toString();
  return text ? `?${text}` : "";
}

export function writeState(state, push = true) {
  const url = `${window.location.pathname}${toSearch(state)}`;
  if (url === `${window.location.pathname}${window.location.search}`) return;
  if (push) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
}

export function parseWhere(text) {
  const m = /^\s*([a-z_]+)\s*(!=|=)\s*(.*)$/.exec(text);
  if (!m) return null;
  return { dim: m[1], negate: m[2] === "!=", values: m[3].split("|") };
}

export function formatWhere(dim, values, negate = false) {
  return `${dim}${negate ? "!=" : "="}${values.join("|")}`;
}

// Adds dim=value, replacing a positive filter on the same dimension (a drill-down narrows).
export function withFilter(state, dim, value) {
  const where = state.where.filter((w) => {
    const f = parseWhere(w);
    return !(f && f.dim === dim && !f.negate);
  });
  where.push(formatWhere(dim, [String(value)]));
  return { ...state, where };
}

const minute = (s) => Math.floor(s / 60) * 60;
const epoch = (iso) => Math.floor(Date.parse(iso.endsWith("Z") || /[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`) / 1000);
export const isoOf = (s) => new Date(s * 1000).toISOString().replace(".000Z", "Z");

// The [from, to) the page queries, in epoch seconds, and a time-bucket width giving at most
// MAX_BUCKETS buckets. Relative ranges end at the end of the data's last minute (or now, live).
export function resolveRange(state, meta) {
  if (state.from && state.to) {
    const from = epoch(state.from);
    const to = epoch(state.to);
    if (Number.isFinite(from) && Number.isFinite(to) && to > from) return withInterval(from, to, null);
  }
  const range = state.range && state.range in RANGES ? state.range : DEFAULT_RANGE;
  const tr = meta.time_range || {};
  const dataEnd = tr.to ? minute(epoch(tr.to)) + 60 : null;
  const now = minute(Date.now() / 1000) + 60;
  const to = meta.daemon ? Math.max(now, dataEnd ?? 0) : (dataEnd ?? now);
  const dataStart = tr.from ? minute(epoch(tr.from)) : to - 3600;
  const from = RANGES[range] == null ? Math.min(dataStart, to - 60) : to - RANGES[range];
  return withInterval(from, to, range);
}

function withInterval(from, to, range) {
  const span = to - from;
  const interval = NICE_INTERVALS.find((s) => span / s <= MAX_BUCKETS) ?? 86400;
  return { from, to, interval, range };
}
