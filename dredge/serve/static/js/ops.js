// Operations (the live daemon only): per-shard lag, leases held, recent flush latency, dead
// letters and index freshness, from /api/ops. A server over a store says so instead.

import * as api from "./api.js";
import { Card, layout } from "./charts.js";
import * as fmt from "./format.js";
import { settle, startPage } from "./page.js";
import { renderTable } from "./table.js";

const IDS = ["behind", "freshness", "dead", "shards"];
let cards = null;

function setKpi(testid, text, value) {
  const e = document.querySelector(`[data-testid="${testid}"]`);
  e.textContent = text;
  if (value != null) e.dataset.value = String(value);
}

const hbar = (labels, values, color, suffix, text) => [{
  type: "bar", orientation: "h", y: labels, x: values, marker: { color },
  customdata: text, hovertemplate: "%{y}: %{customdata}<extra></extra>",
}];
const hbarLayout = (ticksuffix) => layout({ showlegend: false, hovermode: "closest", margin: { l: 190, r: 16, t: 8, b: 32 },
  xaxis: { gridcolor: "#eef2f7", rangemode: "tozero", ticksuffix }, yaxis: { automargin: true, tickfont: { size: 10 } } });

async function render(ctx) {
  const data = await api.ops();
  const live = data.daemon === true;
  document.getElementById("no-daemon").hidden = live;
  document.getElementById("ops-kpis").hidden = !live;
  for (const id of IDS) document.getElementById(id).hidden = !live;
  if (!live) return 0;
  cards ||= Object.fromEntries(IDS.map((id) => [id, new Card(id)]));

  const shards = data.shards || [];
  const flush = data.flush || {};
  const dead = Object.entries(data.dead_letters || {}).sort((a, b) => b[1] - a[1]);
  const fresh = Object.entries(data.index_freshness_s || {}).sort((a, b) => b[1] - a[1]);
  setKpi("leases-held", String(data.leases_held ?? "–"), data.leases_held);
  setKpi("shard-count", `${shards.length} shard(s) reporting`);
  const worst = shards.length ? Math.max(...shards.map((s) => s.millis_behind_latest)) : null;
  setKpi("max-behind", worst == null ? "–" : fmt.duration(worst / 1000), worst);
  setKpi("flush-latency", flush.p50_s == null ? "no recent flush" : `${fmt.duration(flush.p50_s)} / ${fmt.duration(flush.p99_s)}`);
  const recent = flush.window_s ? `; ${fmt.count(flush.recent ?? 0)} in the last ${fmt.duration(flush.window_s)}` : "";
  setKpi("flush-count", flush.count == null ? "" : `${fmt.count(flush.count)} flushes since start${recent}`);
  setKpi("dead-letters", fmt.count(dead.reduce((a, [, v]) => a + v, 0)));
  setKpi("index-freshness", fresh.length ? fmt.duration(fresh[0][1]) : "static index");

  return settle([
    [cards.behind, async () => {
      const labels = shards.map((s) => `${s.stream} ${s.shard}`);
      cards.behind.setData(["stream", "shard", "millis_behind_latest"], shards.map((s) => [s.stream, s.shard, s.millis_behind_latest]));
      await cards.behind.draw(hbar(labels, shards.map((s) => s.millis_behind_latest / 1000), "#0891b2", " s",
        shards.map((s) => fmt.duration(s.millis_behind_latest / 1000))), hbarLayout(" s"));
    }],
    [cards.freshness, async () => {
      cards.freshness.setData(["provider", "seconds_since_update"], fresh);
      await cards.freshness.draw(hbar(fresh.map(([p]) => p), fresh.map(([, v]) => v), "#16a34a", " s",
        fresh.map(([, v]) => fmt.duration(v))), hbarLayout(" s"));
    }],
    [cards.dead, async () => {
      cards.dead.setData(["reason", "records"], dead);
      renderTable(cards.dead.plot, ["reason", "records"], dead, { emptyText: "no dead letters",
        format: (c, v) => (c === "records" ? fmt.count(v) : String(v)) });
    }],
    [cards.shards, async () => {
      const rows = shards.map((s) => [s.stream, s.shard, s.millis_behind_latest]);
      cards.shards.setData(["stream", "shard", "millis_behind_latest"], rows);
      renderTable(cards.shards.plot, ["stream", "shard", "millis_behind_latest"], rows, { emptyText: "no shard read yet",
        labels: { millis_behind_latest: "behind latest" },
        format: (c, v) => (c === "millis_behind_latest" ? fmt.duration(v / 1000) : String(v)) });
    }],
  ]);
}

startPage("ops", render);
