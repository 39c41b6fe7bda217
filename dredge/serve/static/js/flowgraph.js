// App-to-app pictures: a Sankey whose sources and destinations are separate nodes (so A→B and
// B→A never make a cycle) and a directed graph on a circle.

import { colorOf, escapeHtml, layout } from "./charts.js";
import * as fmt from "./format.js";

const alpha = (hex, a) => `${hex}${Math.round(a * 255).toString(16).padStart(2, "0")}`;
const name = (app) => (app == null ? "(none)" : app);

// pairs: [{src_app, dst_app, bytes, ...}] -> Sankey trace; node/link customdata carry the filter
export function sankey(pairs) {
  const srcs = [...new Set(pairs.map((p) => name(p.src_app)))];
  const dsts = [...new Set(pairs.map((p) => name(p.dst_app)))];
  const labels = [...srcs, ...dsts];
  const side = [...srcs.map(() => "src_app"), ...dsts.map(() => "dst_app")];
  const totals = new Map();
  for (const p of pairs) {
    totals.set(`s:${name(p.src_app)}`, (totals.get(`s:${name(p.src_app)}`) || 0) + p.bytes);
    totals.set(`d:${name(p.dst_app)}`, (totals.get(`d:${name(p.dst_app)}`) || 0) + p.bytes);
  }
  return [{
    type: "sankey", orientation: "h", arrangement: "fixed", // "snap" drags nodes and swallows clicks
    valueformat: ".3s", valuesuffix: "B",
    node: {
      label: labels, pad: 8, thickness: 12, line: { width: 0 },
      color: labels.map((l) => colorOf(l)),
      customdata: labels.map((l, i) => [side[i], l, fmt.bytes(totals.get(`${side[i][0]}:${l}`))]),
      hovertemplate: "%{customdata[0]} = <b>%{label}</b><br>%{customdata[2]}<extra></extra>",
    },
    link: {
      source: pairs.map((p) => srcs.indexOf(name(p.src_app))),
      target: pairs.map((p) => srcs.length + dsts.indexOf(name(p.dst_app))),
      value: pairs.map((p) => p.bytes),
      color: pairs.map((p) => alpha(colorOf(name(p.src_app)), 0.35)),
      customdata: pairs.map((p) => [name(p.src_app), name(p.dst_app), fmt.bytes(p.bytes)]),
      hovertemplate: "<b>%{customdata[0]} → %{customdata[1]}</b><br>%{customdata[2]}<extra></extra>",
    },
  }];
}

export const sankeyLayout = () => layout({ showlegend: false, margin: { l: 8, r: 8, t: 8, b: 8 } });

// pairs -> [node trace] + arrow annotations; apps placed on a circle by total bytes
export function graph(pairs) {
  const totals = new Map();
  for (const p of pairs) {
    for (const a of [name(p.src_app), name(p.dst_app)]) totals.set(a, (totals.get(a) || 0) + p.bytes);
  }
  const apps = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  // the biggest apps (the hubs) spread around the circle rather than side by side
  const n = apps.length;
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  let step = Math.max(1, Math.floor(n / 3));
  while (n > 1 && gcd(step, n) !== 1) step += 1;
  const pos = new Map(apps.map((a, i) => {
    const angle = Math.PI / 2 - (2 * Math.PI * ((i * step) % Math.max(n, 1))) / Math.max(n, 1);
    return [a, [Math.cos(angle), Math.sin(angle)]];
  }));
  const max = Math.max(1, ...pairs.map((p) => p.bytes));
  const maxNode = Math.max(1, ...totals.values());
  const annotations = [];
  for (const p of pairs) {
    const [s, d] = [name(p.src_app), name(p.dst_app)];
    if (s === d) continue;
    const [x0, y0] = pos.get(s);
    const [x1, y1] = pos.get(d);
    // A→B and B→A side by side: shift each arrow a little to its right
    const len = Math.hypot(x1 - x0, y1 - y0) || 1;
    const [ox, oy] = [((y1 - y0) / len) * 0.02, (-(x1 - x0) / len) * 0.02];
    annotations.push({
      x: x1 + ox, y: y1 + oy, ax: x0 + ox, ay: y0 + oy, xref: "x", yref: "y", axref: "x", ayref: "y",
      showarrow: true, arrowhead: 2, arrowsize: 1, arrowwidth: 0.8 + 5 * Math.sqrt(p.bytes / max),
      arrowcolor: alpha(colorOf(s), 0.55), standoff: 9, startstandoff: 6, text: "",
      hovertext: `${escapeHtml(s)} → ${escapeHtml(d)}: ${fmt.bytes(p.bytes)}`,
    });
  }
  const trace = {
    type: "scatter", mode: "markers+text", x: apps.map((a) => pos.get(a)[0]), y: apps.map((a) => pos.get(a)[1]),
    text: apps, textposition: apps.map((a) => (pos.get(a)[0] >= 0 ? "middle right" : "middle left")),
    textfont: { size: 10 }, cliponaxis: false,
    marker: { size: apps.map((a) => 8 + 16 * Math.sqrt(totals.get(a) / maxNode)), color: apps.map((a) => colorOf(a)),
      line: { width: 1, color: "#fff" } },
    customdata: apps.map((a) => [a, fmt.bytes(totals.get(a))]),
    hovertemplate: "<b>%{customdata[0]}</b><br>%{customdata[1]} in and out (top pairs)<extra></extra>",
  };
  const axis = { visible: false, range: [-1.45, 1.45], fixedrange: true };
  return {
    traces: [trace],
    layout: layout({ showlegend: false, annotations, hovermode: "closest", margin: { l: 8, r: 8, t: 8, b: 8 },
      xaxis: { ...axis }, yaxis: { ...axis, scaleanchor: "x" } }),
  };
}
