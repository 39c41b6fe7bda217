// Dependencies: who talks to whom (Sankey, graph, top pairs), one app's peers over time, and
// the app pairs that appeared or vanished against the previous period of the same length.

import { Card, layout, pivotTop, stackedBars } from "./charts.js";
import * as flowgraph from "./flowgraph.js";
import * as fmt from "./format.js";
import { settle, startPage } from "./page.js";
import { renderTable } from "./table.js";

const TOP_PAIRS = 25;
const ALL_PAIRS = 5000; // enough for every pair of a demo-sized estate; more is cut (and said)
const cards = Object.fromEntries(["sankey", "graph", "pairs", "inbound", "outbound", "appeared", "vanished"]
  .map((id) => [id, new Card(id)]));
const PAIR_COLUMNS = ["src_app", "dst_app", "bytes", "packets", "flows"];

function setText(testid, text, data = {}) {
  const e = document.querySelector(`[data-testid="${testid}"]`);
  e.textContent = text;
  Object.assign(e.dataset, data);
}

const key = (r) => JSON.stringify([r.src_app, r.dst_app]);

async function render(ctx) {
  const { from, to, interval } = ctx.range;
  const span = to - from;
  const top = ctx.query({ kind: "top", by: ["src_app", "dst_app"], limit: TOP_PAIRS });
  const current = ctx.query({ kind: "top", by: ["src_app", "dst_app"], limit: ALL_PAIRS });
  const previous = ctx.query({ kind: "top", by: ["src_app", "dst_app"], limit: ALL_PAIRS, from: from - span, to: from });
  const filterPair = (r) => ctx.addFilters([["src_app", r.src_app], ["dst_app", r.dst_app]]);

  const appSelect = document.getElementById("peer-app");
  const chosenApp = async () => {
    const res = await top;
    const apps = [...new Set(res.records.flatMap((r) => [r.src_app, r.dst_app]).filter((a) => a != null))].sort();
    const app = ctx.state.extra.app || (res.records[0] && res.records[0].src_app) || apps[0] || "";
    if (app && !apps.includes(app)) apps.unshift(app);
    appSelect.replaceChildren(...apps.map((a) => new Option(a, a, false, a === app)));
    appSelect.onchange = () => ctx.setExtra("app", appSelect.value);
    document.querySelector("#outbound .peer-name").textContent = app || "–";
    return app;
  };
  const app = chosenApp();

  const peers = (card, dim, other) => async () => {
    const a = await app;
    const res = await ctx.query({ kind: "timeseries", interval, by: [dim], where: [...ctx.state.where, `${other}=${a}`] });
    const pivot = pivotTop(res.records, dim, "bytes");
    card.setData(["t", ...pivot.series.map((s) => s.name)], pivot.times.map((t, i) => [t, ...pivot.series.map((s) => s.ys[i] / interval)]));
    await card.draw(stackedBars(pivot, interval, (v) => fmt.bytes(v, "/s")),
      layout({ barmode: "stack", bargap: 0, hovermode: "closest", yaxis: { ...layout().yaxis, tickformat: "~s", ticksuffix: "B/s" } }),
      (ev) => {
        const peer = ev.points?.[0]?.customdata?.[0];
        if (peer != null && peer !== "other") ctx.setExtra("app", peer);
      });
  };

  const changes = async () => {
    const [cur, prev] = await Promise.all([current, previous]);
    const before = new Map(prev.records.map((r) => [key(r), r]));
    const now = new Map(cur.records.map((r) => [key(r), r]));
    const appeared = cur.records.filter((r) => !before.has(key(r)));
    const vanished = prev.records.filter((r) => !now.has(key(r)));
    const period = `previous period ${fmt.utc(from - span)} – ${fmt.utc(from)}`;
    for (const e of document.querySelectorAll(".period")) e.textContent = period;
    setText("pair-count", `${cur.rows.length}${cur.rows.length >= ALL_PAIRS ? "+" : ""}`);
    const comparable = prev.rows.length > 0;
    setText("appeared-count", comparable ? String(appeared.length) : "–");
    setText("vanished-count", comparable ? String(vanished.length) : "–");
    const show = (card, rows, label) => {
      const data = rows.map((r) => PAIR_COLUMNS.map((c) => r[c]));
      card.setData(PAIR_COLUMNS, comparable ? data : []);
      renderTable(card.plot, PAIR_COLUMNS, comparable ? data : [], {
        labels: { bytes: label }, onRowClick: filterPair, rowTestid: `${card.id}-row`,
        emptyText: comparable ? "none" : "no data in the previous period: nothing to compare with",
      });
    };
    show(cards.appeared, appeared, "bytes now");
    show(cards.vanished, vanished, "bytes before");
  };

  return settle([
    [cards.sankey, async () => {
      const res = await top;
      const first = res.records[0];
      if (first) {
        setText("top-pair", `${first.src_app ?? "(none)"} → ${first.dst_app ?? "(none)"}`,
          { src: first.src_app ?? "", dst: first.dst_app ?? "", bytes: String(first.bytes) });
        setText("top-pair-bytes", fmt.bytes(first.bytes), { value: String(first.bytes) });
      } else {
        setText("top-pair", "–");
        setText("top-pair-bytes", "no traffic in the range");
      }
      cards.sankey.setData(res.columns, res.rows);
      await cards.sankey.draw(flowgraph.sankey(res.records), flowgraph.sankeyLayout(), (ev) => {
        const p = ev.points?.[0];
        if (!p || !p.customdata) return;
        if (p.customdata.length === 3 && (p.customdata[0] === "src_app" || p.customdata[0] === "dst_app")) {
          ctx.addFilter(p.customdata[0], p.customdata[1]);
        } else {
          filterPair({ src_app: p.customdata[0], dst_app: p.customdata[1] });
        }
      });
    }],
    [cards.graph, async () => {
      const res = await top;
      cards.graph.setData(res.columns, res.rows);
      const g = flowgraph.graph(res.records);
      await cards.graph.draw(g.traces, g.layout, (ev) => {
        const a = ev.points?.[0]?.customdata?.[0];
        if (a && a !== "(none)") ctx.setExtra("app", a);
      });
    }],
    [cards.pairs, async () => {
      const res = await top;
      const total = res.records.reduce((s, r) => s + r.bytes, 0);
      cards.pairs.setData(res.columns, res.rows);
      renderTable(cards.pairs.plot, [...PAIR_COLUMNS, "share"], res.records.map((r) => [...PAIR_COLUMNS.map((c) => r[c]), total ? r.bytes / total : 0]),
        { labels: { share: "share of top" }, onRowClick: filterPair, rowTestid: "pair-row" });
    }],
    [cards.inbound, peers(cards.inbound, "src_app", "dst_app")],
    [cards.outbound, peers(cards.outbound, "dst_app", "src_app")],
    [cards.appeared, changes],
  ]);
}

startPage("dependencies", render);
