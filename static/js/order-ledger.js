// The order page's ledger panel (staff): the order's verdict, read again as its events arrive.
// It follows the order on a socket of its own, so the journey's script knows nothing of it.
import { LiveSocket, isTerminal, readJson } from "./live.js";
import { LedgerPanel } from "./ledger.js";

const node = document.querySelector("#order-ledger [data-ledger]");
if (node) {
  const orderId = Number(node.dataset.order);
  const initial = readJson("messages") || [];
  let status = initial.length ? initial[initial.length - 1].status : "";
  const panel = new LedgerPanel(node, orderId);
  panel.read();
  const socket = new LiveSocket(`/ws/orders/${orderId}/`, {
    after: initial.length ? initial[initial.length - 1].event.seq : 0,
    gap: "prev",
    onEvent(message) {
      if (message.event.orderId !== orderId) return;
      status = message.status;
      panel.refresh();
    },
    expectMore: () => !isTerminal(status),
  });
  for (const message of initial) socket.markSeen(message.event.seq);
  socket.start();
}
