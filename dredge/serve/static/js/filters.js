// The bar on top of every page: navigation, time range, filters on every filterable dimension.

import * as api from "./api.js";
import * as fmt from "./format.js";
import { RANGES, isoOf, parseWhere } from "./state.js";

const PAGES = [["overview", "Overview"], ["dependencies", "Dependencies"], ["cost", "Cost"], ["ops", "Operations"]];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "testid") e.dataset.testid = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children);
  return e;
}

// Times are typed as "2026-11-25 10:00" and always mean UTC (a browser's date picker would
// show the viewer's locale and zone).
const textOf = (s) => new Date(s * 1000).toISOString().slice(0, 16).replace("T", " ");
function isoFromText(v) {
  const m = /^\s*(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d)(:\d\d)?\s*(Z|UTC)?\s*$/i.exec(v);
  return m ? `${m[1]}T${m[2]}${m[3] || ""}Z` : null;
}

export class FilterBar {
  // onChange(newState) is called with a state object to write and render.
  constructor(root, page, meta, onChange) {
    this.root = root;
    this.page = page;
    this.meta = meta;
    this.onChange = onChange;
  }

  render(state, range) {
    this.state = state;
    this.range = range;
    const nav = el("nav", {}, ...PAGES.map(([p, label]) => el("a", {
      href: `/${p}${this.sharedSearch(state)}`, class: p === this.page ? "current" : null, testid: `nav-${p}`,
    }, label)));
    const source = el("span", { class: "source", testid: "backend" },
      `${this.meta.backend}${this.meta.daemon ? " · live daemon" : " · store"}`);
    const top = el("div", { class: "row top" }, el("a", { class: "brand", href: "/" }, "Dredge"), nav, source);
    if (this.meta.daemon) {
      const on = state.extra.refresh !== "off";
      top.append(el("label", { class: "refresh" }, el("input", {
        type: "checkbox", checked: on, testid: "auto-refresh",
        onchange: (e) => this.change({ ...state, extra: { ...state.extra, refresh: e.target.checked ? null : "off" } }),
      }), " auto-refresh"));
    }
    this.root.replaceChildren(top, this.timeRow(state, range), this.filterRow(state));
  }

  sharedSearch(state) {
    const p = new URLSearchParams();
    for (const w of state.where) p.append("where", w);
    if (state.from && state.to) {
      p.set("from", state.from);
      p.set("to", state.to);
    } else if (state.range) p.set("range", state.range);
    const s = p.toString();
    return s ? `?${s}` : "";
  }

  change(state) {
    this.onChange(state);
  }

  timeRow(state, range) {
    const explicit = Boolean(state.from && state.to);
    const presets = Object.keys(RANGES).map((r) => el("button", {
      type: "button", class: !explicit && range.range === r ? "on" : null, testid: `range-${r}`,
      onclick: () => this.change({ ...state, from: null, to: null, range: r }),
    }, r));
    const input = (value, testid) => el("input", { type: "text", class: "time", value: textOf(value), testid,
      placeholder: "YYYY-MM-DD HH:MM", onkeydown: (e) => { if (e.key === "Enter") apply.click(); } });
    const from = input(range.from, "from");
    const to = input(range.to, "to");
    const apply = el("button", { type: "button", testid: "apply-range", onclick: () => {
      const f = isoFromText(from.value);
      const t = isoFromText(to.value);
      from.classList.toggle("bad", !f);
      to.classList.toggle("bad", !t);
      if (f && t) this.change({ ...state, from: f, to: t, range: null });
    } }, "Apply");
    const shown = el("span", { class: "range", testid: "range", "data-from": isoOf(range.from), "data-to": isoOf(range.to),
      "data-interval": String(range.interval) },
    `${fmt.utc(range.from)} – ${fmt.utc(range.to)} · ${fmt.duration(range.interval)} buckets`);
    return el("div", { class: "row" }, el("span", { class: "label" }, "Time"), el("span", { class: "group" }, ...presets),
      el("span", { class: "group" }, from, "–", to, el("span", { class: "zone" }, "UTC"), apply), shown);
  }

  filterRow(state) {
    const chips = state.where.map((w, i) => {
      const f = parseWhere(w);
      const text = f ? `${f.dim} ${f.negate ? "≠" : "="} ${f.values.join(" | ")}` : w;
      return el("span", { class: "chip", testid: "filter-chip", "data-where": w }, text, el("button", {
        type: "button", title: "Remove this filter", testid: "remove-filter",
        onclick: () => this.change({ ...state, where: state.where.filter((_, j) => j !== i) }),
      }, "×"));
    });
    const dims = this.meta.filterable || this.meta.dimensions || [];
    const dim = el("select", { testid: "filter-dim" }, ...dims.map((d) => el("option", { value: d }, d)));
    const op = el("select", { testid: "filter-op" }, el("option", { value: "=" }, "="), el("option", { value: "!=" }, "≠"));
    const list = el("datalist", { id: "filter-values" });
    const value = el("input", { type: "text", list: "filter-values", placeholder: "value (a|b for any)", testid: "filter-value" });
    const add = () => {
      if (!value.value.trim()) return;
      this.change({ ...state, where: [...state.where, `${dim.value}${op.value}${value.value.trim()}`] });
    };
    value.addEventListener("keydown", (e) => { if (e.key === "Enter") add(); });
    dim.addEventListener("change", () => this.suggest(dim.value, list));
    dim.addEventListener("focus", () => this.suggest(dim.value, list), { once: true });
    value.addEventListener("focus", () => this.suggest(dim.value, list));
    return el("div", { class: "row" }, el("span", { class: "label" }, "Filters"),
      ...(chips.length ? chips : [el("span", { class: "none" }, "none")]),
      el("span", { class: "group add" }, dim, op, value, list,
        el("button", { type: "button", testid: "add-filter", onclick: add }, "Add")));
  }

  // The dimension's biggest values in the current view, offered as completions.
  async suggest(dim, list) {
    if (list.dataset.dim === dim) return;
    list.dataset.dim = dim;
    try {
      const res = await api.query({ kind: "top", by: [dim], where: this.state.where, limit: 100,
        from: this.range?.from, to: this.range?.to });
      list.replaceChildren(...res.rows.filter((r) => r[0] != null).map((r) => el("option", { value: String(r[0]) })));
    } catch {
      list.replaceChildren();
    }
  }
}
