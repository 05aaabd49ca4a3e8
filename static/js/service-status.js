// Every page shows which services the operator stopped and which guarantees the levers give up
// (base.html includes this module). It keeps <body data-services-down="notification payment">
// current, marks every element that has data-service="<name>" with data-service-down="true|false"
// (the swimlane's lanes, for example), and shows or hides the levers' banner.
const INTERVAL_MS = 3000;

async function refresh() {
  try {
    const response = await fetch("/services/status", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const { down, unsafe = [] } = await response.json();
    document.body.dataset.servicesDown = down.join(" ");
    for (const node of document.querySelectorAll("[data-service]")) {
      node.dataset.serviceDown = down.includes(node.dataset.service) ? "true" : "false";
    }
    for (const banner of document.querySelectorAll("[data-lanes-down]")) {
      banner.hidden = down.length === 0;
      const list = banner.querySelector("[data-lanes-down-list]");
      if (list) list.textContent = down.join(", ");
    }
    for (const banner of document.querySelectorAll("[data-levers-banner]")) {
      banner.hidden = unsafe.length === 0;
      const list = banner.querySelector("[data-levers-list]");
      if (list) list.textContent = unsafe.join("; ");
    }
    document.dispatchEvent(new CustomEvent("services:status", { detail: { down, unsafe } }));
  } catch {
    // The next tick tries again; a page must not break because the status is unreachable.
  }
}

refresh();
setInterval(refresh, INTERVAL_MS);
