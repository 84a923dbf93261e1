// A task's log on the detail view: lines following live, a search that keeps only the lines that
// match (the matches marked), and a download of the whole log as a text file.

import { api } from "./api.js";
import { h, toast } from "./dom.js";
import * as fmt from "./format.js";

const PAGE = 1000;
const FINISHED = ["Completed", "Failed", "Canceled"];

/** Every line of the task's log, read page by page, as the text of a .log file. */
async function wholeLog(taskId) {
  const out = [];
  let after = 0;
  let dropped = 0;
  for (;;) {
    const page = await api(`/tasks/${taskId}/logs`, { query: { after, limit: PAGE } });
    dropped = page.Dropped || 0;
    for (const line of page.Lines) out.push(`${new Date(line.Time * 1000).toISOString()}  ${line.Line}\n`);
    after = page.Next;
    if (page.Lines.length < PAGE) break;
  }
  if (dropped) out.unshift(`# ${dropped} older lines were dropped (the server keeps the newest ones)\n`);
  return out.join("");
}

async function download(taskId, button) {
  button.disabled = true;
  try {
    const text = await wholeLog(taskId);
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    const link = h("a", { href: url, download: `tasky-${taskId}.log`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    // The download has its own copy once it started; the URL only keeps the text alive.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    toast(`Download failed: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

/**
 * The log card's parts for task `taskId`: {box, tools, empty, load(), setStatus(status)}.
 * `load` reads the lines after the last one shown (one read at a time is the caller's job).
 */
export function logView(taskId) {
  const lines = [];
  let next = 0;
  let dropped = 0;
  let status = "";
  let pattern = null; // the search, as a case-insensitive RegExp of the literal text

  const box = h("pre", { class: "logs", id: "task-logs", tabindex: "0", "aria-label": "Log lines" });
  const empty = h("p", { class: "muted logs-empty", id: "logs-empty" });
  const info = h("span", { class: "muted small-text", id: "logs-info" });
  const follow = h("input", { type: "checkbox", id: "follow-logs" });
  follow.checked = true;
  const search = h("input", {
    type: "search",
    id: "logs-search",
    class: "small-input",
    placeholder: "Search the log",
    "aria-label": "Search the log",
    autocomplete: "off",
  });
  const save = h("button", { type: "button", class: "ghost small", id: "logs-download", title: "Download the whole log as a text file" }, "Download");
  save.addEventListener("click", () => download(taskId, save));
  const tools = h("span", { class: "row log-tools" }, search, info, h("label", { class: "inline small-text" }, follow, "Follow"), save);

  function matches(line) {
    return !pattern || line.Line.search(pattern) >= 0;
  }

  // The line as nodes, its matches in <mark> (text nodes only: log lines are untrusted). The
  // search runs on the line itself, not on its time, and case-insensitively.
  function lineNodes(line) {
    const prefix = `${fmt.time(line.Time)}  `;
    if (!pattern) return [document.createTextNode(`${prefix}${line.Line}\n`)];
    const nodes = [document.createTextNode(prefix)];
    let at = 0;
    for (const found of line.Line.matchAll(pattern)) {
      nodes.push(document.createTextNode(line.Line.slice(at, found.index)), h("mark", null, found[0]));
      at = found.index + found[0].length;
    }
    nodes.push(document.createTextNode(`${line.Line.slice(at)}\n`));
    return nodes;
  }

  function drawInfo() {
    const shown = pattern ? lines.filter(matches).length : lines.length;
    const note = dropped ? ` (${fmt.count(dropped)} older lines dropped)` : "";
    info.textContent = pattern && lines.length ? `${fmt.count(shown)} of ${fmt.count(lines.length)} lines match${note}` : `${fmt.count(lines.length)} lines${note}`;
    const finished = FINISHED.includes(status);
    empty.textContent = !lines.length ? (finished ? "No log lines." : "No log lines yet.") : pattern && !shown ? "No line matches." : "";
    empty.hidden = !empty.textContent;
    box.hidden = lines.length === 0;
  }

  function redraw() {
    box.replaceChildren(...lines.filter(matches).flatMap(lineNodes));
    drawInfo();
  }

  search.addEventListener("input", () => {
    const text = search.value.trim();
    pattern = text ? new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi") : null;
    redraw();
  });

  async function load() {
    for (let i = 0; i < 20; i++) {
      const page = await api(`/tasks/${taskId}/logs`, { query: { after: next, limit: PAGE } });
      status = page.Status;
      dropped = page.Dropped || 0;
      if (page.Lines.length) {
        const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
        lines.push(...page.Lines);
        box.append(...page.Lines.filter(matches).flatMap(lineNodes));
        if (follow.checked && atBottom) box.scrollTop = box.scrollHeight;
      }
      next = page.Next;
      drawInfo();
      if (page.Lines.length < PAGE) return;
    }
  }

  function setStatus(value) {
    status = value;
    drawInfo();
  }

  drawInfo();
  return { box, tools, empty, load, setStatus };
}
