// Calendar arithmetic in any IANA time zone, with Intl only (no library).

// Building an Intl.DateTimeFormat costs far more than formatting with one:
// each (kind, zone) gets one, kept for the page's life (a few dozen at most).
const formats = new Map();

function format(kind, timeZone, options, locale = undefined) {
  const name = `${kind} ${timeZone}`;
  let made = formats.get(name);
  if (!made) {
    made = new Intl.DateTimeFormat(locale, { timeZone, ...options });
    formats.set(name, made);
  }
  return made;
}

const partsOptions = {
  hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
  hour: "numeric", minute: "numeric", second: "numeric",
};

function partsFormat(timeZone) {
  return format("parts", timeZone, partsOptions, "en-US");
}

/** The wall-clock fields of an instant (ms since epoch) in a zone. */
export function localParts(ms, timeZone) {
  const fields = {};
  for (const part of partsFormat(timeZone).formatToParts(new Date(ms))) fields[part.type] = part.value;
  return {
    year: Number(fields.year), month: Number(fields.month), day: Number(fields.day),
    hour: Number(fields.hour) % 24, minute: Number(fields.minute), second: Number(fields.second),
  };
}

function offset(ms, timeZone) {
  const p = localParts(ms, timeZone);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

/** The instant of local midnight starting a calendar day (day may overflow: Jan 32 = Feb 1). */
export function midnight(year, month, day, timeZone) {
  const wall = Date.UTC(year, month - 1, day);
  let ms = wall - offset(wall, timeZone);
  const corrected = wall - offset(ms, timeZone);
  if (corrected !== ms) ms = corrected;
  return ms;
}

/** A yyyy-mm-dd date shifted by whole days (pure calendar arithmetic). */
export function addDays(date, days) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

export function today(timeZone, now = Date.now()) {
  const p = localParts(now, timeZone);
  return `${p.year}-${String(p.month).padStart(2, "0")}-${String(p.day).padStart(2, "0")}`;
}

function dateMidnight(date, timeZone) {
  const [y, m, d] = date.split("-").map(Number);
  return midnight(y, m, d, timeZone);
}

/**
 * The window [start, end) of a period preset, as ms since epoch.
 * Calendar presets cover whole local days, so their buckets are whole too.
 */
export function presetWindow(preset, timeZone, { from, to, billing } = {}, now = Date.now()) {
  const p = localParts(now, timeZone);
  switch (preset) {
    case "billing":
      return billing ?? null;
    case "30d": {
      const day = today(timeZone, now);
      return [dateMidnight(addDays(day, -29), timeZone), dateMidnight(addDays(day, 1), timeZone)];
    }
    case "month":
      return [midnight(p.year, p.month, 1, timeZone), midnight(p.year, p.month + 1, 1, timeZone)];
    case "lastmonth":
      return [midnight(p.year, p.month - 1, 1, timeZone), midnight(p.year, p.month, 1, timeZone)];
    case "year":
      return [midnight(p.year, 1, 1, timeZone), midnight(p.year + 1, 1, 1, timeZone)];
    case "custom":
      if (!from || !to || to < from) return null;
      return [dateMidnight(from, timeZone), dateMidnight(addDays(to, 1), timeZone)];
    default:
      return null;
  }
}

/** An instant as the API writes it: UTC, ISO 8601 with Z, no milliseconds when whole. */
export function iso(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

const HOUR = 3_600_000;
const SIZES = { hour: HOUR, day: 23 * HOUR, week: 7 * 23 * HOUR, month: 28 * 23 * HOUR };

/** Whether a granularity stays under the API's 1,000 buckets for a window (a safe estimate). */
export function fits(granularity, [start, end]) {
  return (end - start) / SIZES[granularity] < 999;
}

const labelOptions = {
  hour: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" },
  day: { month: "short", day: "numeric" },
  week: { month: "short", day: "numeric" },
  month: { month: "short", year: "numeric" },
};

/** A bucket's label: its local start, in the browser's language. */
export function bucketLabel(startIso, granularity, timeZone) {
  return format(granularity, timeZone, labelOptions[granularity]).format(new Date(startIso));
}

/** A human window "1 Nov 2026 – 30 Nov 2026" (end exclusive, shown inclusive). */
export function windowText([start, end], timeZone) {
  const medium = format("window", timeZone, { dateStyle: "medium" });
  return `${medium.format(new Date(start))} – ${medium.format(new Date(end - 1))}`;
}

// ICU still calls some zones by their old names (Asia/Calcutta); offer the current IANA ones too.
const CURRENT_NAMES = [
  "America/Nuuk", "Asia/Ho_Chi_Minh", "Asia/Kathmandu", "Asia/Kolkata", "Asia/Yangon",
  "Atlantic/Faroe", "Europe/Kyiv", "Pacific/Chuuk", "Pacific/Kanton", "Pacific/Pohnpei",
];

const zoneChecks = new Map();

export function isTimeZone(name) {
  let known = zoneChecks.get(name);
  if (known === undefined) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: name });
      known = Boolean(name);
    } catch {
      known = false;
    }
    zoneChecks.set(name, known);
  }
  return known;
}

/** UTC first, then every zone the browser knows, by name. */
export function timeZones(extra = []) {
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const names = new Set([...known, ...CURRENT_NAMES, ...extra].filter((zone) => zone !== "UTC" && isTimeZone(zone)));
  return ["UTC", ...[...names].sort()];
}

export function browserTimeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
