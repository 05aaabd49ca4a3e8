// The re-run page: the original order and its re-run side by side, each journey live over its
// order's socket, each with the ledger's verdict, read again as its events arrive.
import {
  LiveSocket, clockTime, el, formatMs, isTerminal, producerChip, readJson, setStatus, showConnection, timeMs,
  versionChip,
} from "./live.js";
import { LedgerPanel } from "./ledger.js";

const schemas = readJson("schemas") || {};
const sides = readJson("sides") || [];

function kindOf(type) {
  return (schemas[type] && schemas[type].kind) || "success";
}

function journey(side) {
  const node = document.querySelector(`.rerun-side[data-order="${side.orderId}"]`);
  const list = node.querySelector("[data-journey]");
  const count = node.querySelector("[data-side-count]");
  const badge = node.querySelector("[data-side-status]");
  const panel = new LedgerPanel(node.querySelector("[data-ledger]"), side.orderId);
  const all = new Map();
  let status = side.status;

  function draw() {
    const messages = [...all.values()].sort((a, b) => a.event.seq - b.event.seq);
    const start = messages.length ? timeMs(messages[0].event.occurredAt) : 0;
    list.replaceChildren(...messages.map((m, i) => el("li", { class: "arrival", dataset: { seq: m.event.seq, type: m.event.type } },
      el("span", {}, producerChip(m.event.producer)),
      el("span", { class: `type kind-${kindOf(m.event.type)}`, title: `#${m.event.seq} at ${clockTime(m.event.occurredAt)}` },
        m.event.type, " ", versionChip(m.event)),
      el("span", { class: "arrival-ms" }, i === 0 ? "202" : `+${formatMs(timeMs(m.event.occurredAt) - start)}`))));
    count.textContent = `${messages.length} event${messages.length === 1 ? "" : "s"}`;
    setStatus(badge, status);
  }

  for (const m of side.messages) all.set(m.event.seq, m);
  draw();
  panel.read();
  const socket = new LiveSocket(`/ws/orders/${side.orderId}/`, {
    after: side.messages.length ? side.messages[side.messages.length - 1].event.seq : 0,
    gap: "prev",
    onEvent(message) {
      if (message.event.orderId !== side.orderId) return;
      all.set(message.event.seq, message);
      if ([...all.values()].every((m) => m.event.seq <= message.event.seq)) status = message.status;
      draw();
      panel.refresh();
    },
    onState: showConnection,
    expectMore: () => !isTerminal(status),
  });
  for (const m of side.messages) socket.markSeen(m.event.seq);
  socket.start();
  // A finished order's ledger can still change (a late duplicate, a redrive): read it once more
  // after its journey has been quiet for a while.
  setTimeout(() => panel.refresh(), 3000);
  return socket;
}

window.checkoutRerun = sides.map(journey);
