// Schedules: the list with next and last runs, pause / resume / run now / delete, and a form to
// add one. Schedules send no events of their own, so the list is re-read every few seconds.

import { api, ApiError } from "../api.js";
import { h, keepFocus, replace, singleFlight, toast } from "../dom.js";
import * as fmt from "../format.js";
import { loadWorkers } from "../state.js";

const REFRESH_MS = 2000;

function field(name, label, control, help = "") {
  return h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { class: "field-label", for: control.id }, label),
    control,
    help ? h("p", { class: "help" }, help) : null,
    h("p", { class: "field-error", id: `${control.id}-error` }),
  );
}

function showErrors(form, fields, message) {
  for (const node of form.querySelectorAll(".field")) {
    node.classList.remove("invalid");
    node.querySelector(".field-error").textContent = "";
  }
  let placed = false;
  for (const problem of fields || []) {
    // "config.seconds" belongs to the config box; "timezone" to its own field.
    const name = String(problem.field || "").split(".")[0];
    const node = form.querySelector(`.field[data-field="${CSS.escape(name)}"]`) || form.querySelector('.field[data-field="config"]');
    if (!node || !problem.field || problem.field === "(body)") continue;
    node.classList.add("invalid");
    node.querySelector(".field-error").textContent = problem.message;
    placed = true;
  }
  const box = form.querySelector(".form-error");
  box.textContent = placed || !message ? "" : message;
  box.hidden = !box.textContent;
}

async function addForm(onAdded) {
  const workers = await loadWorkers();
  const name = h("input", { id: "schedule-name", required: true, placeholder: "nightly-report" });
  const worker = h("select", { id: "schedule-worker" }, workers.map((w) => h("option", { value: w.name }, w.name)));
  const config = h("textarea", { id: "schedule-config", rows: 3, spellcheck: false }, "{}");
  const kind = h("select", { id: "schedule-kind" }, h("option", { value: "cron" }, "cron"), h("option", { value: "interval" }, "every (seconds)"));
  const when = h("input", { id: "schedule-when", required: true, placeholder: "30 2 * * *" });
  const timezone = h("input", { id: "schedule-timezone", value: "UTC" });
  const catchUp = h("select", { id: "schedule-catch-up" }, h("option", { value: "skip" }, "skip missed runs"), h("option", { value: "once" }, "run once to catch up"));
  const whenField = field("cron", "When", when, "Five cron fields or @hourly, @daily…; or seconds.");
  kind.addEventListener("change", () => {
    whenField.dataset.field = kind.value;
    when.placeholder = kind.value === "cron" ? "30 2 * * *" : "60";
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Add schedule");
  const form = h(
    "form",
    { class: "card task-form", novalidate: true, id: "add-schedule" },
    h("div", { class: "card-head" }, h("h2", null, "Add a schedule")),
    h(
      "div",
      { class: "fields two" },
      field("name", "Name", name),
      field("worker", "Worker", worker),
      field("kind", "Timing", kind),
      whenField,
      field("timezone", "Time zone", timezone, "An IANA name, like Europe/Paris."),
      field("catch_up", "Missed while down", catchUp),
    ),
    field("config", "Config (JSON)", config),
    h("p", { class: "form-error", hidden: true }),
    h("div", { class: "row end" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let parsed;
    try {
      parsed = JSON.parse(config.value || "{}");
    } catch (error) {
      return showErrors(form, [{ field: "config", message: `not JSON: ${error.message}` }]);
    }
    const body = { name: name.value.trim(), worker: worker.value, config: parsed, timezone: timezone.value.trim(), catch_up: catchUp.value };
    if (kind.value === "cron") body.cron = when.value.trim();
    else {
      const seconds = Number(when.value);
      if (!when.value.trim() || !Number.isFinite(seconds)) return showErrors(form, [{ field: "interval", message: "a number of seconds" }]);
      body.interval = seconds;
    }
    submit.disabled = true;
    try {
      await api("/schedules", { method: "POST", body });
      showErrors(form, []);
      toast(`Schedule ${body.name} added`, "ok");
      name.value = "";
      onAdded();
    } catch (error) {
      if (error instanceof ApiError) showErrors(form, error.fields, error.message);
      else throw error;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function scheduleButtons(schedule, onDone) {
  const path = `/schedules/${encodeURIComponent(schedule.Name)}`;
  const buttons = [
    schedule.Paused ? ["resume", "Resume", "POST", "/resume"] : ["pause", "Pause", "POST", "/pause"],
    ["run", "Run now", "POST", "/run"],
    ["delete", "Delete", "DELETE", ""],
  ];
  return h(
    "div",
    { class: "actions" },
    buttons.map(([action, label, method, suffix]) => {
      const button = h(
        "button",
        { type: "button", class: ["action", `action-${action === "delete" ? "cancel" : action}`, "small-text"], dataset: { action }, title: label },
        label,
      );
      button.addEventListener("click", async () => {
        if (action === "delete" && !window.confirm(`Delete schedule ${schedule.Name}?`)) return;
        button.disabled = true;
        try {
          await api(path + suffix, { method });
          if (action === "run") toast(`${schedule.Name}: started`, "ok");
        } catch (error) {
          toast(`${label} failed: ${error.message}`, "error");
        }
        onDone();
      });
      return button;
    }),
  );
}

function lastRun(schedule) {
  const id = schedule.LastTaskId || schedule.LastChainId;
  const href = schedule.LastTaskId ? `#/tasks/${id}` : `#/chains/${id}`;
  return h(
    "td",
    { dataset: { label: "Last run" }, title: schedule.LastRun ? fmt.fullTime(schedule.LastRun) : "" },
    schedule.LastRun ? fmt.ago(schedule.LastRun) + " " : "—",
    id ? h("a", { href, class: "mono task-link last-run" }, fmt.shortId(id)) : null,
    schedule.LastError ? h("div", { class: "error-box small-text" }, schedule.LastError) : null,
  );
}

export async function mountSchedules(main) {
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, "No schedules yet.");
  const table = h(
    "table",
    { class: "tasks schedules", id: "schedule-table" },
    h("thead", null, h("tr", null, ["Name", "Runs", "When", "Next run", "Last run", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    tbody,
  );
  const load = singleFlight(async () => {
    const { Schedules: schedules } = await api("/schedules");
    keepFocus(tbody, () => replace(
      tbody,
      schedules.map((s) =>
        h(
          "tr",
          { dataset: { schedule: s.Name, paused: String(s.Paused), key: s.Name } },
          h("td", { dataset: { label: "Name" } }, s.Name),
          h("td", { dataset: { label: "Runs" } }, s.Worker || `chain ${s.Chain}`),
          h("td", { dataset: { label: "When" }, class: "mono" }, s.Cron ? `${s.Cron}${s.TimeZone !== "UTC" ? ` (${s.TimeZone})` : ""}` : `every ${s.Every}`),
          h("td", { dataset: { label: "Next run" }, class: "next-run", title: s.NextRun ? fmt.fullTime(s.NextRun) : "" }, s.Paused ? "paused" : fmt.fullTime(s.NextRun)),
          lastRun(s),
          h("td", { dataset: { label: "Actions" } }, scheduleButtons(s, () => load().catch(() => {}))),
        ),
      ),
    ));
    empty.hidden = schedules.length > 0;
    table.hidden = schedules.length === 0;
  });
  const form = await addForm(() => load().catch(() => {}));
  replace(
    main,
    h(
      "section",
      { class: "view" },
      h("div", { class: "view-head" }, h("h1", null, "Schedules"), h("a", { href: "/tasky/v1/docs#/schedules", class: "small-text" }, "API: /tasky/v1/schedules")),
      form,
      h("div", { class: "table-wrap" }, table),
      empty,
    ),
  );
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
