// Numbers with their units and times with their zone; bytes and dollars exactly as the CLI's
// tables print them (dredge/query/render.py: 1000-based units, $x.xx from $1, else $0.xxxx).

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

export function bytes(n, suffix = "") {
  if (n == null || Number.isNaN(n)) return "–";
  let v = Number(n);
  for (const unit of BYTE_UNITS) {
    if (Math.abs(v) < 1000 || unit === "PB") {
      const text = unit === "B" ? Math.round(v).toLocaleString("en-US")
        : v.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
      return `${text} ${unit}${suffix}`;
    }
    v /= 1000;
  }
  return "–";
}

export function count(n, suffix = "") {
  if (n == null || Number.isNaN(n)) return "–";
  const v = Number(n);
  const abs = Math.abs(v);
  let text;
  if (abs >= 1e9) text = `${(v / 1e9).toFixed(2)}G`;
  else if (abs >= 1e6) text = `${(v / 1e6).toFixed(2)}M`;
  else if (abs >= 1e4) text = `${(v / 1e3).toFixed(1)}k`;
  else if (Number.isInteger(v)) text = v.toLocaleString("en-US");
  else text = v.toFixed(abs < 10 ? 2 : 1);
  if (!suffix) return text;
  return suffix.startsWith("/") ? `${text}${suffix}` : `${text} ${suffix}`;
}

export function usd(v) {
  if (v == null || Number.isNaN(v)) return "–";
  const n = Number(v);
  if (Math.abs(n) >= 1) return `$${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  return `$${n.toFixed(4)}`;
}

export function pct(v) {
  if (v == null || Number.isNaN(v)) return "–";
  return `${(100 * v).toFixed(v < 0.1 ? 2 : 1)} %`;
}

export function metric(name, v) {
  if (name === "bytes") return bytes(v);
  if (name === "cost_usd") return usd(v);
  if (name === "packets" || name === "flows") return count(v);
  if (name === "t") return utc(v);
  return v == null ? "(none)" : String(v);
}

// "2026-11-25T10:00:00Z" -> "2026-11-25 10:00 UTC"
export function utc(iso, seconds = false) {
  if (iso == null) return "–";
  const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  const text = d.toISOString().slice(0, seconds ? 19 : 16).replace("T", " ");
  return `${text} UTC`;
}

export function duration(s) {
  if (s == null) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

// AWS traffic-path codes as the flow-log documentation names them.
export const TRAFFIC_PATHS = {
  1: "same VPC", 2: "internet/VPC endpoint gw", 3: "virtual private gw", 4: "intra-region peering",
  5: "inter-region peering", 6: "local gw", 7: "gateway VPC endpoint", 8: "internet gw",
};

// service port -> IANA service name (dredge.query.ports, sent in /api/meta)
let PORT_NAMES = {};
export function setPortNames(names) { PORT_NAMES = names || {}; }

export function dimValue(dim, v) {
  if (v == null) return "(none)";
  if (dim === "traffic_path") return `${v} · ${TRAFFIC_PATHS[v] ?? "?"}`;
  if (dim === "port") return v === 0 ? "ephemeral" : PORT_NAMES[v] ? `${v} · ${PORT_NAMES[v]}` : String(v);
  return String(v);
}
