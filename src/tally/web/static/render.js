// The parts of the page drawn from the API's answers.

import { $, el, num, formatNumber, companyUsed, sparkline, usedField } from "./dom.js";
import { windowText } from "./time.js";

const UNITS = ["minutes", "credits"];

/** Units present in a usage answer (the API includes a total only for units in scope). */
export function unitsOf(usage) {
  return UNITS.filter((unit) => usedField(unit, true) in usage);
}

function percentOf(value, allowance) {
  return (value / allowance) * 100;
}

function planCard(plan, timeZone) {
  const projectedPercent = percentOf(plan.projectedUsed, plan.allowance);
  const thresholds = plan.thresholds ?? plan.crossedThresholds ?? [];
  const scale = Math.min(1000, Math.max(100, plan.percentUsed, projectedPercent, ...thresholds));
  const at = (percent) => `${Math.min(100, (percent / scale) * 100)}%`;

  const fill = el("div", { className: `fill ${plan.status}` });
  fill.style.width = at(plan.percentUsed);
  const projected = el("div", { className: "projected", title: `projected ${plan.projectedUsed}` });
  projected.style.width = at(projectedPercent);
  const bar = el("div", {
    className: "bar", role: "img",
    "aria-label": `${formatNumber(plan.percentUsed)} % of the allowance used; ` +
      `projected ${formatNumber(projectedPercent)} % by the end of the period`,
  }, projected, fill);
  for (const threshold of [...new Set([...thresholds, 100])]) {
    const tick = el("span", { className: "tick", title: `${threshold} %` });
    tick.style.left = at(threshold);
    bar.append(tick);
  }
  const crossed = plan.crossedThresholds.length
    ? plan.crossedThresholds.map((t) => `${t} %`).join(", ")
    : "none";
  const status = plan.status === "exceeded" ? "Exceeded" : "Within plan";
  return el("article", { className: "plan card", dataset: { companyId: plan.companyId } },
    el("h3", {}, plan.companyName, " ", el("span", { className: `badge ${plan.status}` }, status)),
    el("p", { className: "when" },
      `Billing period ${windowText([Date.parse(plan.periodStart), Date.parse(plan.periodEnd)], timeZone)}`),
    bar,
    el("dl", { className: "facts" },
      el("div", {}, el("dt", {}, "Used"), el("dd", { className: "used" }, num(plan.used), ` ${plan.unit}`)),
      el("div", {}, el("dt", {}, "Remaining"), el("dd", { className: "remaining" }, num(plan.remaining))),
      el("div", {}, el("dt", {}, "Percent"), el("dd", { className: "percent" }, num(plan.percentUsed), " %")),
      el("div", {}, el("dt", {}, "Projected"), el("dd", { className: "projected-used" }, num(plan.projectedUsed))),
      el("div", {}, el("dt", {}, "Allowance"), el("dd", { className: "allowance" }, num(plan.allowance))),
      el("div", {}, el("dt", {}, "Thresholds crossed"), el("dd", { className: "crossed" }, crossed)),
    ),
  );
}

export function renderAllowance(plans, timeZone) {
  const section = $("#allowance");
  section.hidden = plans.length === 0;
  $("#allowance-list").replaceChildren(...plans.map((plan) => planCard(plan, timeZone)));
}

function totalsEntry(id, label, value, unit = "") {
  return el("div", { className: "total", id },
    el("dt", {}, label), el("dd", {}, num(value), unit ? el("span", { className: "unit" }, ` ${unit}`) : null));
}

export function renderTotals(usage) {
  const events = usage.breakdownByCostKey.reduce((sum, entry) => sum + entry.events, 0);
  const entries = [];
  if ("totalMinutesUsed" in usage) entries.push(totalsEntry("total-minutes", "Minutes used", usage.totalMinutesUsed));
  if ("totalCreditsUsed" in usage) entries.push(totalsEntry("total-credits", "Credits used", usage.totalCreditsUsed));
  entries.push(totalsEntry("total-interviews", "Interviews", usage.totalInterviews));
  entries.push(totalsEntry("total-events", "Events", events));
  $("#totals").replaceChildren(...entries);
}

export function renderBreakdown(usage) {
  const units = unitsOf(usage);
  const head = [el("th", { scope: "col" }, "Cost key"), el("th", { scope: "col", className: "num" }, "Events")];
  for (const unit of units) head.push(el("th", { scope: "col", className: "num" }, unit[0].toUpperCase() + unit.slice(1)));
  $("#breakdown-table thead tr").replaceChildren(...head);
  const rows = usage.breakdownByCostKey.map((entry) => el("tr", { dataset: { costKey: entry.costKey } },
    el("th", { scope: "row" }, entry.costKey),
    el("td", { className: "num events" }, num(entry.events)),
    ...units.map((unit) => el("td", { className: `num ${unit}` }, num(entry[usedField(unit)]))),
  ));
  $("#breakdown-table tbody").replaceChildren(...rows);
  $("#breakdown-table").hidden = rows.length === 0;
  $("#breakdown-empty").hidden = rows.length > 0;
}

const SORTS = {
  name: (a, b) => (a.companyName < b.companyName ? -1 : a.companyName > b.companyName ? 1 : 0),
  billing: (a, b) => a.billingSystem.localeCompare(b.billingSystem),
  used: (a, b) => a.used - b.used,
  percent: (a, b) => (a.percent ?? -1) - (b.percent ?? -1),
};

/** Rows the companies table draws at first; "Show all" draws the rest (a platform key has 1,000). */
export const COMPANY_ROWS = 100;
/** Most company ids one series request lists (the API's `companySeries` limit). */
export const TREND_LIST = 100;

function trendLine(company, trends) {
  const series = trends.get(company.companyId);
  const what = `trend of ${company.companyName}'s ${company.billingSystem}`;
  if (!series) return sparkline([], `${what}: loading`);
  const field = usedField(series.billingSystem, true);
  const line = sparkline(series.buckets.map((b) => b[field] ?? 0), what);
  line.dataset.values = series.buckets.map((b) => b[field] ?? 0).join(" "); // tests compare them
  return line;
}

/**
 * The companies table: sorted, filtered, each name a link narrowing the view to it.
 * Only the first `limit` rows are drawn (with their trend lines, from `trends`: companyId ->
 * its series entry); the rest on request. Returns the ids of the rows drawn.
 */
export function renderCompanies(usage, trends, plans, view, hrefFor, limit = COMPANY_ROWS) {
  const plansById = new Map(plans.map((plan) => [plan.companyId, plan]));
  const needle = view.filter.trim().toLocaleLowerCase();
  const rows = usage.companies
    .map((company) => ({
      ...company,
      used: companyUsed(company),
      percent: plansById.get(company.companyId)?.percentUsed ?? null,
    }))
    .filter((c) => !needle || c.companyName.toLocaleLowerCase().includes(needle));
  rows.sort(SORTS[view.sort] ?? SORTS.name);
  if (view.dir === "desc") rows.reverse();

  for (const th of document.querySelectorAll("#company-table th[data-sort]")) {
    const active = th.dataset.sort === view.sort;
    if (active) th.setAttribute("aria-sort", view.dir === "desc" ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
  const drawn = rows.length > limit ? rows.slice(0, limit) : rows;
  const body = drawn.map((c) => el("tr", { dataset: { companyId: c.companyId } },
    el("th", { scope: "row" }, el("a", { href: hrefFor(c.companyId) }, c.companyName)),
    el("td", { className: "billing" }, c.billingSystem),
    el("td", { className: "num used" }, num(c.used), el("span", { className: "unit" }, ` ${c.billingSystem}`)),
    el("td", { className: "num percent" }, c.percent === null ? el("span", { className: "muted" }, "no plan") : num(c.percent), c.percent === null ? null : " %"),
    el("td", { className: "trend" }, trendLine(c, trends)),
  ));
  $("#company-table tbody").replaceChildren(...body);
  $("#companies-more").hidden = drawn.length === rows.length;
  $("#companies-count").textContent =
    `Showing ${formatNumber(drawn.length)} of ${formatNumber(rows.length)} companies.`;
  const empty = $("#companies-empty");
  empty.hidden = body.length > 0;
  empty.textContent = usage.companies.length === 0
    ? "No companies are within this key's reach yet."
    : "No company matches the filter.";
  return drawn.map((c) => c.companyId);
}
