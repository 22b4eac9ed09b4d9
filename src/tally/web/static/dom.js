// Small DOM and number helpers.

export const $ = (selector, root = document) => root.querySelector(selector);

/** Create an element: el("td", {className: "num"}, child, "text"). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node && !name.includes("-")) node[name] = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const formats = new Map();

function numberFormat(digits) {
  let format = formats.get(digits);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { maximumFractionDigits: digits });
    formats.set(digits, format);
  }
  return format;
}

/** A number in the browser's locale; hovering shows the exact value the API sent. */
export function num(value, digits = 2) {
  return el("span", { className: "n", title: String(value) }, numberFormat(digits).format(value));
}

export function formatNumber(value, digits = 2) {
  return numberFormat(digits).format(value);
}

export const UNIT_FIELDS = { minutes: "MinutesUsed", credits: "CreditsUsed" };

/** The "minutesUsed"/"creditsUsed" style field name of a unit. */
export function usedField(unit, total = false) {
  const field = UNIT_FIELDS[unit];
  return total ? `total${field}` : field[0].toLowerCase() + field.slice(1);
}

/** The amount a company used, in its own unit. */
export function companyUsed(company) {
  return company.billingSystem === "credits" ? company.totalCreditsUsed : company.totalMinutesUsed;
}

/** A small SVG trend line of values (no axes; its label says what it shows). */
export function sparkline(values, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const width = 96;
  const height = 24;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.classList.add("spark");
  const max = Math.max(...values, 0);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values.map((value, i) => {
    const y = max > 0 ? height - 2 - (value / max) * (height - 4) : height - 2;
    return `${(i * step).toFixed(1)},${y.toFixed(1)}`;
  });
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  svg.append(line);
  return svg;
}
