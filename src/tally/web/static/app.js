// The dashboard: sign in, read the view from the URL's fragment, ask the API, draw.

import { ApiError, explain, getCsv, getData, keyStore } from "./api.js";
import { $, el } from "./dom.js";
import {
  COMPANY_ROWS, TREND_LIST, renderAllowance, renderBreakdown, renderCompanies, renderTotals, unitsOf,
} from "./render.js";
import { destroyChart, drawChart } from "./usage-chart.js";
import {
  addDays, browserTimeZone, fits, iso, isTimeZone, presetWindow, timeZones, today, windowText,
} from "./time.js";

const GRANULARITIES = ["hour", "day", "week", "month"];
const DEFAULTS = { period: "30d", granularity: "day", sort: "name", dir: "asc" };

let loads = 0; // how many views were drawn: tests and the benchmark wait on it
let current = 0; // the latest load; answers of older ones are dropped
let shown = null; // what the page shows: {usage, series, trends, asked, plans, view, params}
const allowances = new Map(); // companyId ("" = every company) -> the plans
let companyRows = COMPANY_ROWS; // rows of the companies table drawn ("Show all" lifts it)
// The companies whose trend lines the table drew last: the next view asks for them at once.
let trendIds = [];
let trendTimer = 0; // a filter being typed asks for trend lines once it rests
let trendsPending = 0; // trend line requests under way (tests wait for none)

/** The view is kept in the URL's fragment (never the key): bookmarkable, never sent to a server. */
function readView() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const get = (name) => hash.get(name) ?? DEFAULTS[name] ?? "";
  return {
    period: get("period"), from: get("from"), to: get("to"),
    granularity: GRANULARITIES.includes(get("granularity")) ? get("granularity") : "day",
    tz: isTimeZone(get("tz")) ? get("tz") : browserTimeZone(), company: get("company"), unit: get("unit"),
    sort: get("sort"), dir: get("dir") === "desc" ? "desc" : "asc", filter: get("q"),
  };
}

function fragment(view) {
  const hash = new URLSearchParams();
  const entries = {
    period: view.period, from: view.period === "custom" ? view.from : "", to: view.period === "custom" ? view.to : "",
    granularity: view.granularity, tz: view.tz, company: view.company, unit: view.unit,
    sort: view.sort, dir: view.dir, q: view.filter,
  };
  for (const [name, value] of Object.entries(entries)) {
    if (value && value !== DEFAULTS[name]) hash.set(name, value);
  }
  return `#${hash.toString()}`;
}

function writeView(view) {
  history.replaceState(null, "", fragment(view));
}

const hrefFor = (companyId) => fragment({ ...readView(), company: companyId, filter: "" });

function viewFromControls() {
  return {
    ...readView(),
    period: $("#period").value, from: $("#from").value, to: $("#to").value,
    granularity: $("#granularity").value, tz: $("#time-zone").value, unit: $("#unit").value,
  };
}

function setControls(view) {
  $("#period").value = view.period;
  $("#from").value = view.from;
  $("#to").value = view.to;
  $("#granularity").value = view.granularity;
  $("#time-zone").value = view.tz;
  $("#filter").value = view.filter;
  for (const field of document.querySelectorAll(".field.custom")) field.hidden = view.period !== "custom";
}

// --- signing in and out ----------------------------------------------------

function showSignIn(message = "") {
  $("#dashboard").hidden = true;
  $("#sign-out").hidden = true;
  $("#sign-in").hidden = false;
  $("#sign-in-error").textContent = message;
  $("#api-key").value = "";
  $("#api-key").focus();
}

function showDashboard() {
  $("#sign-in").hidden = true;
  $("#sign-out").hidden = false;
  $("#dashboard").hidden = false;
}

function signOut(message = "") {
  keyStore.clear();
  allowances.clear();
  companyRows = COMPANY_ROWS;
  trendIds = [];
  shown = null;
  destroyChart();
  showSignIn(message);
}

async function signIn(event) {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (!key) {
    $("#sign-in-error").textContent = "Enter an API key.";
    return;
  }
  const button = $("#sign-in-button");
  button.disabled = true;
  $("#sign-in-error").textContent = "Checking the key…";
  try {
    // The allowance answer checks the key and is the first view's (cached): no request twice.
    await getData("/billing/allowance", {}, key).then(
      (data) => allowances.set("", Promise.resolve(data.companies)),
      (error) => {
        if (!(error instanceof ApiError) || error.status !== 404) throw error;
        return getData("/billing/usage", {}, key); // a server without plans
      },
    );
  } catch (error) {
    $("#sign-in-error").textContent = explain(error);
    $("#api-key").focus();
    return;
  } finally {
    button.disabled = false;
  }
  keyStore.set(key);
  $("#api-key").value = "";
  showDashboard();
  await load();
  $("#main").focus();
}

// --- loading a view ---------------------------------------------------------

async function plansFor(company) {
  if (!allowances.has(company)) {
    const request = getData("/billing/allowance", { companyId: company }).then(
      (data) => data.companies,
      (error) => {
        allowances.delete(company);
        throw error;
      },
    );
    allowances.set(company, request);
  }
  return allowances.get(company);
}

/** The plans' common billing period, or null when there is none (or they differ). */
function billingWindow(plans) {
  if (plans.length === 0) return null;
  const [first] = plans;
  const same = plans.every((p) => p.periodStart === first.periodStart && p.periodEnd === first.periodEnd);
  return same ? [Date.parse(first.periodStart), Date.parse(first.periodEnd)] : null;
}

/** The window and granularity to show, adjusting choices the data or the API cannot honour. */
function resolve(view, plans) {
  const billing = billingWindow(plans);
  const option = $("#period option[value=billing]");
  option.disabled = billing === null;
  option.textContent = billing === null ? "This billing period (no common plan)" : "This billing period";
  if (view.period === "billing" && billing === null) view.period = "30d";
  if (view.period === "custom" && (!view.from || !view.to || view.to < view.from)) {
    const day = today(view.tz);
    view.from = view.from || addDays(day, -29);
    view.to = view.to >= view.from ? view.to : addDays(view.from, 29);
  }
  const window = presetWindow(view.period, view.tz, { from: view.from, to: view.to, billing });
  for (const option of $("#granularity").options) option.disabled = !fits(option.value, window);
  if (!fits(view.granularity, window)) view.granularity = GRANULARITIES.find((g) => fits(g, window));
  return window;
}

function setBusy(busy) {
  document.body.classList.toggle("loading", busy);
  $("#dashboard").setAttribute("aria-busy", String(busy));
  $("#status").textContent = busy ? "Loading…" : "";
  if (busy) $("#announce").textContent = "Loading…";
}

function showError(message) {
  const banner = $("#error");
  banner.hidden = !message;
  banner.textContent = message;
}

/** A server without the series endpoint answers 404: the page shows the rest. */
function missing(error) {
  if (error instanceof ApiError && error.status === 404) return null;
  throw error;
}

/**
 * The series of a view: the top-level buckets (the chart) and the buckets of the companies
 * `ids` only (trend lines), never every company's (6 MB for 1,000 companies by day).
 */
function seriesOf(params, ids) {
  const ask = (list) => getData("/billing/usage/series", {
    ...params, companySeries: list.length ? list.join(",") : "none",
  });
  // A company that left the key's reach since the last view: ask for none, fetch the rest after.
  return ask(ids).catch((error) => {
    if (ids.length && error instanceof ApiError && error.code === "COMPANY_NOT_ACCESSIBLE") return ask([]);
    throw error;
  });
}

function setTrendsPending(change) {
  trendsPending += change;
  document.body.dataset.trendsPending = String(trendsPending);
}

/** Ask for the trend lines the table draws without having them (once per view and company). */
function fetchTrends(drawn, delay) {
  clearTimeout(trendTimer);
  const state = shown;
  if (!state?.series) return;
  const wanted = drawn.filter((id) => !state.trends.has(id) && !state.asked.has(id));
  if (wanted.length === 0) return;
  trendTimer = setTimeout(async () => {
    for (const id of wanted) state.asked.add(id);
    // More than a list holds ("Show all"): one answer with every company.
    const companySeries = wanted.length > TREND_LIST ? "all" : wanted.join(",");
    setTrendsPending(1);
    try {
      const data = await getData("/billing/usage/series", { ...state.params, companySeries });
      for (const company of data.companies) state.trends.set(company.companyId, company);
      if (shown === state) companyTable(readView());
    } catch (error) {
      if (shown !== state) return;
      if (error instanceof ApiError && error.status === 401) signOut(explain(error));
      else showError(explain(error));
    } finally {
      setTrendsPending(-1);
    }
  }, delay);
}

async function load() {
  if (!keyStore.get()) return;
  const token = ++current;
  const view = readView();
  setControls(view);
  setBusy(true);
  try {
    let plans;
    try {
      plans = await plansFor(view.company);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
      plans = []; // a server without plans
    }
    const window = resolve(view, plans);
    setControls(view);
    writeView(view);
    const params = { start: iso(window[0]), end: iso(window[1]), companyId: view.company };
    const seriesParams = { ...params, granularity: view.granularity, timeZone: view.tz };
    const [usage, series] = await Promise.all([
      getData("/billing/usage", params),
      seriesOf(seriesParams, view.company ? [] : trendIds).catch(missing),
    ]);
    if (token !== current) return;
    const trends = new Map((series?.companies ?? []).map((c) => [c.companyId, c]));
    shown = { usage, series, trends, asked: new Set(), plans, view, params: seriesParams, window };
    draw();
    showError("");
  } catch (error) {
    if (token !== current) return;
    if (error instanceof ApiError && error.status === 401) {
      signOut(explain(error));
      return;
    }
    showError(explain(error));
    $("#announce").textContent = "";
  } finally {
    if (token === current) {
      setBusy(false);
      document.body.dataset.loads = String(++loads);
      performance.mark("tally:view"); // bench/dashboard.py reads these
    }
  }
}

function draw() {
  clearTimeout(trendTimer); // trend lines of the previous view are no longer wanted
  const { usage, series, plans, view, window } = shown;
  const narrowed = Boolean(view.company);
  const single = usage.companies.length === 1;
  const title = narrowed || single ? usage.companies[0]?.companyName ?? "Usage" : `All companies (${usage.companies.length})`;
  $("#scope-title").textContent = title;
  $("#all-companies").hidden = !narrowed;
  $("#all-companies").href = fragment({ ...view, company: "" });

  const units = unitsOf(usage);
  const unit = units.includes(view.unit) ? view.unit : units[0] ?? "minutes";
  $("#unit-field").hidden = units.length < 2;
  $("#unit").value = unit;

  const period = $("#period-text");
  period.textContent = `${windowText(window, view.tz)} · ${view.tz}`;
  period.dataset.start = shown.params.start;
  period.dataset.end = shown.params.end;

  renderAllowance(plans, view.tz);
  renderTotals(usage);
  drawSeries(series, unit, view);
  $("#companies").hidden = narrowed || single;
  if (!narrowed && !single) companyTable(view);
  renderBreakdown(usage);
  $("#announce").textContent = `Showing ${title}, ${windowText(window, view.tz)}.`;
}

function drawSeries(series, unit, view) {
  const figure = $("#chart-figure");
  figure.querySelector(".chart-box").hidden = series === null;
  if (series === null) {
    destroyChart();
    figure.dataset.buckets = "0";
    $("#chart-empty").hidden = false;
    $("#chart-empty").textContent = "This server does not offer usage over time.";
    $("#chart-caption").textContent = "";
    return;
  }
  const drawn = drawChart($("#chart"), series, unit);
  figure.dataset.buckets = String(drawn.buckets);
  $("#chart-empty").hidden = !drawn.empty;
  $("#chart-empty").textContent = "No usage in this period.";
  $("#chart-caption").textContent =
    `${unit} per ${view.granularity}, stacked by cost key, ${drawn.buckets} buckets in ${view.tz}`;
}

async function downloadCsv() {
  if (!shown) return;
  const button = $("#download-csv");
  button.disabled = true;
  try {
    const { name, blob } = await getCsv(shown.params);
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    $("#announce").textContent = `Downloaded ${name}.`;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) signOut(explain(error));
    else showError(explain(error));
  } finally {
    button.disabled = false;
  }
}

/** Draw the companies table; the trend lines it lacks are asked for after `delay` ms. */
function companyTable(view, delay = 0) {
  if (!shown) return;
  const drawn = renderCompanies(shown.usage, shown.trends, shown.plans, view, hrefFor, companyRows);
  trendIds = drawn.slice(0, TREND_LIST);
  fetchTrends(drawn, delay);
}

function sortBy(column) {
  const view = readView();
  view.dir = view.sort === column && view.dir === "asc" ? "desc" : "asc";
  view.sort = column;
  writeView(view);
  companyTable(view);
}

function start() {
  const zones = timeZones([browserTimeZone(), readView().tz]);
  $("#time-zone").replaceChildren(...zones.map((zone) => el("option", { value: zone }, zone)));

  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", () => signOut("Signed out. The key is forgotten."));
  $("#controls").addEventListener("submit", (event) => event.preventDefault());
  $("#controls").addEventListener("change", (event) => {
    if (event.target.id === "filter") return;
    writeView(viewFromControls());
    load();
  });
  $("#download-csv").addEventListener("click", downloadCsv);
  $("#show-all-companies").addEventListener("click", () => {
    companyRows = Infinity;
    companyTable(readView());
  });
  $("#filter").addEventListener("input", () => {
    const view = { ...readView(), filter: $("#filter").value };
    writeView(view);
    companyTable(view, 250);
  });
  for (const th of document.querySelectorAll("#company-table th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sort));
  }
  window.addEventListener("hashchange", () => load());

  if (keyStore.get()) {
    showDashboard();
    load();
  } else {
    showSignIn();
  }
}

start();
