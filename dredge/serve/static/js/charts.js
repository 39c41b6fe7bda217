// Chart cards: a Plotly graph (or a table) plus CSV/JSON downloads of exactly what it shows.
/* global Plotly */

import * as fmt from "./format.js";

export const PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2",
  "#ca8a04", "#db2777", "#4b5563", "#65a30d", "#7c3aed", "#0d9488"];
const OTHER_COLOR = "#cbd5e1";

export function colorOf(name) {
  if (name === "other") return OTHER_COLOR;
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

const CONFIG = { displaylogo: false, responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"] };

// The page's [from, to): time axes show the whole range, gaps included.
let timeRange = null;
export function setTimeRange(from, to) {
  timeRange = [from, to].map((s) => new Date(s * 1000).toISOString());
}

export function layout(extra = {}) {
  return {
    margin: { l: 64, r: 16, t: 8, b: 36 },
    font: { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 11, color: "#334155" },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    showlegend: true,
    legend: { orientation: "h", y: -0.18, font: { size: 10 } },
    xaxis: { type: "date", gridcolor: "#eef2f7", linecolor: "#cbd5e1", hoverformat: "%Y-%m-%d %H:%M UTC",
      ...(timeRange ? { range: timeRange } : {}) },
    yaxis: { gridcolor: "#eef2f7", rangemode: "tozero", zeroline: false },
    hoverlabel: { font: { size: 11 } },
    ...extra,
  };
}

// A card in the page: <section class="card" id=...><header><h2/></header><div class="plot"/></section>
export class Card {
  constructor(id) {
    this.el = document.getElementById(id);
    if (!this.el) throw new Error(`no card #${id}`);
    this.id = id;
    this.plot = this.el.querySelector(".plot, .table");
    this.data = null;
    const header = this.el.querySelector("header");
    const tools = document.createElement("span");
    tools.className = "tools";
    for (const kind of ["csv", "json"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "dl";
      b.textContent = kind.toUpperCase();
      b.title = `Download what this ${this.plot.classList.contains("plot") ? "chart" : "table"} shows as ${kind.toUpperCase()}`;
      b.dataset.testid = `download-${kind}-${id}`;
      b.addEventListener("click", () => this.download(kind));
      tools.append(b);
    }
    header.append(tools);
  }

  // columns + rows are what the chart shows (after grouping), downloaded as-is.
  setData(columns, rows) {
    this.data = { columns, rows };
    this.el.classList.remove("failed");
    const msg = this.el.querySelector(".msg");
    if (msg) msg.remove();
  }

  fail(err) {
    this.el.classList.add("failed");
    let msg = this.el.querySelector(".msg");
    if (!msg) {
      msg = document.createElement("p");
      msg.className = "msg";
      this.el.append(msg);
    }
    msg.textContent = `Could not load: ${err.message || err}`;
  }

  async draw(traces, lay, onClick) {
    const empty = !traces.length || traces.every((t) => (t.x || t.values || t.node?.label || []).length === 0);
    const l = empty ? { ...lay, annotations: [{ text: "no data in this range", showarrow: false,
      xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 13, color: "#94a3b8" } }] } : lay;
    await Plotly.react(this.plot, traces, l, CONFIG);
    if (onClick && !this.plot.dataset.clickBound) {
      this.plot.dataset.clickBound = "1";
      this.plot.on("plotly_click", (ev) => this.onClick && this.onClick(ev));
    }
    this.onClick = onClick;
  }

  download(kind) {
    if (!this.data) return;
    const { columns, rows } = this.data;
    let text;
    let type;
    if (kind === "csv") {
      const cell = (v) => (v == null ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v));
      text = [columns.join(","), ...rows.map((r) => r.map(cell).join(","))].join("\n") + "\n";
      type = "text/csv";
    } else {
      text = JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i]]))), null, 1);
      type = "application/json";
    }
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type }));
    a.download = `dredge-${document.body.dataset.page}-${this.id}.${kind}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }
}

// Time series rows [t, key, value] -> stacked series of the top `n` keys plus "other".
export function pivotTop(records, key, value, n = 7, label = (k) => fmt.dimValue(key, k)) {
  const totals = new Map();
  for (const r of records) totals.set(r[key], (totals.get(r[key]) || 0) + r[value]);
  const keys = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const top = keys.slice(0, n);
  const hasOther = keys.length > n;
  const times = [...new Set(records.map((r) => r.t))].sort();
  const index = new Map(times.map((t, i) => [t, i]));
  const series = new Map([...top, ...(hasOther ? ["other"] : [])].map((k) => [k, new Array(times.length).fill(0)]));
  for (const r of records) {
    const k = top.includes(r[key]) ? r[key] : "other";
    series.get(k)[index.get(r.t)] += r[value];
  }
  return { times, series: [...series.entries()].map(([k, ys]) => ({ key: k, name: k === "other" ? "other" : label(k), ys })) };
}

// one bar per bucket, covering [t, t + interval)
export function stackedBars(pivot, interval, hoverUnit) {
  const scale = 1 / interval;
  return pivot.series.map((s, i) => ({
    type: "bar", x: pivot.times, y: s.ys.map((v) => v * scale), name: s.name,
    xperiod: interval * 1000, xperiodalignment: "middle",
    marker: { color: s.key === "other" ? OTHER_COLOR : PALETTE[i % PALETTE.length], line: { width: 0 } },
    customdata: s.ys.map((v) => [s.key, hoverUnit(v * scale)]),
    hovertemplate: `%{x|%H:%M} UTC<br><b>${escapeHtml(s.name)}</b> %{customdata[1]}<extra></extra>`,
  }));
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
