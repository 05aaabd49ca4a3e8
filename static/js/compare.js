// The compare page: the same order sent to POST /orders/sync and POST /orders at the same
// moment, timed in the browser, and drawn on one time axis.
import {
  INITIAL_STATUS, LiveSocket, el, formatMs, isTerminal, laneOf, producerChip, readJson, showConnection,
  statusBadge, timeMs, versionChip,
} from "./live.js";

// How long a customer is kept waiting before the page gives up on the sync checkout. A slow or
// failing downstream service shows here as a timeout, not as a page that hangs for ever.
const SYNC_TIMEOUT_MS = 30000;
const LANE_COLOUR = { orders: "#475569", payment: "#0e7490", inventory: "#a16207", notification: "#be185d", loyalty: "#6d28d9" };
const SVG = "http://www.w3.org/2000/svg";

const schemas = readJson("schemas") || {};
const form = document.getElementById("compare");
const runButton = document.getElementById("run");
const runs = [];
let current = null;
let ticker = null;
showConnection("idle", "idle until a run");

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function $(id) {
  return document.getElementById(id);
}

function setState(id, text, { waiting = false, error = false, badge = null } = {}) {
  const node = $(id);
  node.className = `answer-state${waiting ? " waiting" : ""}`;
  node.replaceChildren(error ? el("span", { class: "type kind-failure" }, text) : text, badge ? statusBadge(badge) : "");
}

async function post(path, body, headers, timeout) {
  const controller = new AbortController();
  const timer = timeout ? setTimeout(() => controller.abort(), timeout) : null;
  const started = performance.now();
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const answer = await response.json().catch(() => null);
    return { response, answer, ms: performance.now() - started };
  } catch (error) {
    const timedOut = error.name === "AbortError";
    return { error: timedOut ? `gave up after ${formatMs(timeout)}` : `no answer (${error.message})`, timedOut, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

// ---------- Request-response ----------

function showHops(hops) {
  const total = hops.reduce((sum, hop) => sum + hop.ms, 0) || 1;
  let start = 0;
  $("sync-hops").replaceChildren(...hops.map((hop) => {
    const lane = laneOf(hop.service.split(" ")[0]);
    const bar = el("span", { class: "hop-bar" }, el("span", {
      style: `left:${(start / total) * 100}%;width:${Math.max((hop.ms / total) * 100, 1.5)}%;color:${LANE_COLOUR[lane]}`,
    }));
    start += hop.ms;
    const kind = (schemas[hop.outcome] && schemas[hop.outcome].kind) || (hop.outcome === "failed" ? "failure" : "success");
    return el("li", { class: "hop" },
      el("span", {}, producerChip(hop.service), " ", el("span", { class: `type kind-${kind}`, style: "font-size:0.75rem" }, hop.outcome)),
      bar, el("span", { class: "hop-ms" }, formatMs(hop.ms)));
  }));
}

async function runSync(run, body) {
  setState("sync-state", "The customer is waiting for the whole chain…", { waiting: true });
  $("sync-hops").replaceChildren();
  $("sync-foot").textContent = "";
  const result = await post("/orders/sync", body, {}, SYNC_TIMEOUT_MS);
  run.sync = { ms: result.ms };
  if (result.error) {
    run.sync.error = result.error;
    setState("sync-state", `No order for the customer: ${result.error}. A slow or failing service holds up the whole checkout.`, { error: true });
  } else if (result.response.status === 201 && result.answer) {
    const answer = result.answer;
    run.sync.status = answer.status;
    run.sync.hops = answer.hops || [];
    run.sync.orderId = answer.orderId;
    setState("sync-state", `201 Created after ${formatMs(result.ms)}: `, { badge: answer.status });
    showHops(run.sync.hops);
    $("sync-foot").replaceChildren(
      `The hops took ${formatMs(answer.totalMs)} one after the other; the rest of the wait is HTTP and the order's own writes. `,
      el("a", { href: `/orders/${answer.orderId}` }, `Order #${answer.orderId} →`));
  } else {
    const message = result.answer && (result.answer.message || result.answer.error);
    run.sync.error = `HTTP ${result.response.status}`;
    setState("sync-state", `HTTP ${result.response.status} after ${formatMs(result.ms)}${message ? `: ${message}` : ""}. The customer has no order.`, { error: true });
  }
  $("sync-wait").textContent = formatMs(result.ms);
}

// ---------- Event-driven ----------

function watchOrder(run, orderId) {
  const arrivals = $("events-arrivals");
  arrivals.replaceChildren();
  run.events.timeline = [];
  return new Promise((resolve) => {
    let created = null;
    const socket = new LiveSocket(`/ws/orders/${orderId}/`, {
      gap: "prev",
      onState: showConnection,
      onEvent(message) {
        const event = message.event;
        if (created === null) created = timeMs(event.occurredAt);
        // Placed on the customer's clock: OrderCreated is the moment of the 202.
        const at = run.events.ms + (timeMs(event.occurredAt) - created);
        run.events.timeline.push({ type: event.type, producer: event.producer, at, status: message.status });
        const kind = (schemas[event.type] && schemas[event.type].kind) || "success";
        arrivals.append(el("li", { class: "arrival" },
          el("span", {}, producerChip(event.producer)),
          el("span", { class: `type kind-${kind}` }, event.type, " ", versionChip(event)),
          el("span", { class: "arrival-ms" }, event.type === "OrderCreated" ? "202" : `+${formatMs(at - run.events.ms)}`)));
        run.events.status = message.status;
        draw();
        if (isTerminal(message.status) && ["OrderShipped", "OrderCancelled"].includes(event.type)) {
          run.events.doneMs = at;
          setState("events-state", `${message.status} ${formatMs(at - run.events.ms)} after the 202, while the customer was free: `, { badge: message.status });
          socket.stop();
          resolve();
        }
      },
    }).start();
    run.socket = socket;
  });
}

async function runEvents(run, body) {
  setState("events-state", "Sending…", { waiting: true });
  $("events-arrivals").replaceChildren();
  $("events-foot").textContent = "";
  const result = await post("/orders", body, { "Idempotency-Key": newKey() }, SYNC_TIMEOUT_MS);
  run.events = { ms: result.ms, timeline: [] };
  $("events-wait").textContent = formatMs(result.ms);
  if (result.error || result.response.status !== 202 || !result.answer) {
    const message = result.error || (result.answer && result.answer.message) || `HTTP ${result.response.status}`;
    run.events.error = message;
    setState("events-state", `Not accepted: ${message}.`, { error: true });
    return;
  }
  const orderId = result.answer.orderId;
  run.events.orderId = orderId;
  setState("events-state", `202 Accepted after ${formatMs(result.ms)}. The customer has an answer; watching the rest arrive…`, { waiting: true, badge: result.answer.status });
  $("events-foot").replaceChildren(el("a", { href: `/orders/${orderId}` }, `Order #${orderId}: its whole journey →`));
  await watchOrder(run, orderId);
}

// ---------- The picture ----------

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceStep(span) {
  const raw = span / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
}

function draw() {
  const run = current;
  if (!run) return;
  const syncEnd = run.sync ? run.sync.ms : run.syncStarted !== null ? performance.now() - run.syncStarted : 0;
  const ev = run.events || { timeline: [] };
  const evEnd = ev.doneMs || Math.max(ev.ms || 0, ...ev.timeline.map((t) => t.at), 0);
  const span = Math.max(syncEnd, evEnd, 10) * 1.08;
  const W = 1000, left = 150, right = 20, H = 178;
  const x = (ms) => left + (ms / span) * (W - left - right);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Both checkouts on one time axis" });

  const step = niceStep(span);
  for (let t = 0; t <= span; t += step) {
    root.append(svg("line", { x1: x(t), x2: x(t), y1: 18, y2: H - 22, class: "tl-grid" }));
    root.append(svg("text", { x: x(t), y: H - 6, "text-anchor": "middle", class: "tl-axis" }, formatMs(t)));
  }

  // Request-response: the customer waits the whole chain.
  root.append(svg("text", { x: 0, y: 52, class: "tl-label" }, "request-response"));
  root.append(svg("text", { x: 0, y: 67, class: "tl-note" }, "customer waits"));
  root.append(svg("rect", { x: x(0), y: 34, width: Math.max(x(syncEnd) - x(0), 1), height: 30, rx: 4, class: "tl-wait" }));
  if (run.sync && run.sync.hops) {
    const total = run.sync.hops.reduce((s, h) => s + h.ms, 0) || 1;
    // Hops are drawn inside the wait, in proportion, ending where the answer came.
    const scale = Math.min(1, syncEnd / total);
    let start = Math.max(syncEnd - total * scale, 0);
    for (const hop of run.sync.hops) {
      const lane = laneOf(hop.service.split(" ")[0]);
      const width = Math.max(x(hop.ms * scale) - x(0), 2);
      root.append(svg("rect", { x: x(start), y: 40, width, height: 18, rx: 3, fill: LANE_COLOUR[lane], class: "tl-hop" }));
      if (width > 60) root.append(svg("text", { x: x(start) + 4, y: 53, class: "tl-note", fill: "#fff", style: "fill:#fff" }, hop.service));
      start += hop.ms * scale;
    }
  }
  if (run.sync && !run.sync.error) {
    root.append(svg("rect", { x: x(syncEnd) - 3, y: 30, width: 6, height: 38, rx: 2, class: "tl-answer" }));
    root.append(svg("text", { x: Math.min(x(syncEnd) + 8, W - 130), y: 26, class: "tl-text" }, `answer ${formatMs(syncEnd)}`));
  } else if (run.sync && run.sync.error) {
    root.append(svg("text", { x: Math.min(x(syncEnd) + 8, W - 160), y: 26, class: "tl-text", fill: "#b91c1c", style: "fill:#b91c1c" }, `no answer (${formatMs(syncEnd)})`));
  }

  // Event-driven: a short wait, then events arrive while the customer is free.
  root.append(svg("text", { x: 0, y: 122, class: "tl-label" }, "event-driven"));
  root.append(svg("text", { x: 0, y: 137, class: "tl-note" }, "customer free after 202"));
  const answered = ev.ms || (run.eventsStarted !== null ? performance.now() - run.eventsStarted : 0);
  root.append(svg("rect", { x: x(0), y: 104, width: Math.max(x(answered) - x(0), 1), height: 30, rx: 4, class: "tl-wait" }));
  if (ev.ms) {
    root.append(svg("rect", { x: x(ev.ms), y: 113, width: Math.max(x(evEnd) - x(ev.ms), 1), height: 12, rx: 3, fill: "#e2e8f0" }));
    root.append(svg("rect", { x: x(ev.ms) - 3, y: 100, width: 6, height: 38, rx: 2, class: "tl-answer" }));
    root.append(svg("text", { x: x(ev.ms) + 8, y: 96, class: "tl-text" }, `202 ${formatMs(ev.ms)}`));
    for (const item of ev.timeline) {
      const colour = LANE_COLOUR[laneOf(item.producer)];
      root.append(svg("circle", { cx: x(item.at), cy: 119, r: 6, fill: colour, class: "tl-event" }));
    }
    if (ev.doneMs) {
      root.append(svg("text", { x: Math.min(x(ev.doneMs), W - 120), y: 158, class: "tl-text", "text-anchor": "middle" }, `${ev.status} ${formatMs(ev.doneMs)}`));
    }
  }
  $("timeline").replaceChildren(root);
}

function verdict(run) {
  const s = run.sync || {};
  const e = run.events || {};
  if (s.ms && e.ms) {
    const ratio = s.ms / e.ms;
    $("v-answer").textContent = `${formatMs(s.ms)} vs ${formatMs(e.ms)}`;
    $("v-answer-sub").textContent = s.error
      ? "request-response gave the customer no order at all"
      : ratio >= 1.5
        ? `the customer heard back ${ratio.toFixed(1)}× sooner with events`
        : ratio <= 0.67
          ? "request-response answered sooner: here its hops are in-process calls"
          : "about the same: here the hops are quick in-process calls";
  }
  if (e.doneMs || s.ms) {
    $("v-done").textContent = `${s.error ? "failed" : formatMs(s.ms)} vs ${e.doneMs ? formatMs(e.doneMs) : "not yet"}`;
    $("v-done-sub").textContent = "request-response vs event-driven, from each click";
  }
  let text = "";
  if (s.error && e.orderId) {
    text = `The request-response checkout failed (${s.error}), so this customer has no order. The event-driven one accepted order #${e.orderId} in ${formatMs(e.ms)} all the same; its events wait in the queues and complete the order once the service is back.`;
  } else if (s.ms && e.doneMs) {
    text = `Both orders went through the same steps. Request-response kept the customer waiting ${formatMs(s.ms)}, the sum of its hops plus its own writes; event-driven answered in ${formatMs(e.ms)} and finished ${formatMs(e.doneMs - e.ms)} later, in the background, each hop a trip through a queue. Events do not make the work faster; they stop the customer waiting on it, and stop one slow or broken service from holding every checkout hostage. On this one machine each sync hop is a function call, so the chain is short; across a network each hop adds a round trip, and a slow service adds its whole delay to every customer's wait. The price of events: the 202 only means "accepted", so the final state has to be watched (as here) or asked for.`;
    const hops = (s.hops || []).length;
    if (hops) {
      text += ` What if each hop were a network call of 50 ms? The customer's wait would grow to about ${formatMs(s.ms + hops * 50)}; the 202 would not move.`;
    }
  } else if (e.orderId && !e.doneMs) {
    text = `Event-driven accepted order #${e.orderId} in ${formatMs(e.ms)} but it has not finished: a service is slow or stopped, and its events wait in the broker until it is back.`;
  }
  $("verdict-text").textContent = text;
}

function addRun(run) {
  const s = run.sync || {};
  const e = run.events || {};
  const answer = s.error ? el("span", { class: "type kind-failure" }, s.error) : s.status ? statusBadge(s.status) : "–";
  const outcome = e.error ? el("span", { class: "type kind-failure" }, e.error) : e.status ? statusBadge(e.status) : "–";
  $("runs").prepend(el("tr", {},
    el("td", {}, `#${run.number}`),
    el("td", {}, formatMs(s.ms)),
    el("td", {}, answer),
    el("td", {}, formatMs(e.ms)),
    el("td", {}, e.doneMs ? formatMs(e.doneMs) : "–"),
    el("td", {}, outcome)));
  $("runs-empty").hidden = true;
}

form.addEventListener("submit", async (submit) => {
  submit.preventDefault();
  if (current && current.socket) current.socket.stop();
  const data = new FormData(form);
  const body = {
    userId: Number(data.get("userId")),
    productId: Number(data.get("productId")),
    quantity: data.get("quantity") === "" ? null : Number(data.get("quantity")),
    paymentToken: data.get("paymentToken"),
  };
  const run = { number: runs.length + 1, eventsStarted: null, syncStarted: null, sync: null, events: null };
  runs.push(run);
  current = run;
  runButton.disabled = true;
  for (const id of ["sync-wait", "events-wait", "v-answer", "v-done"]) $(id).textContent = "…";
  $("verdict-text").textContent = "";
  setState("sync-state", "Queued: runs once the event-driven order is done.");
  $("sync-hops").replaceChildren();
  clearInterval(ticker);
  ticker = setInterval(() => {
    if (run.eventsStarted !== null && !run.events) $("events-wait").textContent = formatMs(performance.now() - run.eventsStarted);
    if (run.syncStarted !== null && !run.sync) $("sync-wait").textContent = formatMs(performance.now() - run.syncStarted);
    draw();
  }, 100);
  // One after the other, so that on one machine neither checkout slows the other down; each is
  // timed from its own start. The event-driven order is watched until it finishes, within reason.
  run.eventsStarted = performance.now();
  await Promise.race([runEvents(run, body), new Promise((resolve) => setTimeout(resolve, SYNC_TIMEOUT_MS))]);
  if (run.events && !run.events.doneMs && !run.events.error) {
    setState("events-state", "Accepted, and still in flight: a service may be down. It finishes when the service is back.", { badge: run.events.status || INITIAL_STATUS });
  }
  run.syncStarted = performance.now();
  await runSync(run, body);
  clearInterval(ticker);
  runButton.disabled = false;
  draw();
  verdict(run);
  addRun(run);
});
