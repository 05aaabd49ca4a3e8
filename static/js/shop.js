// The shop page: live stock, the Buy Now form (sent as the article's JSON request), orders whose
// badges move by themselves, and the feed of every event with its cause one click away.
import {
  INITIAL_STATUS, LiveSocket, clockTime, el, formatMs, isTerminal, producerChip, readJson, setStatus,
  showConnection, statusBadge, versionChip,
} from "./live.js";

const FEED_MAX = 150;
const ORDERS_MAX = 30;

const catalog = readJson("catalog") || { products: {}, customers: {} };
const schemas = readJson("schemas") || {};
const feed = document.getElementById("feed");
const feedEmpty = document.getElementById("feed-empty");
const feedFoot = document.getElementById("feed-foot");
const orders = document.getElementById("orders");
const ordersEmpty = document.getElementById("orders-empty");
const form = document.getElementById("buy");
const result = document.getElementById("buy-result");
const productSelect = document.getElementById("product-select");
const customerSelect = document.getElementById("customer-select");
const pointsBadge = document.getElementById("customer-points");
const dropButton = document.getElementById("drop");
const feedAfter = Number(document.getElementById("page-script").dataset.feedAfter || 0);

const eventsById = new Map();
const orderSeq = new Map();

function kindOf(type) {
  return (schemas[type] && schemas[type].kind) || "success";
}

// ---------- Products and their live stock ----------

function selectProduct(id) {
  for (const card of document.querySelectorAll(".product")) {
    card.setAttribute("aria-pressed", String(card.dataset.product === String(id)));
  }
}

for (const card of document.querySelectorAll(".product")) {
  card.addEventListener("click", () => {
    productSelect.value = card.dataset.product;
    selectProduct(card.dataset.product);
    form.elements.quantity.focus();
  });
}
if (productSelect) {
  productSelect.addEventListener("change", () => selectProduct(productSelect.value));
  selectProduct(productSelect.value);
}

function showStock(productId, stock, seq) {
  const badge = document.querySelector(`[data-stock-of="${productId}"]`);
  if (!badge || seq <= Number(badge.dataset.stockSeq || 0)) return;
  badge.dataset.stockSeq = seq;
  badge.textContent = stock > 0 ? `${stock} in stock` : "sold out";
  badge.classList.toggle("out", stock <= 0);
  badge.classList.toggle("scarce", stock > 0 && stock <= 10);
  badge.classList.remove("flash");
  void badge.offsetWidth;
  badge.classList.add("flash");
  setTimeout(() => badge.classList.remove("flash"), 500);
}

// ---------- Orders ----------

function orderRow(orderId, { customer, product, quantity, status, fresh }) {
  const row = el("li", { class: `order-row${fresh ? " fresh" : ""}`, dataset: { order: orderId } },
    el("a", { class: "order-id", href: `/orders/${orderId}` }, `#${orderId}`),
    el("span", { class: "order-what" }, `${customer} · ${product} × ${quantity}`),
    statusBadge(status));
  return row;
}

function ensureOrderRow(orderId, details) {
  let row = orders.querySelector(`[data-order="${orderId}"]`);
  if (row) return row;
  row = orderRow(orderId, { ...details, fresh: true });
  const newer = [...orders.children].find((r) => Number(r.dataset.order) < orderId);
  orders.insertBefore(row, newer || null);
  while (orders.children.length > ORDERS_MAX) orders.lastElementChild.remove();
  ordersEmpty.hidden = true;
  return row;
}

// The payload as OrderCreated's newest version says it: the server upcasts older ones ("current").
function detailsFromCreated(payload) {
  const product = catalog.products[String(payload.productId)];
  return {
    customer: catalog.customers[String(payload.customerId)] || `customer #${payload.customerId}`,
    product: product ? product.name : `product #${payload.productId}`,
    quantity: payload.quantity,
    status: INITIAL_STATUS,
  };
}

function trackStatus(message) {
  const { orderId, seq, type } = message.event;
  let row = orders.querySelector(`[data-order="${orderId}"]`);
  if (!row && type === "OrderCreated") row = ensureOrderRow(orderId, detailsFromCreated(message.current || message.event.payload));
  if (!row || seq < (orderSeq.get(orderId) || 0)) return;
  orderSeq.set(orderId, seq);
  setStatus(row.querySelector(".badge"), message.status);
}

// ---------- The feed ----------

function causeLine(event) {
  if (!event.causationId) {
    return el("div", { class: "feed-cause" }, "first event of the order: nothing caused it but the 202");
  }
  const known = eventsById.get(event.causationId);
  const label = known ? `${known.type} #${known.seq}` : "the causing event";
  const detail = el("span", { class: "cause-detail", hidden: true });
  const button = el("button", {
    type: "button", class: "btn-link",
    onclick: () => showCause(event, detail),
  }, label);
  return el("div", { class: "feed-cause" }, "caused by ", button, detail);
}

async function showCause(event, detail) {
  const item = feed.querySelector(`[data-event-id="${event.causationId}"]`);
  let cause = eventsById.get(event.causationId);
  if (!cause) {
    detail.hidden = false;
    detail.textContent = "fetching it from the order's log…";
    try {
      const response = await fetch(`/orders/${event.orderId}`, { headers: { Accept: "application/json" } });
      const body = await response.json();
      cause = body.events.find((e) => e.eventId === event.causationId);
    } catch {
      cause = null;
    }
  }
  detail.hidden = false;
  if (!cause) {
    detail.textContent = "The causing event could not be found.";
    return;
  }
  detail.textContent = `${cause.type} · seq #${cause.seq} · by ${cause.producer} at ${clockTime(cause.occurredAt)}` +
    (item ? "" : " (older than this feed)");
  if (item) {
    item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    item.classList.remove("flash");
    void item.offsetWidth;
    item.classList.add("flash");
  }
}

function feedItem(message, fresh) {
  const event = message.event;
  const kind = kindOf(event.type);
  return el("li", {
    class: `feed-item kind-${kind}${fresh ? " fresh" : ""}`,
    dataset: { seq: event.seq, eventId: event.eventId, type: event.type, order: event.orderId },
  },
  el("div", { class: "feed-main" },
    el("span", { class: "type" }, event.type),
    versionChip(event),
    el("a", { href: `/orders/${event.orderId}` }, `order #${event.orderId}`),
    statusBadge(message.status)),
  el("span", { class: "feed-time", title: event.occurredAt }, clockTime(event.occurredAt)),
  el("div", { class: "feed-meta" }, producerChip(event.producer), `seq #${event.seq}`),
  causeLine(event));
}

function addToFeed(message, fresh) {
  const seq = message.event.seq;
  const item = feedItem(message, fresh);
  // Newest first; a missed event that arrives late slots in where its seq belongs.
  const older = [...feed.children].find((node) => Number(node.dataset.seq) < seq);
  feed.insertBefore(item, older || null);
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  feedEmpty.hidden = true;
}

// ---------- A customer's loyalty points ----------

// The order service's copy of each customer's balance, moved on by PointsAwarded events.
const points = catalog.points || {};

function showPoints(flash) {
  if (!pointsBadge || !customerSelect) return;
  const mine = points[customerSelect.value] || { points: 0, seq: 0 };
  pointsBadge.dataset.pointsOf = customerSelect.value;
  pointsBadge.dataset.points = String(mine.points);
  pointsBadge.textContent = `${mine.points} loyalty point${mine.points === 1 ? "" : "s"}`;
  if (flash) {
    pointsBadge.classList.remove("flash");
    void pointsBadge.offsetWidth;
    pointsBadge.classList.add("flash");
  }
}

function pointsAwarded(event) {
  const { customerId, totalPoints } = event.payload || {};
  const key = String(customerId);
  const known = points[key] || { points: 0, seq: 0 };
  if (event.seq <= known.seq || typeof totalPoints !== "number") return;
  points[key] = { points: totalPoints, seq: event.seq };
  if (customerSelect && customerSelect.value === key) showPoints(true);
}

if (customerSelect) customerSelect.addEventListener("change", () => showPoints(false));
showPoints(false);

// ---------- The socket ----------

let replaying = true;
const socket = new LiveSocket("/ws/events/", {
  after: feedAfter,
  gap: "seq",
  onEvent(message) {
    const event = message.event;
    eventsById.set(event.eventId, event);
    addToFeed(message, !replaying);
    trackStatus(message);
    const payload = event.payload || {};
    if (payload.productId && typeof payload.stockAfter === "number") {
      showStock(payload.productId, payload.stockAfter, event.seq);
    }
    if (event.type === "PointsAwarded") pointsAwarded(event);
  },
  // While a listed order is unfinished, a quiet socket asks whether it missed the last event.
  expectMore: () => [...orders.querySelectorAll(".badge")].some(
    (badge) => !isTerminal(badge.dataset.status || badge.textContent.trim()),
  ),
  onState(state, text) {
    showConnection(state, text);
    dropButton.textContent = state === "offline" ? "Reconnect now" : "Drop connection for 5 s";
    if (state === "live") setTimeout(() => { replaying = false; }, 300);
    feedFoot.textContent = state === "live"
      ? `Live on /ws/events/ · last seq #${socket.lastSeq} · ${socket.stats.reconnects} reconnect(s), ${socket.stats.repeats} repeat(s) dropped, ${socket.stats.gaps} gap(s) refilled`
      : `${text}. Events keep happening; the page will ask ?after=${socket.lastSeq} when it is back.`;
  },
});
socket.start();
window.checkoutLive = { socket };

dropButton.addEventListener("click", () => (socket.ws ? socket.drop(5000) : socket.reconnect()));

// ---------- Buy Now, as the article's JSON request ----------

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function showResult(ok, ...parts) {
  result.hidden = false;
  result.className = `result${ok ? "" : " error"}`;
  result.replaceChildren(...parts);
}

if (form) {
  form.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const data = new FormData(form);
    const body = {
      userId: Number(data.get("userId")),
      productId: Number(data.get("productId")),
      quantity: data.get("quantity") === "" ? null : Number(data.get("quantity")),
      paymentToken: data.get("paymentToken"),
    };
    const button = document.getElementById("buy-button");
    button.disabled = true;
    showResult(true, `Sending POST /orders for ${body.quantity} × ${(catalog.products[String(body.productId)] || {}).name || "product"}…`);
    const started = performance.now();
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "Idempotency-Key": form.dataset.idempotencyKey,
        },
        body: JSON.stringify(body),
      });
      const took = performance.now() - started;
      const answer = await response.json().catch(() => null);
      if (response.status === 202 && answer) {
        form.dataset.idempotencyKey = newKey();
        const product = catalog.products[String(body.productId)];
        const row = ensureOrderRow(answer.orderId, {
          customer: catalog.customers[String(body.userId)] || `customer #${body.userId}`,
          product: product ? product.name : `product #${body.productId}`,
          quantity: body.quantity,
          status: answer.status,
        });
        row.classList.add("fresh");
        showResult(true,
          el("b", {}, `202 Accepted in ${formatMs(took)}. `),
          `Order #${answer.orderId} is ${answer.status}: stored with its OrderCreated event. `,
          "Payment and inventory are reacting now, on their own. ",
          el("a", { href: `/orders/${answer.orderId}` }, "Watch its journey →"));
      } else if (answer && answer.error) {
        const field = answer.field ? `${answer.field}: ` : "";
        showResult(false, el("b", {}, `${response.status}. `), `${field}${answer.message}. Nothing was created.`);
      } else {
        showResult(false, el("b", {}, `${response.status}. `), "The server did not accept the order. Nothing was created.");
      }
    } catch (error) {
      showResult(false, el("b", {}, "No answer. "), `The server could not be reached (${error.message}). Try again: the same Idempotency-Key makes a retry safe.`);
    } finally {
      button.disabled = false;
    }
  });
}
