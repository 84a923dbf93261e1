// The API client of the page: JSON in and out, errors as ApiError, and the token (if the server
// asks for one) kept in this tab's sessionStorage.

export const BASE = "/tasky/v1";
const TOKEN_KEY = "tasky.token";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.Error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
  get fields() {
    return Array.isArray(this.body.Fields) ? this.body.Fields : [];
  }
}

export function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let asking = null;

/** Show the token dialog once (concurrent 401s share it); resolves when a token was entered. */
export function askToken(rejected = false) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const error = document.getElementById("token-error");
  error.textContent = rejected ? "That token was not accepted." : "";
  asking = new Promise((resolve) => {
    const submit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      form.removeEventListener("submit", submit);
      dialog.close();
      asking = null;
      resolve();
    };
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", (event) => event.preventDefault(), { once: true });
    dialog.showModal();
    input.focus();
  });
  return asking;
}

export async function api(path, { method = "GET", body, query, signal } = {}) {
  let url = BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  for (let tries = 0; ; tries++) {
    const headers = { Accept: "application/json", ...authHeaders() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (response.status === 401 && tries < 5) {
      await askToken(tries > 0 || Boolean(sessionStorage.getItem(TOKEN_KEY)));
      continue;
    }
    let data = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("json")) data = await response.json();
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }
}
