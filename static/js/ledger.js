// One order's verdict from the ledger (GET /control/ledger?order=<id>), drawn into a panel and
// read again, at most every REFRESH_MS, when the page says one of the order's events arrived.
import { el } from "./live.js";

const REFRESH_MS = 400;

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// The headline: what the article's levers change first, the charges, and what was violated.
function headline(ledger) {
  const charges = ledger.order.charges;
  const said = [plural(charges.charged, "charge")];
  if (charges.refunded) said.push(`${charges.refunded} refunded`);
  if (charges.declined) said.push(`${charges.declined} declined`);
  const broken = [...new Set(ledger.violations.map((v) => v.invariant))];
  return broken.length ? `${said.join(", ")} — ${broken.join(", ")} violated` : said.join(", ");
}

function facts(ledger) {
  const { charges, reservations, emails, points } = ledger.order;
  const stock = [`${reservations.reserved} reserved`];
  if (reservations.released) stock.push(`${reservations.released} released`);
  if (reservations.rejected) stock.push(`${reservations.rejected} rejected`);
  const rows = [
    ["charged", `${charges.chargedAmount} of ${charges.orderAmount}`],
    ["stock", `${stock.join(", ")}; ${reservations.unitsHeld} of ${reservations.quantity} held`],
    ["e-mails", Object.entries(emails).map(([kind, n]) => `${n} ${kind}`).join(", ")],
    ["duplicates suppressed", String(ledger.duplicatesSuppressed)],
  ];
  if (points) rows.push(["loyalty awards", String(points)]);
  return el("dl", { class: "ledger-order-facts" },
    rows.map(([term, value]) => el("div", {}, el("dt", {}, term), el("dd", {}, value))));
}

function subscribers(ledger) {
  const rows = Object.entries(ledger.subscribers).filter(([, c]) => c.handled + c.waiting + c.deadLettered + c.overdue > 0);
  return el("table", { class: "ledger-order-events" },
    el("caption", {}, "Its events, per subscriber"),
    el("thead", {}, el("tr", {}, ["service", "handled", "waiting", "dead", "lost"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map(([name, c]) => el("tr", { dataset: { service: name } },
      el("th", { scope: "row" }, name), el("td", {}, String(c.handled)), el("td", {}, String(c.waiting)),
      el("td", { class: c.deadLettered ? "bad" : "" }, String(c.deadLettered)),
      el("td", { class: c.overdue ? "bad" : "" }, String(c.overdue))))));
}

function violations(ledger) {
  if (!ledger.violations.length) return null;
  return el("ul", { class: "ledger-order-violations" }, ledger.violations.map((v) =>
    el("li", { dataset: { invariant: v.invariant } }, el("code", {}, v.invariant), " ",
      v.orderId === null ? v.detail : el("a", { href: `/orders/${v.orderId}` }, v.detail))));
}

export function renderVerdict(node, ledger) {
  const state = ledger.healthy ? (ledger.order.inFlight ? "in-flight" : "healthy") : "violated";
  const pill = { healthy: "healthy", "in-flight": "on its way", violated: plural(ledger.violations.length, "violation") }[state];
  node.dataset.healthy = String(ledger.healthy);
  node.replaceChildren(
    el("p", { class: "ledger-verdict", dataset: { state } },
      el("span", { class: "pill", dataset: { healthy: String(ledger.healthy) } }, pill), " ",
      el("strong", { "data-ledger-headline": true }, headline(ledger))),
    ...[facts(ledger), subscribers(ledger), violations(ledger)].filter(Boolean));
}

export class LedgerPanel {
  constructor(node, orderId) {
    this.node = node;
    this.orderId = orderId;
    this.timer = null;
    this.busy = false;
    this.again = false;
  }

  // Ask again soon; several events in a burst make one read.
  refresh() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.read();
    }, REFRESH_MS);
  }

  async read() {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      const response = await fetch(`/control/ledger?order=${this.orderId}`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`the ledger answered ${response.status}`);
      renderVerdict(this.node, await response.json());
    } catch (error) {
      this.node.replaceChildren(el("p", { class: "muted" }, `ledger unavailable: ${error.message}`));
    } finally {
      this.busy = false;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    }
  }
}
