// Concierge web chat: ask, follow up, read the sources, rate an answer, forget a conversation.
//
// Plain JavaScript, no build step. Everything the service returns is put on the page as text
// (textContent and text nodes): the Content-Security-Policy requires Trusted Types, so an HTML
// sink such as innerHTML would throw anyway. Tokens live in this module's memory only: never
// in localStorage, sessionStorage or a cookie; a reload or "Sign out" forgets them.
//
// config.json (written by `concierge serve` locally and by `concierge web publish` in AWS):
//   api_url         the API's base URL; empty: this page's own origin
//   auth            "off" (no token), "local" (paste a token) or "cognito" (hosted UI, PKCE)
//   cognito_domain  the hosted UI's origin, e.g. https://x.auth.eu-west-1.amazoncognito.com
//   client_id       the user pool app client

const SIGN_IN_CHANNEL = "concierge-sign-in";
const MAX_COMMENT = 1000;

const state = {
  config: null,
  token: null, // the bearer token the API gets (memory only)
  refreshToken: null, // Cognito's, revoked on sign-out (memory only)
  user: null, // who the page says is signed in (read from a token, for display only)
  sessionId: null,
  busy: false,
  pending: null, // a sign-in under way: {state, verifier, challenge}
  turns: 0,
};

const $ = (id) => document.getElementById(id);

// An element with properties, attributes (names with a dash, role, for) and text children.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.includes("-") || name === "role" || name === "for") node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// --- calling the API -------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body, headers) {
    super(`HTTP ${status}`);
    this.status = status;
    this.detail = (body && typeof body === "object" && body.error) || {};
    this.retryAfter = headers ? Number.parseInt(headers.get("retry-after") || "", 10) : NaN;
    this.requestId = this.detail.request_id || (headers && headers.get("x-request-id")) || "";
  }
}

function apiUrl(path) {
  const base = (state.config && state.config.api_url) || "";
  return base.replace(/\/+$/, "") + path;
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  let response;
  try {
    response = await fetch(apiUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, null, null);
  }
  let document = null;
  try {
    document = await response.json();
  } catch {
    document = null;
  }
  if (!response.ok) throw new ApiError(response.status, document, response.headers);
  return document;
}

// --- errors in plain words ---------------------------------------------------------------
function whenAgain(seconds) {
  const at = new Date(Date.now() + seconds * 1000);
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const minutes = Math.ceil(seconds / 60);
  const wait =
    minutes < 60 ? `${minutes} minute${minutes === 1 ? "" : "s"}` : `about ${Math.round(minutes / 60)} hour${Math.round(minutes / 60) === 1 ? "" : "s"}`;
  const day = at.toDateString() === new Date().toDateString() ? "" : " tomorrow";
  return `You can ask again at ${time}${day} (in ${wait}).`;
}

function sentence(error, action) {
  const code = error.detail.code || "";
  switch (error.status) {
    case 0:
      return "The service could not be reached. Check your connection and try again.";
    case 400:
      return action === "rate"
        ? "This rating could not be sent: the comment may be too long."
        : `The question could not be sent as it is${error.detail.message ? `: ${error.detail.message}` : "."}`;
    case 401:
      return "You are not signed in, or your sign-in has expired. Please sign in again.";
    case 403:
      return "You are not allowed to do that.";
    case 404:
      return action === "rate"
        ? "This answer is no longer stored, so it cannot be rated."
        : "This conversation is no longer stored.";
    case 409:
      return "You have already rated this answer.";
    case 413:
      return "That is too long to send. Please shorten it.";
    case 429:
      if (code === "budget_exceeded") {
        const again = Number.isFinite(error.retryAfter) ? ` ${whenAgain(error.retryAfter)}` : "";
        return `You have used up today's allowance of questions.${again}`;
      }
      return "Too many questions at once. Please wait a few seconds and try again.";
    case 502:
      return "The language model could not answer this request. Please try again or rephrase it.";
    case 503:
      return "The model or the document search is unavailable right now. Please try again in a minute.";
    case 504:
      return "The answer took too long. Please try again, perhaps with a simpler question.";
    default:
      return "Something went wrong on our side. Please try again later.";
  }
}

function showError(error, action) {
  $("error-text").textContent = sentence(error, action);
  $("error-id").textContent = error.requestId ? `Request id: ${error.requestId}` : "";
  $("error").hidden = false;
}

function clearMessages() {
  $("error").hidden = true;
  $("notice").hidden = true;
}

function notify(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
}

// --- answers ------------------------------------------------------------------------------
const GUARDRAIL_WORDS = {
  "blocked input": "A safety check stopped this question before it reached the model.",
  "blocked output": "A safety check withheld the model's answer.",
  "filtered passages":
    "Some documents were left out of this answer because they contained instructions aimed at the assistant.",
  "anonymized output": "Personal details in this answer were hidden by a safety check.",
};

function guardrailText(guardrail) {
  const words =
    GUARDRAIL_WORDS[`${guardrail.action} ${guardrail.source}`] || "A safety check changed this answer.";
  const reasons = (guardrail.reasons || []).map((reason) =>
    String(reason).replace(/^topic:/, "topic: ").replace(/_/g, " ").toLowerCase(),
  );
  return reasons.length ? `${words} Reason: ${reasons.join(", ")}.` : words;
}

function languageName(code) {
  try {
    const name = new Intl.DisplayNames([navigator.language || "en"], { type: "language" }).of(code);
    return name && name !== code ? `${name} (${code})` : code;
  } catch {
    return code;
  }
}

function cost(usd) {
  if (!usd) return "$0";
  const digits = usd < 0.01 ? { maximumSignificantDigits: 2 } : { maximumFractionDigits: 4 };
  return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", ...digits }).format(usd);
}

// Text with the little Markdown the answers use, built as nodes (never parsed as HTML):
// **bold** becomes <strong>, and [n] a link to source n when `sourceIds` has one.
function inline(text, sourceIds = []) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(/\*\*([^*\n]+?)\*\*|\[(\d{1,2})\]/g)) {
    const id = match[2] ? sourceIds[Number(match[2]) - 1] : null;
    if (match[2] && !id) continue;
    nodes.push(text.slice(last, match.index));
    if (match[1]) {
      nodes.push(el("strong", { text: match[1] }));
    } else {
      const marker = el("a", { class: "marker", href: `#${id}`, text: match[0], "aria-label": `source ${match[2]}` });
      marker.addEventListener("click", (event) => {
        event.preventDefault();
        openSource(id);
      });
      nodes.push(marker);
    }
    last = match.index + match[0].length;
  }
  nodes.push(text.slice(last));
  return nodes;
}

// The answer's text, paragraph by paragraph.
function answerText(text, sourceIds) {
  const box = el("div", { class: "answer-text" });
  for (const paragraph of String(text).split(/\n{2,}/)) box.append(el("p", {}, ...inline(paragraph, sourceIds)));
  return box;
}

function openSource(id) {
  const details = $(id);
  if (!details) return;
  details.open = true;
  details.querySelector("summary").focus();
}

function sources(citations, ids) {
  const list = el("ol");
  citations.forEach((citation, index) => {
    const details = el(
      "details",
      { id: ids[index] },
      el("summary", { text: citation.title || citation.source }),
      el("p", { class: "snippet" }, ...inline(String(citation.snippet))),
      el("p", { class: "file", text: citation.source }),
    );
    list.append(el("li", {}, details));
  });
  return el("section", { class: "sources" }, el("h3", { text: `Sources (${citations.length})` }), list);
}

// A thumb, drawn here (no icon font, no image request); pointing down with class "down".
function thumb(down) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", down ? "thumb down" : "thumb");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M1.5 7h3v7.5h-3zM5.5 7.2 8.6 1.8c1.2 0 2 1 1.7 2.3L9.8 6h3.7c1 0 1.7.9 1.5 1.8l-1.1 5.4c-.2.8-.9 1.3-1.6 1.3H5.5z");
  svg.append(path);
  return svg;
}

function rating(reply) {
  const box = el("div", { class: "rating" });
  const status = el("p", { class: "rating-status", role: "status" });
  const question = el("span", { text: "Was this answer helpful?" });
  const up = el("button", { type: "button", class: "quiet vote", "aria-pressed": "false" }, thumb(false), "Yes");
  const down = el("button", { type: "button", class: "quiet vote", "aria-pressed": "false" }, thumb(true), "No");
  const commentId = `comment-${reply.request_id}`;
  const comment = el("textarea", { id: commentId, rows: 2, maxLength: MAX_COMMENT });
  const send = el("button", { type: "submit", text: "Send rating" });
  const cancel = el("button", { type: "button", class: "quiet", text: "Cancel" });
  const form = el(
    "form",
    { hidden: true },
    el("label", { for: commentId, text: "Comment (optional)" }),
    comment,
    el("div", { class: "row end" }, cancel, send),
  );
  let chosen = null;
  const choose = (value) => {
    chosen = value;
    up.setAttribute("aria-pressed", String(value === "up"));
    down.setAttribute("aria-pressed", String(value === "down"));
    form.hidden = false;
    comment.focus();
  };
  up.addEventListener("click", () => choose("up"));
  down.addEventListener("click", () => choose("down"));
  cancel.addEventListener("click", () => {
    chosen = null;
    up.setAttribute("aria-pressed", "false");
    down.setAttribute("aria-pressed", "false");
    form.hidden = true;
    up.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen) return;
    const body = { request_id: reply.request_id, rating: chosen };
    if (comment.value.trim()) body.comment = comment.value.trim();
    for (const control of [up, down, send, cancel, comment]) control.disabled = true;
    status.textContent = "Sending…";
    try {
      await api("POST", "/feedback", body);
      form.hidden = true;
      status.textContent = chosen === "up" ? "Thank you: rated helpful." : "Thank you: rated not helpful.";
    } catch (error) {
      status.textContent = `${sentence(error, "rate")}${error.requestId ? ` (request id: ${error.requestId})` : ""}`;
      if (error.status !== 409 && error.status !== 404) {
        for (const control of [up, down, send, cancel, comment]) control.disabled = false;
      }
    }
  });
  box.append(el("div", { class: "row" }, question, up, down), form, status);
  return box;
}

function renderTurn(question, reply) {
  state.turns += 1;
  const turn = el("li", { class: "turn" });
  turn.append(el("div", { class: "question" }, el("span", { class: "visually-hidden", text: "You asked: " }), question));
  const ids = reply.citations.map((_, index) => `source-${state.turns}-${index + 1}`);
  const answer = el("article", { class: "answer", "aria-label": `Answer ${state.turns}` });
  if (reply.guardrail) answer.append(el("p", { class: "guardrail", role: "note", text: guardrailText(reply.guardrail) }));
  answer.append(answerText(reply.answer, ids));
  const meta = el("p", { class: "meta" });
  meta.append(el("span", { class: "language", text: `Language: ${languageName(reply.language)}` }));
  if (reply.cached) meta.append(el("span", { class: "badge cached", text: "From cache" }));
  const calls = reply.usage.llm_calls;
  meta.append(el("span", { class: "cost", text: `Cost: ${cost(reply.usage.cost_usd)} (${calls} model call${calls === 1 ? "" : "s"})` }));
  answer.append(meta);
  if (reply.citations.length) answer.append(sources(reply.citations, ids));
  // A question a safety check refused is never stored: there is nothing to rate.
  const refused = reply.guardrail && reply.guardrail.action === "blocked" && reply.guardrail.source === "input";
  if (!refused) answer.append(rating(reply));
  answer.append(el("p", { class: "request-id", text: `Request id: ${reply.request_id}` }));
  turn.append(answer);
  $("conversation").append(turn);
  $("empty").hidden = true;
}

// --- asking ---------------------------------------------------------------------------------
function signedIn() {
  return state.config && (state.config.auth === "off" || Boolean(state.token));
}

function setBusy(busy) {
  state.busy = busy;
  const ready = signedIn() && !busy;
  $("question").disabled = !ready;
  $("send").disabled = !ready;
  $("send").textContent = busy ? "Asking…" : "Ask";
  $("progress").hidden = !busy;
  $("conversation").setAttribute("aria-busy", String(busy));
  $("new-conversation").disabled = busy;
  $("forget").disabled = busy || !state.sessionId;
  $("question").placeholder = signedIn() ? "" : "Sign in to ask a question.";
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || state.busy) return;
  clearMessages();
  setBusy(true);
  try {
    const body = { question };
    if (state.sessionId) body.session_id = state.sessionId;
    const reply = await api("POST", "/chat", body);
    state.sessionId = reply.session_id;
    renderTurn(question, reply);
    $("question").value = "";
  } catch (error) {
    showError(error, "ask");
    if (error.status === 401) forgetToken();
  } finally {
    setBusy(false);
    $("question").focus();
  }
}

// A token the API refused (expired, or not the issuer's) is dropped, so that signing in again
// is offered; the conversation stays on the page.
function forgetToken() {
  if (!state.token || state.config.auth === "off") return;
  state.token = null;
  state.refreshToken = null;
  state.user = null;
  showAccount();
}

function clearConversation() {
  state.sessionId = null;
  state.turns = 0;
  $("conversation").replaceChildren();
  $("empty").hidden = false;
  setBusy(false);
}

function newConversation() {
  clearMessages();
  clearConversation();
  $("question").focus();
}

async function forget() {
  const dialog = $("forget-dialog");
  if (!state.sessionId) return;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.addEventListener(
    "close",
    async () => {
      if (dialog.returnValue !== "forget") {
        $("forget").focus();
        return;
      }
      clearMessages();
      setBusy(true);
      try {
        await api("DELETE", `/sessions/${encodeURIComponent(state.sessionId)}`);
        clearConversation();
        notify("The conversation was forgotten: nothing of it is stored any more.");
      } catch (error) {
        if (error.status === 404) {
          clearConversation();
          notify("Nothing of this conversation was stored; it is cleared from the page.");
        } else {
          showError(error, "forget");
        }
      } finally {
        setBusy(false);
        $("question").focus();
      }
    },
    { once: true },
  );
}

// --- signing in -----------------------------------------------------------------------------
function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(length) {
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

// Who a token names, for display only (the API verifies tokens; the page never trusts this).
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

function showAccount() {
  const auth = state.config ? state.config.auth : "";
  let who = "";
  if (auth === "off") who = "Local user (sign-in is off on this server)";
  else if (state.token) who = `Signed in as ${state.user || "a user"}`;
  else who = "Not signed in";
  $("who").textContent = who;
  $("sign-in").hidden = auth !== "cognito" || Boolean(state.token);
  $("sign-out").hidden = auth === "off" || !state.token;
  $("token-form").hidden = auth !== "local" || Boolean(state.token);
  setBusy(state.busy);
}

function redirectUri() {
  return `${location.origin}/callback.html`;
}

// A verifier and its challenge made in advance: the sign-in window must open within the click.
async function prepareSignIn() {
  const verifier = randomText(48);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  state.pending = { verifier, challenge: base64url(new Uint8Array(digest)), state: randomText(24) };
}

function signIn() {
  const { cognito_domain: domain, client_id: clientId } = state.config;
  if (!state.pending) return;
  const url = new URL("/oauth2/authorize", domain);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri(),
    scope: "openid email",
    state: state.pending.state,
    code_challenge: state.pending.challenge,
    code_challenge_method: "S256",
  }).toString();
  const popup = window.open(url.toString(), "concierge-sign-in", "popup,width=480,height=680");
  if (!popup) notify("Please allow pop-up windows for this page: sign-in opens in one.");
}

async function signedInWith(message) {
  const pending = state.pending;
  if (!pending || !message || message.state !== pending.state) return;
  state.pending = null;
  prepareSignIn();
  if (message.error || !message.code) {
    showError(new ApiError(401, null, null), "sign-in");
    return;
  }
  const { cognito_domain: domain, client_id: clientId } = state.config;
  try {
    const response = await fetch(new URL("/oauth2/token", domain), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: clientId,
        code: message.code,
        redirect_uri: redirectUri(),
        code_verifier: pending.verifier,
      }),
      credentials: "omit",
    });
    if (!response.ok) throw new ApiError(401, null, null);
    const tokens = await response.json();
    state.token = tokens.access_token;
    state.refreshToken = tokens.refresh_token || null;
    const claims = claimsOf(tokens.id_token || tokens.access_token);
    state.user = claims.email || claims["cognito:username"] || claims.username || claims.sub || null;
    clearMessages();
    showAccount();
    $("question").focus();
  } catch (error) {
    showError(error instanceof ApiError ? error : new ApiError(0, null, null), "sign-in");
  }
}

function useToken(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  if (!token) return;
  state.token = token;
  const claims = claimsOf(token);
  state.user = claims["cognito:username"] || claims.sub || null;
  clearMessages();
  showAccount();
  $("question").focus();
}

async function signOut() {
  const refreshToken = state.refreshToken;
  state.token = null;
  state.refreshToken = null;
  state.user = null;
  clearMessages();
  clearConversation();
  $("question").value = "";
  showAccount();
  if (state.config.auth !== "cognito") {
    notify("Signed out: the token and the conversation are gone from this page.");
    return;
  }
  const { cognito_domain: domain, client_id: clientId } = state.config;
  if (refreshToken) {
    try {
      await fetch(new URL("/oauth2/revoke", domain), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: refreshToken, client_id: clientId }),
        credentials: "omit",
      });
    } catch {
      // The hosted UI's logout below still ends the sign-in session.
    }
  }
  const logout = new URL("/logout", domain);
  logout.search = new URLSearchParams({ client_id: clientId, logout_uri: `${location.origin}/` }).toString();
  location.assign(logout.toString());
}

// --- start ----------------------------------------------------------------------------------
async function start() {
  $("ask").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask").requestSubmit();
    }
  });
  $("new-conversation").addEventListener("click", newConversation);
  $("forget").addEventListener("click", forget);
  $("token-form").addEventListener("submit", useToken);
  $("sign-in").addEventListener("click", signIn);
  $("sign-out").addEventListener("click", signOut);
  try {
    const response = await fetch("config.json", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    state.config = await response.json();
  } catch {
    $("who").textContent = "Not available";
    showError(new ApiError(0, null, null), "start");
    return;
  }
  if (state.config.auth === "cognito") {
    new BroadcastChannel(SIGN_IN_CHANNEL).addEventListener("message", (event) => signedInWith(event.data));
    await prepareSignIn();
  }
  showAccount();
  if (signedIn()) $("question").focus();
  performance.mark("concierge:interactive");
}

start();
