// The operator's console: live service state, charts, and the delivery of each event.
// Every value that comes from the server is put in the page with textContent.
import { showConnection } from "./live.js";

const root = document.querySelector(".console");
const page = root ? root.dataset.consolePage : "";

function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key.startsWith("data-") || key === "title" || key === "href" || key === "datetime") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function every(ms, fn) {
  let timer = null;
  const tick = async () => {
    try { await fn(); } catch (err) { console.warn(err); }
    timer = setTimeout(tick, document.hidden ? ms * 4 : ms);
  };
  tick();
  return () => clearTimeout(timer);
}

const fmtMs = (v) => (v === null || v === undefined ? "–" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);

function showDown(down) {
  if (!root) return;
  root.dataset.servicesDown = down.join(" ");
  const banner = root.querySelector("[data-down-banner]");
  if (banner) {
    banner.hidden = down.length === 0;
    banner.querySelector("[data-down-list]").textContent = down.join(", ");
  }
}

// --- Services --------------------------------------------------------------------------------

function renderServices(state) {
  showDown(state.services.filter((s) => !s.running).map((s) => s.name));
  renderOrders(state.orders);
  renderCrashes(state.crashes || []);
  if (state.record) renderRecord(state.record);
  for (const service of state.services) {
    const card = document.querySelector(`.service[data-service="${service.name}"]`);
    if (!card) continue;
    const field = (name) => card.querySelector(`[data-field="${name}"]`);
    card.dataset.running = service.running ? "true" : "false";
    field("state").textContent = service.running ? "running" : "stopped";
    field("waiting").textContent = service.waiting === null ? "?" : String(service.waiting);
    card.dataset.waiting = service.waiting === null ? "" : String(service.waiting);
    // Wanted but not alive: no worker that consumes its queue has sent a heartbeat lately.
    card.dataset.alive = String(service.alive ?? "");
    field("consumers").classList.toggle("flag", service.running && service.alive === 0);
    for (const key of ["handled", "duplicate", "retried", "dead_lettered"]) {
      field(key).textContent = String(service.counters[key] ?? 0);
    }
    const faults = field("faults");
    faults.replaceChildren(...service.faults.map((f) => el("span", { className: `tag tag-${f.kind}`, text: f.label.replace(/^fault #\d+: /, "") })));
    const button = card.querySelector("[data-action=toggle]");
    if (!button.disabled) {
      button.textContent = service.running ? "Stop" : "Start";
      button.className = service.running ? "btn btn-danger" : "btn btn-primary";
    }
  }
}

function renderOrders(orders) {
  for (const [status, count] of Object.entries(orders.byStatus)) {
    const cell = document.querySelector(`#status-counts [data-status="${status}"] [data-count]`);
    if (cell) cell.textContent = String(count);
  }
  const list = document.getElementById("in-flight");
  if (!list) return;
  list.replaceChildren(...(orders.inFlight.length
    ? orders.inFlight.map((o) => el("li", { "data-order": String(o.id) },
      el("a", { href: `/orders/${o.id}`, text: `#${o.id}` }),
      el("span", { className: `badge status-${o.status}`, text: o.status }),
      el("small", { className: "muted", text: `${o.ageSeconds} s` })))
    : [el("li", { className: "muted", text: "none: every order has shipped or been cancelled" })]));
}

async function toggleService(card) {
  const name = card.dataset.service;
  const action = card.dataset.running === "false" ? "start" : "stop";
  const button = card.querySelector("[data-action=toggle]");
  button.disabled = true;
  button.textContent = action === "stop" ? "Stopping…" : "Starting…";
  try {
    const response = await fetch(`/control/services/${encodeURIComponent(name)}/${action}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    if (!response.ok) throw new Error(`${action} ${name}: ${response.status}`);
    const body = await response.json();
    card.dataset.running = body.running ? "true" : "false";
  } finally {
    button.disabled = false;
    renderServices(await getJSON("/console/api/state"));
    renderWorkers((await getJSON("/console/api/workers")).workers);
  }
}

function renderWorkers(workers) {
  for (const card of document.querySelectorAll(".service[data-service]")) {
    const queue = card.dataset.service;
    const consuming = Object.entries(workers).filter(([, queues]) => queues.includes(queue)).map(([name]) => name);
    const line = card.querySelector('[data-field="consumers"]');
    line.textContent = consuming.length ? `consumed by ${consuming.join(", ")}` : "no worker consumes this queue";
    card.dataset.consumers = String(consuming.length);
  }
}

// --- Charts ----------------------------------------------------------------------------------

function cssVar(name, fallback) {
  return getComputedStyle(root).getPropertyValue(name).trim() || fallback;
}

// The operator's record as marks on a chart: a line at each entry's time, a short label by it
// in the band above the plot. `window` is the chart's time span in ms ({start, end}: the first
// and the last point). A label goes right of its line, or left where it would run off the
// chart, on the first of the band's rows where it overlaps no other; with no room left the mark
// is a line alone (the record lists it, and the canvas's label names every mark).
const MARK_COLORS = { lever: ["--c-warn", "#b45309"], fault_on: ["--c-bad", "#b91c1c"], fault_off: ["--c-ok", "#15803d"] };
const MARK_ROWS = 2;
const MARK_ROW_PX = 13;

function shortLabel(ctx, text, room) {
  if (ctx.measureText(text).width <= room) return text;
  let cut = text;
  while (cut.length > 4 && ctx.measureText(`${cut}…`).width > room) cut = cut.slice(0, -1);
  return `${cut.trimEnd()}…`;
}

function marksInWindow(marks, window) {
  if (!window || !(window.end > window.start)) return [];
  // The newest bucket is still filling: a mark in it sits at the right edge.
  return marks
    .map((m) => ({ ...m, t: Date.parse(m.at) }))
    .filter((m) => m.t >= window.start && m.t <= window.end + 1000)
    .sort((a, b) => a.t - b.t);
}

function labelPlace(rows, from, to) {
  return rows.findIndex((taken) => taken.every(([a, b]) => to + 2 < a || from > b + 2));
}

function drawMarks(ctx, marks, window, box, band) {
  if (!marks.length) return [];
  const span = window.end - window.start;
  const rows = Array.from({ length: MARK_ROWS }, () => []);
  ctx.save();
  ctx.font = "10px system-ui, sans-serif";
  // A label is at most a third of the chart wide (half on a phone), so two fit side by side.
  const room = Math.max(70, box.width / (box.width < 400 ? 2 : 3));
  const placed = marks.map((mark) => {
    const x = Math.round(box.left + box.width * Math.min((mark.t - window.start) / span, 1)) + 0.5;
    const [name, fallback] = MARK_COLORS[mark.action] || MARK_COLORS.lever;
    const color = cssVar(name, fallback);
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(x, band.top); ctx.lineTo(x, box.top + box.height); ctx.stroke();
    ctx.setLineDash([]);
    return { mark, x, color, labelled: false };
  });
  // The newest change is the one the operator is looking for: its label goes first.
  for (const item of [...placed].reverse()) {
    const text = shortLabel(ctx, item.mark.label, room);
    const width = ctx.measureText(text).width + 6;
    const from = item.x + width <= box.left + box.width ? item.x + 1 : item.x - width - 1;
    const row = labelPlace(rows, from, from + width);
    if (row === -1) continue;
    rows[row].push([from, from + width]);
    const y = band.top + row * MARK_ROW_PX;
    ctx.fillStyle = cssVar("--c-panel", "#ffffff");
    ctx.fillRect(from, y, width, MARK_ROW_PX - 1);
    ctx.fillStyle = item.color;
    ctx.fillText(text, from + 3, y + 9);
    item.labelled = true;
  }
  ctx.restore();
  return placed.map(({ mark, labelled }) => ({ id: mark.id, label: mark.label, at: mark.at, labelled }));
}

function drawChart(canvas, series, { unit = "", minMax = 1, marks = [], window = null } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const inWindow = marksInWindow(marks, window);
  // The marks' labels get a band of their own above the plot, so they hide none of it.
  const band = { top: 4, height: inWindow.length ? MARK_ROWS * MARK_ROW_PX : 0 };
  const pad = { left: 44, right: 8, top: 10 + band.height, bottom: 20 };
  const values = series.flatMap((s) => s.values.filter((v) => v !== null));
  const max = Math.max(minMax, ...values) * 1.15;
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = cssVar("--c-muted", "#6b7280");
  ctx.strokeStyle = cssVar("--c-grid", "#e5e7eb");
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + h - (h * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad.left, y); ctx.lineTo(width - pad.right, y); ctx.stroke();
    const v = (max * i) / 4;
    ctx.fillText(unit === "ms" ? fmtMs(v) : v < 10 ? v.toFixed(1) : String(Math.round(v)), 4, y + 4);
  }
  ctx.fillText("-60 s", pad.left, height - 4);
  ctx.fillText("now", width - pad.right - 22, height - 4);
  for (const s of series) {
    const n = s.values.length;
    if (n < 2) continue;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    s.values.forEach((v, i) => {
      if (v === null) { started = false; return; }
      const x = pad.left + (w * i) / (n - 1);
      const y = pad.top + h - (h * v) / max;
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
    });
    ctx.stroke();
    if (s.fill) {
      ctx.lineTo(pad.left + w, pad.top + h); ctx.lineTo(pad.left, pad.top + h); ctx.closePath();
      ctx.globalAlpha = 0.12; ctx.fillStyle = s.color; ctx.fill(); ctx.globalAlpha = 1;
    }
  }
  const drawn = drawMarks(ctx, inWindow, window, { left: pad.left, top: pad.top, width: w, height: h }, band);
  // What the canvas shows, readable without pixels: by a screen reader, and by the tests.
  canvas.dataset.marks = JSON.stringify(drawn.map(({ id, label, at }) => ({ id, label, at })));
  const base = canvas.dataset.label || (canvas.dataset.label = canvas.getAttribute("aria-label") || "");
  canvas.setAttribute("aria-label", drawn.length
    ? `${base}. Marked: ${drawn.map((m) => `${new Date(m.at).toLocaleTimeString([], { hour12: false })} ${m.label}`).join("; ")}`
    : base);
  return drawn;
}

const pushSamples = [];
// Each latency sample with the server's time it was taken at, so marks land between them.
const latencyHistory = { p50: [], p95: [], p99: [], at: [] };

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.max(Math.ceil(q * sorted.length) - 1, 0)];
}

function setMetric(name, text) {
  const node = document.querySelector(`[data-metric="${name}"]`);
  if (node) node.textContent = text;
}

function renderMetrics(data) {
  const { throughput: t, latency: l } = data;
  const marks = data.record || [];
  const throughputCanvas = document.getElementById("chart-throughput");
  // Bucket i counts the second from start + i s; the last point is the newest bucket's start.
  const first = Date.parse(t.start);
  drawChart(throughputCanvas, [
    { values: t.events, color: cssVar("--c-events", "#7c3aed"), fill: true },
    { values: t.orders, color: cssVar("--c-orders", "#0ea5e9"), fill: true },
  ], { marks, window: { start: first, end: first + (t.orders.length - 1) * 1000 } });
  // The newest bucket is still filling; the one before it is the last whole second.
  setMetric("orders-now", String(t.orders.at(-2) ?? 0));
  setMetric("events-now", String(t.events.at(-2) ?? 0));

  for (const key of ["p50", "p95", "p99"]) {
    latencyHistory[key].push(l.e2e[key]);
    if (latencyHistory[key].length > 30) latencyHistory[key].shift();
    setMetric(`e2e-${key}`, fmtMs(l.e2e[key]));
  }
  latencyHistory.at.push(Date.parse(data.at));
  if (latencyHistory.at.length > 30) latencyHistory.at.shift();
  const samples = latencyHistory.at;
  drawChart(document.getElementById("chart-latency"), [
    { values: latencyHistory.p99, color: cssVar("--c-p99", "#ef4444") },
    { values: latencyHistory.p95, color: cssVar("--c-p95", "#f59e0b") },
    { values: latencyHistory.p50, color: cssVar("--c-p50", "#10b981") },
  ], { unit: "ms", minMax: 50, marks, window: samples.length > 1 ? { start: samples[0], end: samples.at(-1) } : null });

  const sortedPush = [...pushSamples].sort((a, b) => a - b);
  const parts = {
    wait: l.wait.p50,
    handler: l.handler.p50,
    push: quantile(sortedPush, 0.5),
  };
  setMetric("wait-p50", fmtMs(l.wait.p50)); setMetric("wait-p95", fmtMs(l.wait.p95));
  setMetric("handler-p50", fmtMs(l.handler.p50)); setMetric("handler-p95", fmtMs(l.handler.p95));
  setMetric("push-p50", fmtMs(parts.push)); setMetric("push-p95", fmtMs(quantile(sortedPush, 0.95)));
  const total = Object.values(parts).reduce((a, v) => a + (v || 0), 0) || 1;
  const bar = document.getElementById("split-bar");
  for (const [key, value] of Object.entries(parts)) {
    bar.querySelector(`.s-${key}`).style.flexBasis = `${(100 * (value || 0)) / total}%`;
  }
}

function listenForPushLatency() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let socket;
  const connect = () => {
    showConnection("connecting", "connecting");
    socket = new WebSocket(`${scheme}://${location.host}/ws/events/`);
    socket.addEventListener("open", () => showConnection("live", "live: timing pushes"));
    socket.addEventListener("message", (message) => {
      const data = JSON.parse(message.data);
      if (data.kind !== "event") return;
      const ms = Date.now() - Date.parse(data.event.occurredAt);
      if (ms >= 0 && ms < 600000) {
        pushSamples.push(ms);
        if (pushSamples.length > 300) pushSamples.shift();
      }
    });
    socket.addEventListener("close", () => {
      showConnection("offline", "offline: back in 2 s");
      setTimeout(connect, 2000);
    });
  };
  connect();
}

// --- Deliveries of each event ----------------------------------------------------------------

const STATE_TEXT = {
  handled: "handled",
  retrying: "retrying",
  dead: "dead-lettered",
  waiting: "in the queue",
  unpublished: "not yet published",
  "not sent": "not sent (request-response)",
};

function deliveryChip(d) {
  const duplicate = d.duplicates > 0;
  const chip = el("div", {
    className: `delivery d-${d.state.replace(" ", "-")}${duplicate ? " d-duplicated" : ""}`,
    "data-service": d.service,
    "data-state": d.state,
    "data-duplicates": String(d.duplicates || 0),
  });
  chip.append(el("strong", { text: d.service }), el("span", { className: "d-state", text: STATE_TEXT[d.state] || d.state }));
  const facts = [];
  if (d.attempts > 1) facts.push(`attempt ${d.attempts}`);
  if (d.retries) facts.push(`${d.retries} retried`);
  if (duplicate) facts.push(`${d.duplicates} duplicate${d.duplicates > 1 ? "s" : ""} skipped`);
  if (d.waitMs !== undefined && d.waitMs !== null) facts.push(`wait ${fmtMs(d.waitMs)}`);
  if (d.handlerMs !== undefined && d.handlerMs !== null) facts.push(`handler ${fmtMs(d.handlerMs)}`);
  if (facts.length) chip.append(el("small", { text: facts.join(" · ") }));
  if (d.faults) chip.append(el("small", { className: "d-fault", text: `⚡ ${d.faults}` }));
  if (d.error && d.state !== "handled") chip.append(el("small", { className: "d-error", text: d.error, title: d.error }));
  return chip;
}

function timeOf(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return el("time", { datetime: iso, text: d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0") });
}

function eventRow(e) {
  const stored = timeOf(e.occurredAt);
  const published = e.sync ? el("span", { className: "muted", text: "log only" })
    : e.publishedAt ? el("span", {}, timeOf(e.publishedAt), el("small", { className: "muted", text: ` +${Math.max(0, Date.parse(e.publishedAt) - Date.parse(e.occurredAt))} ms` }))
    : el("span", { className: "pill pill-warn", text: "not yet" });
  const deliveries = el("div", { className: "deliveries" }, ...e.deliveries.map(deliveryChip));
  if (!e.deliveries.length) deliveries.append(el("span", { className: "muted", text: "no subscriber" }));
  const payload = el("details", {}, el("summary", { text: `${e.type} v${e.version}` }), el("pre", { text: JSON.stringify(e.payload, null, 2) }));
  return el("tr", { "data-seq": String(e.seq), "data-type": e.type },
    el("td", { className: "num", text: String(e.seq) }),
    el("td", {}, payload, el("small", { className: "muted", text: `from ${e.producer}` })),
    el("td", {}, el("a", { href: `/orders/${e.orderId}`, text: `#${e.orderId}` })),
    el("td", {}, stored),
    el("td", {}, published),
    el("td", {}, deliveries),
  );
}

function initEvents() {
  const form = document.getElementById("event-filters");
  const rows = document.getElementById("event-rows");
  const older = document.getElementById("events-older");
  const newest = document.getElementById("events-newest");
  let before = null;
  let lastText = "";

  const params = new URLSearchParams(location.search);
  for (const [key, value] of params) {
    const input = form.elements[key];
    if (!input) continue;
    if (input.type === "checkbox") input.checked = value === "1" || value === "on"; else input.value = value;
  }

  const load = async () => {
    const query = new URLSearchParams();
    if (form.elements.order.value.trim()) query.set("order", form.elements.order.value.trim());
    if (form.elements.type.value) query.set("type", form.elements.type.value);
    if (form.elements.troubled.checked) query.set("troubled", "1");
    if (before) query.set("before", String(before));
    const data = await getJSON(`/console/api/events?${query}`);
    const text = JSON.stringify(data);
    if (text === lastText) return;
    lastText = text;
    // Keep open the payloads the reader opened; the rows are rebuilt from fresh data.
    const open = new Set([...rows.querySelectorAll("tr[data-seq] details[open]")].map((d) => d.closest("tr").dataset.seq));
    rows.replaceChildren(...(data.events.length ? data.events.map(eventRow)
      : [el("tr", {}, el("td", { colSpan: 6, className: "c-empty", text: "No event matches." }))]));
    for (const seq of open) rows.querySelector(`tr[data-seq="${seq}"] details`)?.setAttribute("open", "");
    older.hidden = !data.older;
    older.dataset.before = data.older || "";
    newest.hidden = !before;
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); before = null; lastText = ""; load(); });
  older.addEventListener("click", () => { before = Number(older.dataset.before); load(); });
  newest.addEventListener("click", () => { before = null; load(); });
  every(2000, async () => { if (form.elements.live.checked && !before) await load(); });
}

// --- Dead letters ----------------------------------------------------------------------------

function initDeadLetters() {
  const all = document.querySelector("[data-select-all]");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll('#dead-letters input[name="id"]')) box.checked = all.checked;
  });
}

// --- Levers and the ledger ------------------------------------------------------------------

const LEVER_DEFAULTS = { idempotency: "on", delivery: "at-least-once" };

function markUnsafe(select) {
  select.dataset.unsafe = select.value !== LEVER_DEFAULTS[select.dataset.lever] ? "true" : "false";
}

function showLevers(doc) {
  for (const select of document.querySelectorAll("select[data-lever]")) {
    const value = (doc[select.dataset.lever] || {})[select.dataset.service];
    if (value && document.activeElement !== select) select.value = value;
    markUnsafe(select);
  }
  for (const select of document.querySelectorAll("select[data-schema-lever]")) {
    const version = (doc.schemas || {})[select.dataset.schemaLever];
    if (version && document.activeElement !== select) select.value = String(version);
  }
  for (const box of document.querySelectorAll("input[data-subscription]")) {
    const types = (doc.subscriptions || {})[box.dataset.service] || [];
    if (document.activeElement !== box) box.checked = types.includes(box.dataset.eventType);
  }
}

function leverMessage(text, ok) {
  const box = document.getElementById("lever-message");
  box.hidden = !text;
  box.textContent = text;
  box.dataset.ok = ok ? "true" : "false";
}

function subscriptionBody(box) {
  const replay = document.querySelector(`input[data-replay-for="${box.dataset.service}"]`);
  const body = {
    lever: "subscription", service: box.dataset.service, eventType: box.dataset.eventType,
    value: box.checked ? "on" : "off",
  };
  if (box.checked && replay && replay.checked) body.replay = true;
  return body;
}

function leverText(body) {
  if (body.lever === "schema") return `schema ${body.eventType} v${body.version}`;
  if (body.lever !== "subscription") return `${body.lever} ${body.value} at ${body.service}`;
  return `subscription ${body.value} at ${body.service} for ${body.eventType}${body.replay ? ", replayed from the log" : ""}`;
}

async function pullLever(select, body) {
  select.disabled = true;
  try {
    const response = await fetch("/control/levers", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      leverMessage(answer.message || `refused: ${response.status}`, false);
      showLevers(await getJSON("/control/levers"));
      return;
    }
    showLevers(answer);
    leverMessage(`${leverText(body)}, ${new Date().toLocaleTimeString([], { hour12: false })}`, true);
    const record = document.getElementById("lever-record");
    record.querySelector("li.muted")?.remove();
    record.prepend(el("li", {}, el("time", { datetime: new Date().toISOString(), text: new Date().toLocaleTimeString([], { hour12: false }) }), ` ${leverText(body)}`));
  } finally {
    select.disabled = false;
  }
}

// The operator's record, newest first: every lever pulled and fault switched, from any page or
// script, with who did it.
let recordShown = "";

function renderRecord(entries) {
  const list = document.getElementById("lever-record");
  const text = JSON.stringify(entries);
  if (!list || text === recordShown) return;
  recordShown = text;
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
  list.replaceChildren(...(entries.length
    ? entries.map((e) => el("li", { "data-entry": String(e.id), "data-action": e.action },
      el("time", { datetime: e.at, text: clock(e.at) }), ` ${e.label}`,
      e.by ? el("small", { className: "muted", text: ` by ${e.by}` }) : null))
    : [el("li", { className: "muted", text: "nothing switched yet: every lever at its default, no fault on" })]));
}

// At least once the event that killed a worker comes back and is handled; at most once it is lost.
function renderCrashes(crashes) {
  const list = document.getElementById("crash-list");
  if (!list) return;
  list.replaceChildren(...(crashes.length
    ? crashes.map((c) => el("li", { "data-order": String(c.orderId), "data-came-back": c.cameBack ? "true" : "false" },
      el("time", { datetime: c.at, text: new Date(c.at).toLocaleTimeString([], { hour12: false }) }),
      ` ${c.service} died on ${c.eventType} of `,
      el("a", { href: `/orders/${c.orderId}`, text: `#${c.orderId}` }),
      el("small", { className: c.cameBack ? "muted" : "crash-lost", text: c.cameBack ? " · came back, handled" : " · not handled: lost or waiting" })))
    : [el("li", { className: "muted", text: "none" })]));
}

function renderLedger(ledger) {
  const health = document.getElementById("ledger-health");
  health.dataset.healthy = ledger.healthy ? "true" : "false";
  health.textContent = ledger.healthy ? "healthy" : `${ledger.violations.length} violation${ledger.violations.length === 1 ? "" : "s"}`;
  document.getElementById("ledger-suppressed").textContent = String(ledger.duplicatesSuppressed);
  document.getElementById("ledger-orders").textContent = String(ledger.orders);
  document.getElementById("ledger-in-flight").textContent = String(ledger.inFlight);
  document.getElementById("ledger-subscribers").replaceChildren(...Object.entries(ledger.subscribers).map(([name, counts]) =>
    el("tr", { "data-subscriber": name },
      el("th", { scope: "row", text: name }),
      ...["handled", "waiting", "deadLettered", "overdue"].map((key) => el("td", { className: "num", text: String(counts[key] ?? 0) })))));
  const list = document.getElementById("ledger-violations");
  list.replaceChildren(...(ledger.violations.length
    ? ledger.violations.slice(0, 50).map((v) => el("li", { "data-invariant": v.invariant, "data-order": v.orderId === null ? "" : String(v.orderId) },
      el("code", { text: v.invariant }),
      v.orderId === null ? el("span", { text: v.detail }) : el("a", { href: `/orders/${v.orderId}`, text: v.detail })))
    : [el("li", { className: "muted", text: "every invariant holds" })]));
}

// --- Start -----------------------------------------------------------------------------------

if (page === "home") {
  for (const card of document.querySelectorAll(".service[data-service]")) {
    card.querySelector("[data-action=toggle]").addEventListener("click", () => toggleService(card));
  }
  every(1500, async () => renderServices(await getJSON("/console/api/state")));
  every(5000, async () => renderWorkers((await getJSON("/console/api/workers")).workers));
  every(2000, async () => renderMetrics(await getJSON("/console/api/metrics")));
  for (const select of document.querySelectorAll("select[data-lever]")) {
    markUnsafe(select);
    select.addEventListener("change", () => pullLever(select, { lever: select.dataset.lever, service: select.dataset.service, value: select.value }));
  }
  for (const select of document.querySelectorAll("select[data-schema-lever]")) {
    select.addEventListener("change", () => pullLever(select, { lever: "schema", eventType: select.dataset.schemaLever, version: Number(select.value) }));
  }
  for (const box of document.querySelectorAll("input[data-subscription]")) {
    box.addEventListener("change", () => pullLever(box, subscriptionBody(box)));
  }
  every(2000, async () => renderLedger(await getJSON("/control/ledger")));
  every(3000, async () => showLevers(await getJSON("/control/levers")));
  listenForPushLatency();
} else if (root) {
  showConnection("idle", "no socket: polls every few seconds");
  every(3000, async () => showDown((await getJSON("/services/status")).down));
  if (page === "events") initEvents();
  if (page === "dead") initDeadLetters();
}
