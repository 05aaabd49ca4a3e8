// The order page: the order's journey as a live swimlane, one lane per service, with arrows
// from cause to effect, the notification join, and a re-watch of the stored events.
import {
  LANES, LiveSocket, clockTime, el, formatMs, isTerminal, laneOf, readJson, setStatus, showConnection,
  statusBadge, timeMs, versionChip,
} from "./live.js";

const GLYPH = {
  OrderCreated: "+", OrderConfirmed: "✓", OrderShipped: "★", NotificationSent: "✉",
  PaymentProcessed: "✓", InventoryUpdated: "✓", PaymentFailed: "✕", InventoryRejected: "✕",
  InventoryReleased: "↩", PaymentRefunded: "↩", OrderCancelled: "↩", PointsAwarded: "✦",
};
// The longest pause a re-watch will show, whatever the speed: a service that was down for
// minutes should not make the viewer wait minutes.
const REWATCH_MAX_PAUSE_MS = 3000;
const SVG = "http://www.w3.org/2000/svg";

const script = document.getElementById("page-script");
const orderId = Number(script.dataset.order);
// A request-response order had no 202: its customer waited for the whole chain instead.
const START = script.dataset.mode === "sync" ? "request" : "202";
const schemas = readJson("schemas") || {};
const rows = document.getElementById("rows");
const arrows = document.getElementById("arrows");
const swimlane = document.getElementById("swimlane");
const lanesEmpty = document.getElementById("lanes-empty");
const lanesState = document.getElementById("lanes-state");
const laneHead = document.getElementById("lane-head");
const rewatchButton = document.getElementById("rewatch");
const rewatchSub = document.getElementById("rewatch-sub");

// The journey's lanes: the core services', and those of the services that took part in it so
// far (the server rendered them); a service that joins while the page is open gets its lane then.
const LANE_INFO = new Map((readJson("service-lanes") || []).map((lane) => [lane.name, lane]));
let shownLanes = [...laneHead.querySelectorAll("[data-service]")].map((span) => span.dataset.service);

function laneGrow(messages) {
  const wanted = new Set(shownLanes);
  for (const m of messages) if (LANE_INFO.has(m.event.producer)) wanted.add(m.event.producer);
  if (wanted.size === shownLanes.length) return;
  shownLanes = LANES.filter((name) => wanted.has(name));
  laneHead.replaceChildren(laneHead.firstElementChild, ...shownLanes.map((name) => {
    const lane = LANE_INFO.get(name);
    return el("span", { class: `lane-${name}`, dataset: { service: name } },
      el("span", { class: "long" }, lane.title), el("span", { class: "short" }, lane.short));
  }));
  swimlane.style.setProperty("--lanes", String(shownLanes.length));
}

const all = new Map(); // seq -> message, everything the page knows
const marks = new Map(); // id -> an entry of the operator's record that touched this order
let shown = null; // during a re-watch: the seqs shown so far; otherwise null (= all)
let displayed = new Set();
let selected = null;
let userSelected = false;
let rewatchTimer = null;

function kindOf(type) {
  return (schemas[type] && schemas[type].kind) || "success";
}

function sorted(messages) {
  return [...messages].sort((a, b) => a.event.seq - b.event.seq);
}

function visible() {
  const messages = sorted(all.values());
  return shown ? messages.filter((m) => shown.has(m.event.seq)) : messages;
}

function startOf(messages) {
  const created = messages.find((m) => m.event.type === "OrderCreated") || messages[0];
  return created ? timeMs(created.event.occurredAt) : null;
}

// ---------- What the events say ----------

function joinState(types) {
  const part = (ok, failed) => (types.has(ok) ? "done" : types.has(failed) ? "failed" : "waiting");
  return {
    payment: part("PaymentProcessed", "PaymentFailed"),
    inventory: part("InventoryUpdated", "InventoryRejected"),
  };
}

function awaited(types, status) {
  if (isTerminal(status) || types.size === 0) return [];
  const lanes = [];
  if (!types.has("PaymentProcessed") && !types.has("PaymentFailed")) lanes.push("payment");
  if (!types.has("InventoryUpdated") && !types.has("InventoryRejected")) lanes.push("inventory");
  const failed = types.has("PaymentFailed") || types.has("InventoryRejected");
  if (failed) {
    if (types.has("PaymentFailed") && types.has("InventoryUpdated") && !types.has("InventoryReleased")) lanes.push("inventory");
    if (types.has("InventoryRejected") && types.has("PaymentProcessed") && !types.has("PaymentRefunded")) lanes.push("payment");
    lanes.push("orders");
  } else if (lanes.length === 0 && !types.has("OrderConfirmed")) {
    lanes.push("orders");
  }
  if (!failed) lanes.push("notification");
  return [...new Set(lanes)];
}

// Beyond causationId, an event may have waited for others: OrderConfirmed names both halves,
// and the notification service sends only once it holds both PaymentProcessed and InventoryUpdated.
function joinedFrom(message, byType) {
  const event = message.event;
  let parts = [];
  if (event.type === "OrderConfirmed") parts = [event.payload.paymentEvent, event.payload.inventoryEvent];
  if (event.type === "NotificationSent" && event.payload.kind === "confirmed") {
    parts = [byType.get("PaymentProcessed"), byType.get("InventoryUpdated")].map((m) => m && m.event.eventId);
  }
  return parts.filter((id) => id && id !== event.causationId);
}

// ---------- Drawing ----------

function row(message, t0, fresh) {
  const event = message.event;
  const kind = kindOf(event.type);
  const lane = laneOf(event.producer);
  const offset = t0 === null ? null : timeMs(event.occurredAt) - t0;
  const label = el("button", {
    type: "button", class: "row-label",
    title: `${event.type}: open its envelope and payload`,
    onclick: () => { userSelected = true; select(event.seq); },
  },
  el("span", { class: "row-time" }, event.type === "OrderCreated" ? START : `+${formatMs(offset)}`),
  // A zero-width space between words lets a long type name wrap on a phone.
  el("span", { class: "row-type" }, event.type.replace(/([a-z])([A-Z])/g, "$1\u200b$2")),
  el("span", { class: "row-sub" }, `#${event.seq}`, versionChip(event), statusBadge(message.status)));
  const cells = shownLanes.map((name) => el("span", { class: "cell" },
    name === lane
      ? el("span", { class: `mark lane-${lane}`, title: `${event.type} by ${event.producer}` }, el("span", {}, GLYPH[event.type] || "•"))
      : null));
  return el("li", {
    class: `lane-row kind-${kind}${fresh ? " fresh" : ""}`,
    dataset: { seq: event.seq, eventId: event.eventId, type: event.type },
    "aria-selected": String(selected === event.seq),
  }, label, ...cells);
}

// A change the operator made while this order was in flight (or to this order alone): a thin
// line across the lanes, at its moment among the events.
function markRow(entry) {
  const time = new Date(timeMs(entry.at)).toLocaleTimeString([], { hour12: false });
  const text = `${time} ${entry.label}${entry.by ? ` — by ${entry.by}` : ""}`;
  return el("li", {
    class: `lane-row record-mark record-${entry.action}`,
    dataset: { entry: entry.id, action: entry.action, at: entry.at },
    title: `The operator's record: ${text}`,
  },
  el("span", { class: "record-line" },
    el("time", { class: "record-time", datetime: entry.at }, time),
    el("span", { class: "record-label" }, entry.label),
    entry.by ? el("span", { class: "record-by" }, `by ${entry.by}`) : null));
}

// The events and the marks in one list, in time order; an event and a mark at the same moment:
// the event first (the change applies from then on).
function withMarks(messages) {
  const last = messages[messages.length - 1];
  const until = shown && last ? timeMs(last.event.occurredAt) : Infinity;
  const entries = [...marks.values()]
    .filter((entry) => timeMs(entry.at) <= until)
    .sort((a, b) => timeMs(a.at) - timeMs(b.at) || a.id - b.id);
  const items = [];
  let next = 0;
  for (const message of messages) {
    while (next < entries.length && timeMs(entries[next].at) < timeMs(message.event.occurredAt)) {
      items.push({ entry: entries[next] });
      next += 1;
    }
    items.push({ message });
  }
  for (; next < entries.length; next += 1) items.push({ entry: entries[next] });
  return items;
}

function pendingRow(lanes, types) {
  const waitingFor = lanes.filter((l) => l !== "orders" || !types.has("OrderConfirmed"));
  const text = `waiting for ${waitingFor.join(", ")}…`;
  return el("li", { class: "lane-row pending", "aria-label": text },
    el("span", { class: "row-label" },
      el("span", { class: "row-time" }, "now"),
      el("span", { class: "row-type" }, text)),
    ...shownLanes.map((name) => el("span", { class: "cell" },
      lanes.includes(name) ? el("span", { class: "mark ghost", title: `${name} has not answered yet` }) : null)));
}

function render() {
  const messages = visible();
  const t0 = startOf(messages);
  const types = new Set(messages.map((m) => m.event.type));
  const last = messages[messages.length - 1];
  const status = last ? last.status : document.getElementById("order-status").dataset.status;

  laneGrow(messages);
  rows.replaceChildren(...withMarks(messages).map((item) => (item.entry
    ? markRow(item.entry)
    : row(item.message, t0, !displayed.has(item.message.event.seq)))));
  const waiting = awaited(types, status);
  if (waiting.length && !shown) rows.append(pendingRow(waiting, types));
  displayed = new Set(messages.map((m) => m.event.seq));
  lanesEmpty.hidden = messages.length > 0;

  if (last) setStatus(document.getElementById("order-status"), status);
  document.getElementById("count").textContent = String(messages.length);
  summarise(messages, t0, types, status);
  if (!userSelected && last) selected = last.event.seq;
  showInspector();
  requestAnimationFrame(drawArrows);
}

function summarise(messages, t0, types, status) {
  const label = document.getElementById("total-label");
  const total = document.getElementById("total");
  const sub = document.getElementById("total-sub");
  const end = messages.find((m) => m.event.type === (status === "CANCELLED" ? "OrderCancelled" : "OrderShipped"));
  if (end && t0 !== null) {
    label.textContent = `${START} → ${status}`;
    total.textContent = formatMs(timeMs(end.event.occurredAt) - t0);
    const from = START === "202" ? "from the 202 Accepted" : "from the request (the customer waited all along)";
    sub.textContent = status === "SHIPPED"
      ? `${from} to OrderShipped`
      : `${from} to OrderCancelled, compensation included`;
  } else if (messages.length && t0 !== null) {
    label.textContent = `${START} → so far`;
    total.textContent = formatMs(timeMs(messages[messages.length - 1].event.occurredAt) - t0);
    sub.textContent = "still in flight: the last event so far";
  }

  const join = joinState(types);
  for (const part of document.querySelectorAll(".join-part")) {
    const state = join[part.dataset.part];
    part.dataset.state = state;
    part.textContent = `${part.dataset.part} ${state === "done" ? "✔" : state === "failed" ? "✘" : "◔"}`;
  }
  const joinSub = document.getElementById("join-sub");
  if (join.payment === "failed" || join.inventory === "failed") {
    joinSub.textContent = "The join can never complete: a side failed, so compensation runs instead and the customer hears it was cancelled.";
  } else if (join.payment === "done" && join.inventory === "done") {
    joinSub.textContent = types.has("NotificationSent")
      ? "Both halves arrived: notification emailed the customer and shipped."
      : "Both halves are in: notification is sending the email.";
  } else if (join.payment === "done" || join.inventory === "done") {
    const have = join.payment === "done" ? "payment" : "inventory";
    const want = have === "payment" ? "inventory" : "payment";
    joinSub.textContent = `Notification holds ${have} and waits for ${want}: in any order, from separate queues.`;
  } else {
    joinSub.textContent = "Notification waits for both PaymentProcessed and InventoryUpdated before it emails and ships.";
  }

  const finished = isTerminal(status) && !shown;
  rewatchButton.disabled = !finished && !shown;
  if (!shown) {
    rewatchSub.textContent = finished
      ? "Plays the stored events again, spaced as they happened."
      : "Available once the order is finished.";
  }
  lanesState.textContent = finished ? `finished: ${status}` : shown ? "re-watching…" : "in flight: filling in live";
}

function center(node, origin) {
  const box = node.getBoundingClientRect();
  return { x: box.left + box.width / 2 - origin.left, y: box.top + box.height / 2 - origin.top, r: box.height / 2 };
}

function drawArrows() {
  for (const old of arrows.querySelectorAll("path.link")) old.remove();
  const origin = swimlane.getBoundingClientRect();
  const marks = new Map();
  const items = [...rows.querySelectorAll(".lane-row[data-event-id]")];
  items.forEach((item, index) => {
    const mark = item.querySelector(".mark");
    if (mark) marks.set(item.dataset.eventId, { mark, index, lane: laneOf(all.get(Number(item.dataset.seq)).event.producer) });
  });
  const laneAt = items.map((item) => laneOf(all.get(Number(item.dataset.seq)).event.producer));
  const messages = visible();
  const byType = new Map(messages.map((m) => [m.event.type, m]));
  for (const message of messages) {
    const event = message.event;
    const to = marks.get(event.eventId);
    if (!to) continue;
    const kind = kindOf(event.type);
    const style = kind === "compensation" ? "comp" : kind === "failure" ? "fail" : "";
    const links = [];
    if (event.causationId && marks.has(event.causationId)) links.push([marks.get(event.causationId), style]);
    for (const id of joinedFrom(message, byType)) if (marks.has(id)) links.push([marks.get(id), "join"]);
    for (const [from, linkStyle] of links) {
      // A lane is blocked when an event between the two sits on the target's lifeline.
      const blocked = laneAt.slice(from.index + 1, to.index).includes(to.lane);
      link(from.mark, to.mark, origin, linkStyle, blocked);
    }
  }
}

// Arrows leave the cause sideways along its own row (where no other mark sits), turn, and run
// down the effect's lane into it; when that lane is occupied on the way, they run beside it.
function link(fromMark, toMark, origin, style, blocked) {
  const a = center(fromMark, origin);
  const b = center(toMark, origin);
  let d;
  if (Math.abs(a.x - b.x) < 2) {
    const bow = 16 + Math.min((b.y - a.y) / 6, 30);
    d = `M ${a.x + a.r * 0.7} ${a.y + a.r * 0.7} C ${a.x + bow} ${a.y + 14}, ${b.x + bow} ${b.y - 14}, ${b.x + b.r * 0.7 + 2} ${b.y - b.r * 0.7 - 2}`;
  } else {
    const dir = Math.sign(b.x - a.x);
    const nudge = style === "join" ? 5 : 0;
    const vx = blocked ? b.x - dir * (b.r + 9 + nudge) : b.x - dir * nudge;
    const radius = Math.min(10, Math.abs(vx - a.x) / 2, (b.y - a.y) / 3);
    const startX = a.x + dir * (a.r + 1);
    d = `M ${startX} ${a.y} L ${vx - dir * radius} ${a.y} Q ${vx} ${a.y}, ${vx} ${a.y + radius}`;
    if (blocked) {
      d += ` L ${vx} ${b.y - 9} Q ${vx} ${b.y}, ${b.x - dir * (b.r + 3)} ${b.y}`;
    } else {
      d += ` L ${vx} ${b.y - b.r - 3}`;
    }
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("class", `link ${style}`);
  path.setAttribute("marker-end", `url(#head${style ? `-${style}` : ""})`);
  arrows.append(path);
}

new ResizeObserver(() => requestAnimationFrame(drawArrows)).observe(swimlane);

// ---------- The inspector: envelope and payload ----------

function select(seq) {
  selected = seq;
  for (const item of rows.querySelectorAll(".lane-row[data-seq]")) {
    item.setAttribute("aria-selected", String(Number(item.dataset.seq) === seq));
  }
  showInspector();
}

function showInspector() {
  const title = document.getElementById("inspector-h");
  const body = document.getElementById("inspector-body");
  const message = all.get(selected);
  if (!message) {
    title.textContent = "Select an event";
    body.replaceChildren();
    return;
  }
  const event = message.event;
  const schema = schemas[event.type] || {};
  const kind = kindOf(event.type);
  const t0 = startOf(sorted(all.values()));
  // The version the event was written with, not the newest one the page knows.
  const schemaName = `${event.type} v${event.version}`;
  title.replaceChildren(el("span", { class: `type kind-${kind}` }, event.type),
    el("span", { class: "schema-name", title: "schema name and version" }, schemaName));
  const cause = event.causationId ? [...all.values()].find((m) => m.event.eventId === event.causationId) : null;
  const causeCell = event.causationId
    ? el("button", { type: "button", class: "btn-link mono", onclick: () => { userSelected = true; select(cause.event.seq); } },
      cause ? `${event.causationId} (${cause.event.type} #${cause.event.seq})` : event.causationId)
    : "null: the first event, caused by the request itself";
  if (event.causationId && !cause) causeCell.disabled = true;
  const envelope = [
    ["seq", String(event.seq)], ["eventId", event.eventId], ["type", event.type], ["version", String(event.version)],
    ["orderId", String(event.orderId)], ["occurredAt", event.occurredAt], ["producer", event.producer],
    ["causationId", causeCell],
  ];
  const kindText = {
    failure: "A failure: this side could not do its part. Compensation follows.",
    compensation: "Compensation: undoes an earlier step because another one failed.",
    success: "",
  }[kind];
  body.replaceChildren(
    el("p", { class: "explain" }, schema.description || ""),
    kindText ? el("p", { class: `type kind-${kind}` }, kindText) : "",
    el("p", {}, "Status after this event: ", statusBadge(message.status),
      t0 !== null ? ` · ${event.type === "OrderCreated" ? `the ${START} itself` : `+${formatMs(timeMs(event.occurredAt) - t0)} after the ${START}`}` : "",
      ` · ${clockTime(event.occurredAt)}`),
    el("div", { class: "section-label" }, "Envelope (every event has these)"),
    el("table", { class: "envelope" }, el("tbody", {}, envelope.map(([name, value]) => el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, value))))),
    el("div", { class: "section-label" }, `Payload (schema ${schemaName})`),
    el("pre", { class: "json" }, JSON.stringify(event.payload, null, 2)),
    el("details", {}, el("summary", { class: "form-hint" }, "The WebSocket message as received"),
      el("pre", { class: "json" }, JSON.stringify(message, null, 2))),
  );
}

// ---------- Re-watch: the stored events again, at real or slowed speed ----------

function stopRewatch() {
  clearTimeout(rewatchTimer);
  rewatchTimer = null;
  shown = null;
  rewatchButton.textContent = "▶ Re-watch";
  render();
}

function rewatch() {
  if (shown) return stopRewatch();
  const factor = Number(document.getElementById("speed").value);
  const messages = sorted(all.values());
  shown = new Set();
  displayed = new Set();
  userSelected = false;
  rewatchButton.textContent = "■ Stop";
  rewatchButton.disabled = false;
  let index = 0;
  const step = () => {
    const message = messages[index];
    shown.add(message.event.seq);
    render();
    rewatchSub.textContent = `re-watching ${index + 1} of ${messages.length} at ${factor === 1 ? "real speed" : `${factor}× slower`}`;
    index += 1;
    if (index >= messages.length) {
      rewatchTimer = setTimeout(stopRewatch, 600);
      return;
    }
    const gap = (timeMs(messages[index].event.occurredAt) - timeMs(message.event.occurredAt)) * factor;
    rewatchTimer = setTimeout(step, Math.min(Math.max(gap, 0), REWATCH_MAX_PAUSE_MS));
  };
  render();
  step();
}
rewatchButton.addEventListener("click", rewatch);

// ---------- Live ----------

const initial = readJson("messages") || [];
for (const message of initial) all.set(message.event.seq, message);
displayed = new Set(all.keys());
render();

function latestStatus() {
  let latest = null;
  for (const message of all.values()) {
    if (!latest || message.event.seq > latest.event.seq) latest = message;
  }
  return latest ? latest.status : document.getElementById("order-status").dataset.status;
}

function addMark(entry) {
  if (!entry || !Number.isInteger(entry.id) || typeof entry.label !== "string" || Number.isNaN(timeMs(String(entry.at)))) return;
  marks.set(entry.id, entry);
}

// What touched the order so far, read when the socket opens (first and after a reconnect), so
// a change made while the page was away still shows; later ones arrive on the socket.
async function loadMarks() {
  try {
    const response = await fetch(`/orders/${orderId}/record`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const body = await response.json();
    for (const entry of body.entries || []) addMark(entry);
    if (!shown) render();
  } catch (error) {
    console.warn("the operator's record could not be read", error);
  }
}

// A live mark for an order that had already finished before it is not this order's, unless it
// names it: the socket reached every order in flight as the server saw them.
function touchesThisOrder(entry) {
  if (entry.orderId === orderId) return true;
  const end = [...all.values()].find((m) => m.event.type === "OrderShipped" || m.event.type === "OrderCancelled");
  return !end || timeMs(entry.at) <= timeMs(end.event.occurredAt);
}

const socket = new LiveSocket(`/ws/orders/${orderId}/`, {
  after: initial.length ? initial[initial.length - 1].event.seq : 0,
  gap: "prev",
  onEvent(message) {
    if (message.event.orderId !== orderId) return;
    all.set(message.event.seq, message);
    if (!shown) render();
  },
  onNotice(message) {
    if (message.kind !== "record" || !message.entry || !touchesThisOrder(message.entry)) return;
    addMark(message.entry);
    if (!shown) render();
  },
  onOpen: loadMarks,
  onState: showConnection,
  // Until the order is finished, a quiet socket asks whether it missed the last event.
  expectMore: () => !isTerminal(latestStatus()),
});
for (const message of initial) socket.markSeen(message.event.seq);
socket.start();
window.checkoutLive = { socket };
