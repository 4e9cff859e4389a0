// The pages' one way to the API: sign-in (the dev token locally, a pasted bearer token from the
// identity provider in production), fetch with that token, and the live stream over the WebSocket.
// Shared by every page (/app, /ops): nothing page-specific belongs here.

const TOKEN_KEY = "badges.token";

/** A problem-details answer (RFC 9457) or a network failure, with what to show. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.slug = String(this.problem.type || "").replace("urn:badges:problem:", "");
  }
}

/** The token this tab signed in with (sessionStorage: gone when the tab closes), or null. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** The token's claims (not verified here: the API verifies every request), or null. */
export function claims(raw = token()) {
  if (!raw) return null;
  try {
    const part = raw.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)));
    const parsed = JSON.parse(json);
    return { ...parsed, scopes: String(parsed.scope || "").split(" ").filter(Boolean) };
  } catch {
    return null;
  }
}

function signedIn(raw) {
  const parsed = claims(raw);
  if (!parsed || !parsed.sub) throw new ApiError(0, { detail: "That is not a bearer token (a JWT)." });
  if (parsed.exp && parsed.exp * 1000 < Date.now()) throw new ApiError(0, { detail: "That token has expired." });
  sessionStorage.setItem(TOKEN_KEY, raw);
  return parsed;
}

/** Local development only: a token from POST /v1/dev/token (404 when BADGES_ENV is not dev). */
export async function devSignIn(sub, scopes) {
  const answer = await request("/v1/dev/token", { method: "POST", body: { sub, scopes }, anonymous: true });
  return signedIn(answer.access_token);
}

/** A bearer token from the identity provider's login, pasted or handed over by it. */
export function tokenSignIn(raw) {
  return signedIn(raw.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  document.dispatchEvent(new CustomEvent("badges:signed-out"));
}

async function request(path, { method = "GET", body, anonymous = false, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (!anonymous) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, { detail: `The service could not be reached (${error.message}).` });
  }
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = { detail: `${response.status} ${response.statusText}` };
    }
    if (response.status === 401 && !anonymous) signOut();
    throw new ApiError(response.status, problem);
  }
  if (raw) return response;
  if (!(response.headers.get("content-type") || "").includes("json")) return null;
  return response.json();
}

/** JSON from the API with this tab's bearer token; throws ApiError (a 401 signs out). */
export function api(path, options = {}) {
  return request(path, options);
}

/** Saves what `path` answers as a file (e.g. an export), fetched with the bearer token. */
export async function download(path, filename) {
  const response = await request(path, { raw: true });
  saveBlob(await response.blob(), filename);
}

/** Offers `blob` to the browser as a file named `filename`. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * The member's live stream: `WS /v1/me/ws`, the token offered as the `bearer` subprotocol (a
 * browser can set no header on a WebSocket, and a token in a URL ends up in logs and history).
 * Reconnects after a drop, resuming after the last id seen (`?lastEventId=`), so nothing is missed.
 * onMessage({id, type, data}); onState("live" | "reconnecting" | "signed-out").
 */
export function openStream({ onMessage, onState = () => {} }) {
  let socket = null;
  let lastId = null;
  let closed = false;
  let delay = 500;
  let timer = null;

  const connect = () => {
    const raw = token();
    if (!raw) {
      onState("signed-out");
      return;
    }
    const url = new URL("/v1/me/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (lastId !== null) url.searchParams.set("lastEventId", String(lastId));
    socket = new WebSocket(url, ["bearer", raw]);
    socket.addEventListener("open", () => {
      delay = 500;
      onState("live");
    });
    socket.addEventListener("message", (frame) => {
      const message = JSON.parse(frame.data);
      if (message.type === "error" || message.type === "ack" || message.type === "pong") return;
      if (typeof message.id === "number") lastId = message.id;
      onMessage(message);
    });
    socket.addEventListener("close", (closing) => {
      if (closed) return;
      // 1008: the token was refused or has expired; a fresh sign-in is needed.
      if (closing.code === 1008) {
        onState("signed-out");
        return;
      }
      onState("reconnecting");
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15_000);
    });
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      socket?.close(1000);
    },
  };
}

/**
 * A sign-in form in `root`: a name for a development token (shown only where the API issues them)
 * and a field for a bearer token from the identity provider. `scopes`: the scopes a development
 * token may ask for (one: fixed; several: the person picks). Calls onSignedIn(claims).
 */
export function mountSignIn(root, { scopes = ["user"], suggestions = [], onSignedIn }) {
  root.replaceChildren();
  const status = el("p", { role: "alert", class: "form-error", hidden: true });
  const fail = (error) => {
    status.textContent = error.message;
    status.hidden = false;
  };

  const name = el("input", { id: "signin-name", name: "sub", autocomplete: "username", required: true });
  if (suggestions.length) {
    const list = el("datalist", { id: "signin-suggestions" }, ...suggestions.map((value) => el("option", { value })));
    name.setAttribute("list", "signin-suggestions");
    root.append(list);
  }
  const scope = el(
    "select",
    { id: "signin-scope", name: "scope" },
    ...scopes.map((value) => el("option", { value }, value)),
  );
  const devForm = el(
    "form",
    { class: "stack", "aria-labelledby": "signin-dev-title" },
    el("h2", { id: "signin-dev-title" }, "Sign in for local use"),
    el("p", { class: "muted" }, "Any name works on a development server (BADGES_ENV=dev)."),
    el("label", { for: "signin-name" }, "Your name or email"),
    name,
    ...(scopes.length > 1 ? [el("label", { for: "signin-scope" }, "Role"), scope] : []),
    el("button", { type: "submit" }, "Sign in"),
  );
  devForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      onSignedIn(await devSignIn(name.value.trim(), [scopes.length > 1 ? scope.value : scopes[0]]));
    } catch (error) {
      fail(error.status === 404 ? new Error("This server issues no development tokens: paste a token below.") : error);
    }
  });

  const pasted = el("textarea", { id: "signin-token", name: "token", rows: 3, required: true, spellcheck: "false" });
  const tokenForm = el(
    "form",
    { class: "stack", "aria-labelledby": "signin-token-title" },
    el("h2", { id: "signin-token-title" }, "Sign in with your organisation's login"),
    el("label", { for: "signin-token" }, "Bearer token from your identity provider"),
    pasted,
    el("button", { type: "submit", class: "secondary" }, "Use this token"),
  );
  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      onSignedIn(tokenSignIn(pasted.value));
    } catch (error) {
      fail(error);
    }
  });
  root.append(status, el("div", { class: "grid two" }, devForm, tokenForm));
  name.focus();
}

/** A small element builder: el("p", {class: "x"}, "text", child, ...). Text is set as text, never HTML. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...present(children));
  return node;
}

/** Children without the null, undefined and false that conditional parts leave: `replaceChildren`
 * and `append` would show those as text. */
export function present(children) {
  return children.flat().filter((child) => child !== null && child !== undefined && child !== false);
}

/** Amounts in minor units as money: money(123456, "GBP") → "£1,234.56". */
export function money(minor, currency = "GBP") {
  if (minor === null || minor === undefined) return "–";
  return new Intl.NumberFormat("en-GB", { style: "currency", currency }).format(minor / 100);
}

/** A share (0.125) as a percentage ("12.5 %"). */
export function percent(share, digits = 1) {
  if (share === null || share === undefined) return "–";
  return `${(share * 100).toFixed(digits)} %`;
}

/** A short notice in the page's live region (role=status), read out by screen readers. */
export function announce(text, { tone = "info", seconds = 6 } = {}) {
  let region = document.getElementById("announcements");
  if (!region) {
    region = el("div", { id: "announcements", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  const toast = el("p", { class: `toast ${tone}` }, text);
  region.append(toast);
  setTimeout(() => toast.remove(), seconds * 1000);
  return toast;
}
