// What every live page shares: a socket that never loses an event, and small DOM helpers.
// Event data is only ever put in the page with textContent (el() below), never as HTML.

// The order statuses as the server renders them (templates/base.html), never a copied list.
const ORDER_STATUSES = readJson("order-statuses") || { all: [], initial: "", terminal: [] };
export const INITIAL_STATUS = ORDER_STATUSES.initial;
// The services' lanes, in the registry's order (templates/base.html); the first is the order's.
export const LANES = (readJson("service-lanes") || []).map((lane) => lane.name);

// el("span", {class: "badge", dataset: {seq: 3}}, "text", childNode, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

export function isTerminal(status) {
  return ORDER_STATUSES.terminal.includes(status);
}

function knownStatus(status) {
  return ORDER_STATUSES.all.includes(status) ? status : INITIAL_STATUS;
}

export function statusBadge(status) {
  const known = knownStatus(status);
  return el("span", { class: `badge status-${known}`, dataset: { status } }, status);
}

// Move a badge to a new status, with a small pop so the eye catches the change.
export function setStatus(badge, status) {
  if (!badge || badge.dataset.status === status) return;
  badge.className = `badge status-${knownStatus(status)} changed`;
  badge.dataset.status = status;
  badge.textContent = status;
}

export function laneOf(producer) {
  return LANES.includes(producer) ? producer : LANES[0];
}

export function producerChip(producer) {
  return el("span", { class: `chip lane-${laneOf(producer)}` }, producer);
}

// The schema version an event was written with, as stored: "v1", "v2". A version newer than
// the first stands out, so a producer switched live shows on every page that lists events.
export function versionChip(event) {
  const version = Number(event.version) || 1;
  return el("span", {
    class: `version-chip${version > 1 ? " newer" : ""}`,
    dataset: { version },
    title: `${event.type} schema version ${version}`,
  }, `v${version}`);
}

// occurredAt carries microseconds; Date.parse keeps only milliseconds, so add the rest back.
export function timeMs(iso) {
  const match = /\.(\d+)/.exec(iso);
  if (!match) return Date.parse(iso);
  const base = Date.parse(iso.replace(/\.\d+/, ""));
  return base + Number(`0.${match[1]}`) * 1000;
}

export function clockTime(iso) {
  const date = new Date(timeMs(iso));
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 10000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

// The connection pill in the top bar: what the socket is doing, in words.
export function showConnection(state, text) {
  const pill = document.getElementById("conn");
  if (!pill) return;
  pill.dataset.state = state;
  pill.querySelector(".conn-text").textContent = text;
}

/**
 * A WebSocket to one of the live feeds that loses nothing and shows nothing twice.
 *
 * - On close it reconnects by itself (with back-off) and asks ?after=<last seq it has>, so the
 *   server replays exactly what was missed.
 * - It drops any message whose seq it has seen (a replay can overlap the live stream).
 * - It notices a gap: on /ws/events/ a seq that jumps (gap: "seq"), on /ws/orders/<id>/ a
 *   prevSeq it has not seen (gap: "prev"). It then sends {"resume": <seq>} and the server replays
 *   from the log. The message is still shown; the missing ones slot in when they arrive.
 * - A gap shows only when a later message comes, so a lost last message would never show one.
 *   While the page still expects events (`expectMore()`: an order not yet finished) and the
 *   socket has been quiet for a while, it asks {"resume": <last seq>} anyway; the quiet spell it
 *   waits doubles each time nothing was missing, from 2 s up to 30 s.
 * - The server answers a resume with one batch at most (and at most one resume a second); when
 *   there is more it says {"kind": "more", "after": <seq>}, and the page asks again from there.
 */
const QUIET_FIRST_MS = 2000;
const QUIET_LONGEST_MS = 30000;

export class LiveSocket {
  constructor(path, { after = 0, gap = "seq", onEvent, onHello, onNotice, onOpen, onState, expectMore } = {}) {
    this.path = path;
    this.lastSeq = after;
    this.gap = gap;
    this.onEvent = onEvent || (() => {});
    this.onHello = onHello || (() => {});
    // Messages of any other kind (not an event, a greeting or "more"); a page that wants none
    // ignores them all, as the contract asks.
    this.onNotice = onNotice || (() => {});
    // Each time the socket opens, the first time and after a reconnect.
    this.onOpen = onOpen || (() => {});
    this.onState = onState || (() => {});
    this.expectMore = expectMore || (() => false);
    this.quietMs = QUIET_FIRST_MS;
    this.seen = new Set();
    this.ws = null;
    this.attempt = 0;
    this.pausedUntil = 0;
    this.stopped = false;
    this.resumedFrom = -1;
    this.burst = 0;
    this.burstEnds = 0;
    this.stats = { received: 0, repeats: 0, gaps: 0, reconnects: 0, quietChecks: 0 };
  }

  markSeen(seq) {
    this.seen.add(seq);
    if (seq > this.lastSeq) this.lastSeq = seq;
    // A long-lived feed page must not grow without bound; replays never reach that far back.
    if (this.seen.size > 20000) {
      for (const old of this.seen) if (old < this.lastSeq - 10000) this.seen.delete(old);
    }
  }

  start() {
    this.stopped = false;
    this._open();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.quietTimer);
    if (this.ws) this.ws.close();
  }

  // Connect again now instead of waiting for the next attempt.
  reconnect() {
    clearTimeout(this.retryTimer);
    this.pausedUntil = 0;
    if (!this.ws) this._open();
  }

  // Close the socket and stay away for `ms`, as a network blip would. Events keep happening;
  // the page catches up when it is back.
  drop(ms = 4000) {
    this.pausedUntil = Date.now() + ms;
    if (this.ws) this.ws.close();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // Always ?after, even 0: without it the feed would start from "now" and skip what
    // happened between rendering the page and opening the socket.
    return `${scheme}://${location.host}${this.path}?after=${this.lastSeq}`;
  }

  _open() {
    const url = this.url();
    this.onState("connecting", this.attempt ? `reconnecting (?after=${this.lastSeq})` : "connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.attempt > 0) this.stats.reconnects += 1;
      this.attempt = 0;
      this.burst = 0;
      this.onState("live", "live");
      // The replay of what was missed arrives as a burst; it is over after a short quiet spell.
      this.burstEnds = Date.now() + 3000;
      this._settleSoon();
      this.quietMs = QUIET_FIRST_MS;
      this._quietSoon();
      this.onOpen();
    });
    ws.addEventListener("message", (message) => this._receive(message.data));
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      const wait = Math.max(this.pausedUntil - Date.now(), Math.min(500 * 2 ** this.attempt, 8000));
      this.attempt += 1;
      const why = this.pausedUntil > Date.now() ? "offline (dropped on purpose)" : "offline";
      this.onState("offline", `${why}: back in ${Math.ceil(wait / 1000)} s`);
      this.retryTimer = setTimeout(() => this._open(), wait);
    });
  }

  _quietSoon() {
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this._quiet(), this.quietMs);
  }

  // Quiet for quietMs while events are still expected: ask for anything after the last seq.
  _quiet() {
    if (this.stopped || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (this.expectMore()) {
      this.stats.quietChecks += 1;
      this.ws.send(JSON.stringify({ resume: this.lastSeq }));
      this.quietMs = Math.min(this.quietMs * 2, QUIET_LONGEST_MS);
    }
    this._quietSoon();
  }

  _settleSoon() {
    clearTimeout(this.burstTimer);
    const wait = Math.min(500, Math.max(this.burstEnds - Date.now(), 0));
    this.burstTimer = setTimeout(() => this._settled(), wait);
  }

  _settled() {
    this.burstEnds = 0;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      const caught = this.stats.reconnects && this.burst ? ` · caught up ${this.burst} missed` : "";
      this.onState("live", `live${caught}`);
    }
  }

  _receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    if (message.kind === "hello") {
      if (this.lastSeq === 0) this.lastSeq = message.lastSeq;
      this.onHello(message);
      return;
    }
    if (message.kind === "more") {
      this._resume(message.after, `catching up after #${message.after}`);
      return;
    }
    if (message.kind !== "event") {
      if (typeof message.kind === "string") this.onNotice(message);
      return;
    }
    if (!message.event) return;
    const seq = message.event.seq;
    this.stats.received += 1;
    if (this.seen.has(seq)) {
      this.stats.repeats += 1;
      return;
    }
    this._checkGap(message);
    this.markSeen(seq);
    this.onEvent(message);
    this.quietMs = QUIET_FIRST_MS;
    this._quietSoon();
    if (this.burstEnds > Date.now()) {
      this.burst += 1;
      this._settleSoon();
    }
  }

  _checkGap(message) {
    const seq = message.event.seq;
    const missing =
      this.gap === "seq"
        ? this.lastSeq > 0 && seq > this.lastSeq + 1
        : message.prevSeq > 0 && !this.seen.has(message.prevSeq);
    if (!missing) return;
    const from = this.gap === "seq" ? this.lastSeq : Math.min(this.lastSeq, message.prevSeq - 1);
    if (from === this.resumedFrom) return;
    this.stats.gaps += 1;
    this._resume(from, `gap after #${from}: asking for it`);
  }

  _resume(from, why) {
    if (!Number.isInteger(from) || from === this.resumedFrom) return;
    this.resumedFrom = from;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ resume: from }));
      this.onState("catching-up", why);
      this.burstEnds = Date.now() + 3000;
      this._settleSoon();
    }
  }
}
