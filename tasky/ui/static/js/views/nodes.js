// Nodes: the servers sharing this one's store, alive or not, with their labels, workers and the
// tasks they hold. Nodes send no events of their own, so the list is re-read every few seconds.

import { api } from "../api.js";
import { h, keepFocus, replace, singleFlight } from "../dom.js";
import * as fmt from "../format.js";

const REFRESH_MS = 2000;

function state(node) {
  if (node.Alive) return h("span", { class: "badge node-alive" }, "alive");
  if (node.StoppedAt) return h("span", { class: "badge node-stopped", title: fmt.fullTime(node.StoppedAt) }, "stopped");
  return h("span", { class: "badge node-dead", title: "no heartbeat within its lease" }, "not responding");
}

export async function mountNodes(main) {
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "tasks nodes", id: "node-table" },
    h("thead", null, h("tr", null, ["Name", "State", "Labels", "Running", "Last heartbeat", "Started", "Workers"].map((t) => h("th", { scope: "col" }, t)))),
    tbody,
  );
  const load = singleFlight(async () => {
    const { Nodes: nodes } = await api("/nodes");
    keepFocus(tbody, () => replace(
      tbody,
      nodes.map((n) =>
        h(
          "tr",
          { dataset: { node: n.Name, alive: String(n.Alive), key: n.Name } },
          h("td", { dataset: { label: "Name" }, class: "mono" }, n.Name),
          h("td", { dataset: { label: "State" } }, state(n)),
          h("td", { dataset: { label: "Labels" }, class: "node-labels" }, n.Labels.length ? n.Labels.join(", ") : "—"),
          h("td", { dataset: { label: "Running" }, class: "node-running" }, String(n.RunningTasks)),
          h("td", { dataset: { label: "Last heartbeat" }, title: fmt.fullTime(n.LastHeartbeat) }, fmt.ago(n.LastHeartbeat)),
          h("td", { dataset: { label: "Started" }, title: fmt.fullTime(n.StartedAt) }, fmt.time(n.StartedAt)),
          h("td", { dataset: { label: "Workers" }, class: "node-workers small-text" }, n.Workers.join(", ")),
        ),
      ),
    ));
  });
  replace(
    main,
    h(
      "section",
      { class: "view" },
      h("div", { class: "view-head" }, h("h1", null, "Nodes"), h("a", { href: "/tasky/v1/docs#/nodes", class: "small-text" }, "API: /tasky/v1/nodes")),
      h(
        "p",
        { class: "muted small-text" },
        "Tasks go to any live node with a free slot, or only where ?node=NAME or ?label=L sends them.",
      ),
      h("div", { class: "table-wrap" }, table),
    ),
  );
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
