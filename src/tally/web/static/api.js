// The public API, called with the key kept in this tab's sessionStorage only.

const KEY = "tally.apiKey";

export const keyStore = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function send(path, params, key) {
  let response;
  try {
    response = await fetch(path + query(params), {
      headers: { Authorization: `Bearer ${key ?? keyStore.get() ?? ""}` },
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "NETWORK", `Cannot reach tally at ${location.origin}.`);
  }
  if (response.ok) return response;
  let code = "HTTP_ERROR";
  let message = `Unexpected answer from tally (HTTP ${response.status}).`;
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // Not the envelope (a proxy's page, say): the generic message stands.
  }
  const retryAfter = Number(response.headers.get("Retry-After")) || null;
  throw new ApiError(response.status, code, message, retryAfter);
}

/** GET a JSON endpoint and return its envelope's data. */
export async function getData(path, params = {}, key = undefined) {
  const response = await send(path, params, key);
  return (await response.json()).data;
}

/** GET the CSV endpoint: the file's name and its contents. */
export async function getCsv(params) {
  const response = await send("/billing/usage.csv", params);
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const match = /filename="([^"]+)"/.exec(disposition);
  return { name: match ? match[1] : "usage.csv", blob: await response.blob() };
}

/** A message people can act on, for any failure. */
export function explain(error) {
  if (!(error instanceof ApiError)) return "Something went wrong in the page. Reload it and try again.";
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : " Try again shortly.";
  switch (error.code) {
    case "INVALID_API_KEY":
      return "This API key was not accepted: it is wrong, revoked or expired, or not allowed from this address.";
    case "RATE_LIMITED":
      return `Too many requests with this key.${wait}`;
    case "INSUFFICIENT_SCOPE":
      return "This key cannot read usage: it needs the read:billing scope.";
    case "COMPANY_NOT_ACCESSIBLE":
      return "That company is not within this key's reach.";
    case "SERVICE_UNAVAILABLE":
      return `tally is busy right now.${wait}`;
    default:
      return error.message;
  }
}
