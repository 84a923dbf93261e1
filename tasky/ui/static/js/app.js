// The page's entry point: a hash router over the views, the live indicator, and the one event
// stream every view listens to.

import { h, replace, toast } from "./dom.js";
import { EventStream } from "./sse.js";
import { getMeta, loadMeta, loadWorkers, publish } from "./state.js";
import { mountChains } from "./views/chains.js";
import { mountDetail } from "./views/detail.js";
import { mountNodes } from "./views/nodes.js";
import { mountSchedules } from "./views/schedules.js";
import { mountStats } from "./views/stats.js";
import { mountTasks } from "./views/tasks.js";
import { mountWorkers } from "./views/workers.js";

const main = document.getElementById("main");
let cleanup = () => {};
let generation = 0;
// The view on screen could not be drawn (the server was down, or answered an error): it is drawn
// again when the live connection comes back, and its Retry button does the same on demand.
let viewFailed = false;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

function selectTab(name) {
  for (const link of document.querySelectorAll(".tabs a")) {
    const on = link.dataset.tab === name;
    link.classList.toggle("active", on);
    if (on) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const mine = ++generation;
  cleanup();
  cleanup = () => {};
  const { parts, params } = parseHash();
  const [section = "tasks", id] = parts;
  let mount;
  if (section === "tasks" && id) mount = () => mountDetail(main, id);
  else if (section === "workers") mount = () => mountWorkers(main, id);
  else if (section === "stats") mount = () => mountStats(main, id);
  else if (section === "chains" && getMeta().Chains) mount = () => mountChains(main, id);
  else if (section === "schedules") mount = () => mountSchedules(main);
  else if (section === "nodes") mount = () => mountNodes(main);
  else mount = () => mountTasks(main, params);
  selectTab(section === "tasks" || !["workers", "stats", "chains", "schedules", "nodes"].includes(section) ? "tasks" : section);
  try {
    const done = await mount();
    if (mine !== generation) {
      if (typeof done === "function") done(); // the user moved on while this view loaded
      return;
    }
    cleanup = typeof done === "function" ? done : () => {};
    viewFailed = false;
  } catch (error) {
    if (mine !== generation) return;
    console.error(error);
    viewFailed = true;
    showFailure("Something went wrong", error, route);
  }
}

/** The failure of a whole view, with what happened and a Retry button. */
function showFailure(title, error, retry) {
  const button = h("button", { type: "button", class: "primary", id: "retry-view" }, "Retry");
  button.addEventListener("click", () => {
    button.disabled = true;
    retry();
  });
  replace(
    main,
    h(
      "section",
      { class: "view", id: "view-error" },
      h("h1", null, title),
      h("p", { class: "error-box" }, describeError(error)),
      h("div", { class: "row" }, button, h("span", { class: "muted" }, "It is also tried again once the connection to the server is back.")),
    ),
  );
}

function describeError(error) {
  // fetch() rejects with a TypeError when nothing answered at all.
  if (error instanceof TypeError) return `The server cannot be reached (${error.message}): it may be down or restarting.`;
  return error.message || String(error);
}

let liveState = "connecting";
function setLive(state) {
  const node = document.getElementById("live");
  node.dataset.state = state;
  node.querySelector(".live-text").textContent = { live: "live", connecting: "connecting", reconnecting: "reconnecting" }[state] || state;
  const cameBack = state === "live" && liveState !== "live";
  liveState = state;
  if (cameBack && viewFailed) route();
}

/** What the page needs before any view: the server's metadata and its workers. */
async function loadBasics() {
  for (let failures = 0; ; failures++) {
    try {
      await loadMeta();
      await loadWorkers();
      return;
    } catch (error) {
      let retryNow;
      const waited = new Promise((resolve) => {
        retryNow = resolve;
      });
      showFailure("Cannot reach the Tasky API", error, () => retryNow());
      setTimeout(retryNow, Math.min(2000 * 2 ** Math.min(failures, 3), 15000));
      await waited;
    }
  }
}

async function start() {
  await loadBasics();
  if (getMeta().Chains) document.getElementById("chains-tab").hidden = false;
  const stream = new EventStream(publish, setLive);
  stream.start();
  window.addEventListener("hashchange", route);
  window.addEventListener("unhandledrejection", (event) => {
    toast(event.reason && event.reason.message ? event.reason.message : "Request failed", "error");
  });
  await route();
}

start();
