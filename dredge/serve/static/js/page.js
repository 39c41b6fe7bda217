// What every dashboard shares: read the view from the URL, draw the bar, render, re-render on
// a change (and every REFRESH_S while the live daemon serves), and report progress in the DOM
// (body[data-state] = loading | ready | error, body[data-renders] counts finished renders).

import * as api from "./api.js";
import { setTimeRange } from "./charts.js";
import { FilterBar } from "./filters.js";
import * as fmt from "./format.js";
import { readState, resolveRange, withFilter, writeState } from "./state.js";

const REFRESH_S = 15; // live daemon; the URL's refresh=SECONDS changes it, refresh=off stops it

function refreshSeconds(state) {
  const v = Number(state.extra.refresh);
  return Number.isFinite(v) && v >= 1 ? v : REFRESH_S;
}

export async function startPage(page, render) {
  document.body.dataset.page = page;
  document.body.dataset.state = "loading";
  const status = document.getElementById("status");
  let meta;
  try {
    meta = await api.meta();
  } catch (err) {
    document.body.dataset.state = "error";
    status.textContent = `The server did not answer /api/meta: ${err.message}`;
    return;
  }
  fmt.setPortNames(meta.port_names);
  let state = readState();
  let running = null;
  let again = false;
  let renders = 0;
  let barShows = null;
  const bar = new FilterBar(document.getElementById("bar"), page, meta, (next) => {
    state = next;
    writeState(state);
    run();
  });

  const ctx = {
    meta,
    get state() { return state; },
    // a query over the page's range and filters; `q` adds or overrides keys
    query: (q) => api.query({ where: state.where, from: ctx.range.from, to: ctx.range.to, ...q }),
    // drill-down: [[dim, value], ...] become filters (null values cannot be filtered on)
    addFilters(pairs) {
      const usable = pairs.filter(([, v]) => v != null && v !== "(none)" && v !== "other");
      if (!usable.length) return;
      for (const [dim, value] of usable) state = withFilter(state, dim, value);
      writeState(state);
      run();
    },
    addFilter: (dim, value) => ctx.addFilters([[dim, value]]),
    setExtra(key, value) {
      state = { ...state, extra: { ...state.extra, [key]: value } };
      writeState(state);
      run();
    },
  };

  async function run(auto = false) {
    if (running) {
      again = true;
      return running;
    }
    document.body.dataset.state = "loading";
    status.textContent = "Loading…";
    const started = performance.now();
    running = (async () => {
      try {
        ctx.range = resolveRange(state, meta);
        setTimeRange(ctx.range.from, ctx.range.to);
        // redraw the bar only when the view changed, and never under the user's fingers
        const shown = JSON.stringify([state, ctx.range]);
        if (shown !== barShows && !(auto && document.getElementById("bar").contains(document.activeElement))) {
          bar.render(state, ctx.range);
          barShows = shown;
        }
        const failures = await render(ctx);
        const ms = Math.round(performance.now() - started);
        renders += 1;
        document.body.dataset.renders = String(renders);
        document.body.dataset.state = failures ? "error" : "ready";
        status.textContent = `${failures ? `${failures} chart(s) failed · ` : ""}updated ${fmt.utc(Date.now() / 1000, true)} · ${ms} ms`;
      } catch (err) {
        document.body.dataset.state = "error";
        status.textContent = `Error: ${err.message}`;
      } finally {
        running = null;
      }
      if (again) {
        again = false;
        await run();
      }
    })();
    return running;
  }

  window.addEventListener("popstate", () => {
    state = readState();
    run();
  });
  if (meta.daemon) {
    let last = Date.now();
    setInterval(async () => {
      if (state.extra.refresh === "off" || running || document.hidden) return;
      if (Date.now() - last < refreshSeconds(state) * 1000) return;
      last = Date.now();
      try {
        Object.assign(meta, await api.meta());
      } catch {
        return;
      }
      run(true);
    }, 500);
  }
  await run();
}

// Runs each card's job; a failing card shows its error and does not stop the others.
export async function settle(jobs) {
  const results = await Promise.allSettled(jobs.map(([card, job]) => job().catch((err) => {
    card.fail(err);
    throw err;
  })));
  for (const r of results) if (r.status === "rejected") console.warn(r.reason);
  return results.filter((r) => r.status === "rejected").length;
}
