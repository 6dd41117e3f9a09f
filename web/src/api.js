// The public API client: bearer token, one error shape, and what each status means to a person.

export class ApiError extends Error {
  constructor(status, body, path) {
    const info = (body && body.error) || {};
    super(info.message || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = info.code || (status === 0 ? "NETWORK" : `HTTP_${status}`);
    this.field = info.field || null;
    this.rule = info.rule || null;
    this.details = info.details || info.errors || null;
    this.path = path;
  }

  // What the person at the screen should read (and do).
  get explanation() {
    switch (this.status) {
      case 0:
        return "The service does not answer. Check that it is running; retrying.";
      case 401:
        return "You are not signed in, or your session expired. Sign in again.";
      case 403:
        return "Your account is not allowed to do this (it lacks the group this needs).";
      case 404:
        return "Not available on this server yet.";
      case 409:
        return `Conflict: ${this.message}`;
      case 422: {
        const where = this.field ? ` (${this.field})` : this.rule ? ` (rule ${this.rule})` : "";
        return `Refused${where}: ${this.message}`;
      }
      case 429:
        return "Too many requests; slow down and retry.";
      case 503:
        return "A service behind the API is unavailable right now; retry in a moment.";
      default:
        return `${this.code}: ${this.message}`;
    }
  }
}

export function createApi(config, getToken, onUnauthorized) {
  const base = config.apiBase.replace(/\/$/, "");
  async function request(method, path, { body, query, headers } = {}) {
    const url = new URL(base + path, window.location.href);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
    }
    const init = { method, headers: { Accept: "application/json", ...(headers || {}) } };
    const token = getToken();
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, null, path);
    }
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!response.ok) {
      const error = new ApiError(response.status, parsed, path);
      if (response.status === 401) onUnauthorized(error);
      throw error;
    }
    return parsed;
  }
  return {
    get: (path, query) => request("GET", path, { query }),
    post: (path, body, headers) => request("POST", path, { body, headers }),
    put: (path, body) => request("PUT", path, { body }),
  };
}

export const TRADING = "/trading/intelligent";
export const ADMIN = "/admin";
