// Cost: bytes that cost money to move (across AZs and regions, out to the internet, through a
// NAT gateway) and their estimated dollars: the `cross-az` query, same prices and model as
// `dredge query cross-az`. Prices can be changed here (kept in the URL as the API's names).

import { Card, layout } from "./charts.js";
import * as fmt from "./format.js";
import { settle, startPage } from "./page.js";
import { renderTable } from "./table.js";

const KINDS = { "cross-az": ["Cross-AZ", "#2563eb"], "cross-region": ["Cross-region", "#f97316"],
  internet: ["Internet egress", "#dc2626"], nat: ["NAT processing", "#9333ea"] };
const PRICE_LABELS = { az_price: "cross-AZ", region_price: "cross-region", internet_price: "internet", nat_price: "NAT" };
const REGION_PAIRS = 1000; // every region pair of any estate: the totals add up exactly
const cards = Object.fromEntries(["by-pair", "by-region", "by-kind", "pairs"].map((id) => [id, new Card(id)]));

const kindColor = (k) => (KINDS[k] ? KINDS[k][1] : "#64748b");
const kindName = (k) => (KINDS[k] ? KINDS[k][0] : k);

function setKpi(testid, text, value) {
  const e = document.querySelector(`[data-testid="${testid}"]`);
  e.textContent = text;
  if (value != null) e.dataset.value = String(value);
}

function prices(ctx) {
  const out = {};
  for (const k of Object.keys(PRICE_LABELS)) {
    const v = ctx.state.extra[k];
    if (v != null && v !== "" && !Number.isNaN(Number(v))) out[k] = v;
  }
  return out;
}

function drawPrices(ctx) {
  const known = ctx.meta.prices || {};
  const chosen = prices(ctx);
  const el = document.getElementById("prices");
  el.replaceChildren("USD per GB:");
  for (const [k, label] of Object.entries(PRICE_LABELS)) {
    const input = document.createElement("input");
    input.type = "number";
    input.step = "0.001";
    input.min = "0";
    input.value = chosen[k] ?? known[k] ?? "";
    input.dataset.testid = `price-${k}`;
    input.title = `${label} price, USD/GB (default ${known[k] ?? "?"})`;
    input.addEventListener("change", () => ctx.setExtra(k, input.value === String(known[k]) ? null : input.value));
    const l = document.createElement("label");
    l.append(`${label} `, input);
    el.append(l);
  }
}

// rows [{label, crossing, cost_usd, bytes, filter}] -> horizontal bars stacked by crossing
function bars(records, labelOf) {
  const labels = [...new Set(records.map(labelOf))];
  const totals = new Map(labels.map((l) => [l, 0]));
  for (const r of records) totals.set(labelOf(r), totals.get(labelOf(r)) + r.cost_usd);
  labels.sort((a, b) => totals.get(a) - totals.get(b)); // costliest on top
  const kinds = [...new Set(records.map((r) => r.crossing))];
  return kinds.map((k) => {
    const rows = records.filter((r) => r.crossing === k);
    return {
      type: "bar", orientation: "h", name: kindName(k), marker: { color: kindColor(k) },
      y: rows.map(labelOf), x: rows.map((r) => r.cost_usd),
      customdata: rows.map((r) => [fmt.usd(r.cost_usd), fmt.bytes(r.bytes), r]),
      hovertemplate: `%{y}<br>${kindName(k)}: %{customdata[0]} (%{customdata[1]})<extra></extra>`,
      _order: labels,
    };
  });
}

function barLayout(traces) {
  const order = traces[0]?._order || [];
  return layout({ barmode: "stack", hovermode: "closest", margin: { l: 170, r: 16, t: 8, b: 36 },
    legend: { orientation: "h", y: -0.08 },
    xaxis: { gridcolor: "#eef2f7", tickprefix: "$", rangemode: "tozero" },
    yaxis: { categoryorder: "array", categoryarray: order, automargin: true, tickfont: { size: 10 } } });
}

const dropOrder = (traces) => traces.map(({ _order, ...t }) => ({ ...t, customdata: t.customdata.map((c) => c.slice(0, 2)) }));

async function render(ctx) {
  drawPrices(ctx);
  const p = prices(ctx);
  const byPair = ctx.query({ kind: "cross-az", by: ["src_app", "dst_app"], limit: 20, ...p });
  const byPairTable = ctx.query({ kind: "cross-az", by: ["src_app", "dst_app"], limit: 200, ...p });
  const byRegion = ctx.query({ kind: "cross-az", by: ["src_region", "dst_region"], limit: REGION_PAIRS, ...p });
  // every region pair: the totals by crossing add up to the whole
  const bySum = byRegion.then((res) => {
    const sums = {};
    for (const r of res.records) {
      const s = (sums[r.crossing] ||= { cost: 0, bytes: 0 });
      s.cost += r.cost_usd;
      s.bytes += r.bytes;
    }
    return sums;
  });
  const pairLabel = (r) => `${r.src_app ?? "(none)"} → ${r.dst_app ?? "(none)"}`;

  // bars of a query by a pair of dimensions; a click on a bar filters on both
  const drawPairs = async (card, res, label, [a, b]) => {
    card.setData(res.columns, res.rows);
    const traces = bars(res.records, label);
    const recs = traces.map((t) => t.customdata.map((c) => c[2]));
    await card.draw(dropOrder(traces), barLayout(traces), (ev) => {
      const pt = ev.points?.[0];
      const r = pt && recs[pt.curveNumber]?.[pt.pointNumber];
      if (!r) return;
      ctx.addFilters([[a, r[a]], [b, r[b]]]);
    });
  };

  return settle([
    [cards["by-pair"], async () => {
      await drawPairs(cards["by-pair"], await byPair, pairLabel, ["src_app", "dst_app"]);
    }],
    [cards["by-region"], async () => {
      const res = await byRegion;
      const sums = await bySum;
      const total = Object.values(sums).reduce((a, s) => ({ cost: a.cost + s.cost, bytes: a.bytes + s.bytes }), { cost: 0, bytes: 0 });
      setKpi("cost-total", fmt.usd(total.cost), total.cost);
      setKpi("cost-total-bytes", `${fmt.bytes(total.bytes)} moved at a price`, total.bytes);
      for (const k of Object.keys(KINDS)) {
        const s = sums[k] || { cost: 0, bytes: 0 };
        setKpi(`cost-${k}`, fmt.usd(s.cost), s.cost);
        setKpi(`bytes-${k}`, fmt.bytes(s.bytes), s.bytes);
      }
      await drawPairs(cards["by-region"], res,
        (r) => `${r.src_region ?? "(none)"} → ${r.dst_region ?? "(none)"}`, ["src_region", "dst_region"]);
    }],
    [cards["by-kind"], async () => {
      const sums = await bySum;
      const kinds = Object.keys(sums).sort((a, b) => sums[b].cost - sums[a].cost);
      cards["by-kind"].setData(["crossing", "bytes", "cost_usd"], kinds.map((k) => [k, sums[k].bytes, sums[k].cost]));
      await cards["by-kind"].draw([{
        type: "pie", hole: 0.55, labels: kinds.map(kindName), values: kinds.map((k) => sums[k].cost), sort: false,
        marker: { colors: kinds.map(kindColor) }, textinfo: "percent", textposition: "inside", textfont: { size: 10 },
        customdata: kinds.map((k) => [fmt.usd(sums[k].cost), fmt.bytes(sums[k].bytes)]),
        hovertemplate: "%{label}: %{customdata[0]}<br>%{customdata[1]}<extra></extra>",
      }], layout({ margin: { l: 8, r: 8, t: 8, b: 8 }, legend: { orientation: "v", x: 1, y: 0.5 } }));
    }],
    [cards.pairs, async () => {
      const res = await byPairTable;
      cards.pairs.setData(res.columns, res.rows);
      const cols = ["src_app", "dst_app", "crossing", "bytes", "cost_usd"];
      renderTable(cards.pairs.plot, cols, res.records.map((r) => cols.map((c) => r[c])), {
        labels: { cost_usd: "cost" }, rowTestid: "cost-row",
        format: (c, v) => (c === "crossing" ? kindName(v) : c === "bytes" || c === "cost_usd" ? fmt.metric(c, v) : fmt.dimValue(c, v)),
        onRowClick: (r) => ctx.addFilters([["src_app", r.src_app], ["dst_app", r.dst_app]]),
      });
    }],
  ]);
}

startPage("cost", render);
