// Plain HTML tables for query results: formatted cells, exact values in data-value, row clicks.

import * as fmt from "./format.js";

const NUMERIC = new Set(["bytes", "packets", "flows", "cost_usd", "share", "delta"]);

// columns: names; rows: arrays; opts: {labels, format(col, v), onRowClick(record), rowTestid}
export function renderTable(el, columns, rows, opts = {}) {
  const table = document.createElement("table");
  const thead = table.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement("th");
    th.textContent = (opts.labels && opts.labels[c]) || c;
    if (NUMERIC.has(c)) th.className = "num";
    thead.append(th);
  }
  const body = table.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    const record = Object.fromEntries(columns.map((c, i) => [c, r[i]]));
    if (opts.rowTestid) tr.dataset.testid = opts.rowTestid;
    columns.forEach((c, i) => {
      const td = tr.insertCell();
      const v = r[i];
      td.textContent = opts.format ? opts.format(c, v) : defaultFormat(c, v);
      td.dataset.col = c;
      if (v != null) td.dataset.value = String(v);
      if (NUMERIC.has(c)) td.className = "num";
    });
    if (opts.onRowClick) {
      tr.classList.add("clickable");
      tr.title = opts.rowTitle || "Click to filter on this row";
      tr.addEventListener("click", () => opts.onRowClick(record));
    }
  }
  if (!rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns.length;
    td.className = "empty";
    td.textContent = opts.emptyText || "no rows in this range";
  }
  el.replaceChildren(table);
}

function defaultFormat(c, v) {
  if (c === "share") return fmt.pct(v);
  if (c.endsWith("_app") || c.startsWith("src_") || c.startsWith("dst_")) return fmt.dimValue(c, v);
  return fmt.metric(c, v);
}
