// Workers and their generated forms: pick a worker, fill in its config, run it.

import { api, ApiError } from "../api.js";
import { h, replace, toast } from "../dom.js";
import { schemaForm } from "../form.js";
import { loadWorkers } from "../state.js";

function chips(items, cls) {
  return items.map((item) => h("span", { class: ["chip", cls] }, item));
}

async function workerInfo(name) {
  try {
    return await api(`/workers/${encodeURIComponent(name)}/info`);
  } catch {
    return null;
  }
}

/**
 * After a pick the view is drawn anew: scroll the list (a row of cards on a phone, a column that
 * stays in view on a desktop) back to the chosen card, and the page so that the form's title is
 * in sight below the sticky top bar.
 */
function keepInSight(list, card, title) {
  if (card) {
    const box = list.getBoundingClientRect();
    const at = card.getBoundingClientRect();
    if (list.scrollWidth > list.clientWidth) list.scrollLeft += at.left - box.left - (box.width - at.width) / 2;
    if (list.scrollHeight > list.clientHeight) list.scrollTop += at.top - box.top - (box.height - at.height) / 2;
  }
  const bar = document.querySelector(".topbar").getBoundingClientRect().bottom;
  const top = title.getBoundingClientRect().top;
  const room = 12;
  if (top < bar + room || top > window.innerHeight - 3 * room) {
    window.scrollBy({ top: top - bar - room, behavior: "instant" });
  }
}

export async function mountWorkers(main, name) {
  const workers = await loadWorkers(true);
  const selected = workers.find((w) => w.name.toLowerCase() === (name || "").toLowerCase()) || workers[0];
  const list = h("nav", { class: "worker-list", "aria-label": "Workers" });
  const panel = h("div", { class: "worker-panel card" });

  for (const worker of workers) {
    const item = h(
      "a",
      {
        href: `#/workers/${encodeURIComponent(worker.name)}`,
        class: ["worker-item", worker === selected && "selected", !worker.enabled && "disabled"],
        dataset: { worker: worker.name },
        "aria-current": worker === selected ? "page" : null,
      },
      h("span", { class: "worker-name" }, worker.name),
      h("span", { class: "worker-desc" }, worker.description),
    );
    list.append(item);
  }

  replace(
    main,
    h(
      "section",
      { class: "view" },
      h(
        "div",
        { class: "view-head" },
        h("h1", null, "Workers"),
        h("span", { class: "muted" }, `${workers.length} workers · pick one, fill in its config, run it`),
      ),
      workers.length
        ? h("div", { class: "workers-layout" }, list, panel)
        : h("p", { class: "empty" }, "This server has no workers registered."),
    ),
  );
  if (!selected) return () => {};

  const info = (await workerInfo(selected.name)) || selected;
  const schema = info.config_objects || {};
  const form = schemaForm(schema);
  const timeout = h("input", { type: "number", id: "opt-timeout", min: "0", step: "any", inputmode: "decimal", placeholder: info.timeout ? String(info.timeout) : "none" });
  const retries = h("input", { type: "number", id: "opt-retries", min: "0", max: "100", step: "1", inputmode: "numeric", placeholder: String(info.retries ?? 0) });
  const submit = h("button", { type: "submit", class: "primary", id: "submit-task", disabled: !info.enabled }, `Run ${info.name}`);
  const element = h(
    "form",
    { class: "task-form", id: "task-form", novalidate: true, dataset: { worker: info.name } },
    Object.keys(schema.properties || {}).length
      ? form.element
      : [form.element, h("p", { class: "muted" }, "This worker needs no config.")],
    h(
      "details",
      { class: "advanced" },
      h("summary", null, "Timeout and retries"),
      h(
        "div",
        { class: "fields two" },
        h("div", { class: "field" }, h("label", { for: "opt-timeout", class: "field-label" }, "Timeout (seconds)"), timeout, h("p", { class: "help" }, "Stop the task and mark it Failed after this long.")),
        h("div", { class: "field" }, h("label", { for: "opt-retries", class: "field-label" }, "Retries"), retries, h("p", { class: "help" }, "Extra attempts after a failure, with backoff.")),
      ),
    ),
    h("div", { class: "row end" }, submit),
  );

  const title = h("h2", { id: "worker-title" }, info.name);
  replace(
    panel,
    h(
      "div",
      { class: "worker-head" },
      title,
      h(
        "div",
        { class: "chips" },
        chips([`${info.mode} mode`, `max ${info.max_tasks} at once`], "plain"),
        chips(info.actions || [], "action-chip"),
        info.enabled ? null : h("span", { class: "chip danger" }, "disabled"),
      ),
    ),
    h("p", { class: "description" }, info.description),
    info.usage ? h("p", { class: "usage muted" }, info.usage) : null,
    element,
  );

  keepInSight(list, list.querySelector(".worker-item.selected"), title);

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.clearErrors();
    const { value, problems } = form.read();
    if (problems.length) return form.showErrors(problems);
    submit.disabled = true;
    try {
      const created = await api(`/workers/${encodeURIComponent(info.name)}`, {
        method: "POST",
        body: value,
        query: { timeout: timeout.value, retries: retries.value },
      });
      toast(`${info.name} task created`, "ok");
      location.hash = `#/tasks/${created.TaskId}`;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 422 || error.status === 400)) {
        form.showErrors(error.fields, error.message);
      } else {
        toast(error.message, "error");
      }
    } finally {
      submit.disabled = !info.enabled;
    }
  });
  return () => {};
}
