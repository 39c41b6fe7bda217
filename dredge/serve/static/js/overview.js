// Overview: traffic rates, share rejected and unattributed, bytes stacked by region, AZ,
// traffic path, action and service port, and rejected flows stacked by service port.

import { Card, colorOf, layout, pivotTop, stackedBars } from "./charts.js";
import * as fmt from "./format.js";
import { settle, startPage } from "./page.js";

const UNATTRIBUTED = "unknown|internet";
// region and AZ of the source, or of the destination with side=dst in the URL
// [card id, dimension, metric, extra filters]
const stacks = (side) => [["by-region", `${side}_region`], ["by-az", `${side}_az`], ["by-path", "traffic_path"], ["by-action", "action"],
  ["by-port", "port"], ["rejected-port", "port", "flows", ["action=REJECT"]]];
const STACK_IDS = stacks("src").map(([id]) => id);

const cards = Object.fromEntries(["bytes-rate", "packets-rate", "flows-rate", "rejected", "unattributed",
  ...STACK_IDS].map((id) => [id, new Card(id)]));

function setKpi(testid, text, value) {
  const e = document.querySelector(`[data-testid="${testid}"]`);
  e.textContent = text;
  if (value != null) e.dataset.value = String(value);
}

function rateChart(card, res, metric, interval, unit) {
  const xs = res.records.map((r) => r.t);
  const ys = res.records.map((r) => r[metric] / interval);
  card.setData(["t", `${metric}_per_s`], xs.map((t, i) => [t, ys[i]]));
  const color = { bytes: "#2563eb", packets: "#0891b2", flows: "#9333ea" }[metric];
  return card.draw([{ type: "scatter", mode: "lines", x: xs, y: ys, name: `${metric}/s`, fill: "tozeroy",
    line: { color, width: 1.5 }, fillcolor: `${color}22`,
    customdata: ys.map((v) => unit(v)), hovertemplate: "%{x|%Y-%m-%d %H:%M} UTC<br>%{customdata}<extra></extra>" }],
  layout({ showlegend: false, margin: { l: 56, r: 8, t: 4, b: 28 },
    yaxis: { ...layout().yaxis, tickformat: Math.max(0, ...ys) < 1000 ? "~r" : "~s", ticksuffix: metric === "bytes" ? "B" : "" } }));
}

// share per bucket: part / total, on the total's buckets (a bucket with no part is 0)
function shares(total, part, key) {
  const byT = new Map(part.map((r) => [r.t, r[key]]));
  return total.map((r) => (r.bytes ? (byT.get(r.t) || 0) / r.bytes : 0));
}

const shareLayout = () => layout({ margin: { l: 48, r: 8, t: 4, b: 28 }, legend: { orientation: "h", y: 1.15, x: 0 },
  yaxis: { ...layout().yaxis, tickformat: ".2~%", rangemode: "tozero" }, hovermode: "x unified" });

async function render(ctx) {
  const { interval } = ctx.range;
  const ts = (q) => ctx.query({ kind: "timeseries", interval, by: [], ...q });
  const total = ts({});
  const byAction = ts({ by: ["action"] });
  const sum = (rows, k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
  const side = ctx.state.extra.side === "dst" ? "dst" : "src";
  for (const select of document.querySelectorAll("select.side")) {
    select.value = side;
    select.onchange = () => ctx.setExtra("side", select.value === "dst" ? "dst" : null);
  }

  return settle([
    [cards["bytes-rate"], async () => {
      const res = await total;
      const span = ctx.range.to - ctx.range.from;
      for (const m of ["bytes", "packets", "flows"]) {
        const t = sum(res.records, m);
        setKpi(`total-${m}`, m === "bytes" ? fmt.bytes(t) : fmt.count(t), t);
        document.getElementById(`avg-${m}`).textContent = `avg ${m === "bytes" ? fmt.bytes(t / span, "/s") : fmt.count(t / span, "/s")}`;
      }
      await rateChart(cards["bytes-rate"], res, "bytes", interval, (v) => fmt.bytes(v, "/s"));
    }],
    [cards["packets-rate"], async () => rateChart(cards["packets-rate"], await total, "packets", interval, (v) => fmt.count(v, "packets/s"))],
    [cards["flows-rate"], async () => rateChart(cards["flows-rate"], await total, "flows", interval, (v) => fmt.count(v, "flows/s"))],
    [cards.rejected, async () => {
      const all = (await total).records;
      const rej = (await byAction).records.filter((r) => r.action === "REJECT");
      const s = shares(all, rej, "bytes");
      setKpi("share-rejected", fmt.pct(sum(all, "bytes") ? sum(rej, "bytes") / sum(all, "bytes") : 0));
      cards.rejected.setData(["t", "share_rejected"], all.map((r, i) => [r.t, s[i]]));
      await cards.rejected.draw([{ type: "scatter", mode: "lines", x: all.map((r) => r.t), y: s, name: "rejected",
        line: { color: "#dc2626", width: 1.5 }, hovertemplate: "%{y:.2%}" }], { ...shareLayout(), showlegend: false });
    }],
    [cards.unattributed, async () => {
      const [all, src, dst] = [(await total).records, ...(await Promise.all([
        ts({ where: [...ctx.state.where, `src_app=${UNATTRIBUTED}`] }),
        ts({ where: [...ctx.state.where, `dst_app=${UNATTRIBUTED}`] })])).map((r) => r.records)];
      const [s, d] = [shares(all, src, "bytes"), shares(all, dst, "bytes")];
      const whole = sum(all, "bytes");
      setKpi("share-unattributed", whole ? `${fmt.pct(sum(src, "bytes") / whole)} / ${fmt.pct(sum(dst, "bytes") / whole)}` : "–");
      cards.unattributed.setData(["t", "share_src_unattributed", "share_dst_unattributed"], all.map((r, i) => [r.t, s[i], d[i]]));
      const xs = all.map((r) => r.t);
      await cards.unattributed.draw([
        { type: "scatter", mode: "lines", x: xs, y: s, name: "source", line: { color: "#f97316", width: 1.5 }, hovertemplate: "%{y:.2%}" },
        { type: "scatter", mode: "lines", x: xs, y: d, name: "destination", line: { color: "#7c3aed", width: 1.5 }, hovertemplate: "%{y:.2%}" },
      ], shareLayout());
    }],
    ...stacks(side).map(([id, dim, metric = "bytes", where = []]) => [cards[id], async () => {
      const res = dim === "action" ? await byAction
        : await ts({ by: [dim], ...(where.length ? { where: [...ctx.state.where, ...where] } : {}) });
      const pivot = pivotTop(res.records, dim, metric);
      const card = cards[id];
      const unit = metric === "bytes" ? (v) => fmt.bytes(v, "/s") : (v) => fmt.count(v, `${metric}/s`);
      card.setData(["t", ...pivot.series.map((s) => s.name)],
        pivot.times.map((t, i) => [t, ...pivot.series.map((s) => s.ys[i] / interval)]));
      await card.draw(stackedBars(pivot, interval, unit).map((t) =>
        (dim === "action" ? { ...t, marker: { ...t.marker, color: t.name === "REJECT" ? "#dc2626" : t.name === "ACCEPT" ? "#16a34a" : colorOf(t.name) } } : t)),
      layout({ barmode: "stack", bargap: 0, hovermode: "closest",
        yaxis: { ...layout().yaxis, tickformat: "~s", ticksuffix: metric === "bytes" ? "B/s" : "/s" } }),
      (ev) => {
        const key = ev.points?.[0]?.customdata?.[0];
        if (key != null && key !== "other") ctx.addFilter(dim, key);
      });
    }]),
  ]);
}

startPage("overview", render);
