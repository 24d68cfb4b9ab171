// The admin API client: every call goes to /api/v1 with the admin token as a Bearer
// credential. The token lives in localStorage ("remember me") or sessionStorage.

const KEY = "flywheel.token";

export function token() {
  return localStorage.getItem(KEY) || sessionStorage.getItem(KEY) || "";
}

export function setToken(value, remember) {
  clearToken();
  (remember ? localStorage : sessionStorage).setItem(KEY, value);
}

export function clearToken() {
  localStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY);
}

/** An error answered by the API: HTTP status, stable code, human message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called with the error when the API refuses the token (401). */
let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/** A query string from an object; empty and null values are left out. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** Percent-encodes one path segment. */
export const seg = (s) => encodeURIComponent(s);

/**
 * Calls `/api/v1<path>`; resolves to the JSON body, rejects with an ApiError.
 * Errors come as {"code","message"} or {"error":{"code","message"}}.
 */
export async function api(path, { method = "GET", body, signal, tokenOverride } = {}) {
  const headers = { Authorization: `Bearer ${tokenOverride ?? token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network", e.message);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = (data && (data.error || data)) || {};
    const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText);
    if (res.status === 401 && tokenOverride === undefined) onUnauthorized(err);
    throw err;
  }
  return data;
}
