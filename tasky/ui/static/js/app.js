// The page's entry point: a hash router over the views, the live indicator, and the one event
// stream every view listens to.

import { h, replace, toast } from "./dom.js";
import { EventStream } from "./sse.js";
import { getMeta, loadMeta, loadWorkers, publish } from "./state.js";
import { mountChains } from "./views/chains.js";
import { mountDetail } from "./views/detail.js";
import { mountSchedules } from "./views/schedules.js";
import { mountStats } from "./views/stats.js";
import { mountTasks } from "./views/tasks.js";
import { mountWorkers } from "./views/workers.js";

const main = document.getElementById("main");
let cleanup = () => {};
let generation = 0;

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
  else mount = () => mountTasks(main, params);
  selectTab(section === "tasks" || !["workers", "stats", "chains", "schedules"].includes(section) ? "tasks" : section);
  try {
    const done = await mount();
    if (mine !== generation) {
      if (typeof done === "function") done(); // the user moved on while this view loaded
      return;
    }
    cleanup = typeof done === "function" ? done : () => {};
  } catch (error) {
    if (mine !== generation) return;
    console.error(error);
    replace(main, h("section", { class: "view" }, h("h1", null, "Something went wrong"), h("p", { class: "error-box" }, error.message || String(error))));
  }
}

function setLive(state) {
  const node = document.getElementById("live");
  node.dataset.state = state;
  node.querySelector(".live-text").textContent = { live: "live", connecting: "connecting", reconnecting: "reconnecting" }[state] || state;
}

async function start() {
  try {
    await loadMeta();
    await loadWorkers();
  } catch (error) {
    replace(main, h("p", { class: "error-box" }, `Cannot reach the Tasky API: ${error.message}`));
    return;
  }
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
