// Chains: the list (live), starting a named definition, and one chain's steps with their
// statuses, tasks and outputs, live.

import { api, ApiError } from "../api.js";
import { statusBadge } from "../actions.js";
import { h, prettyJson, replace, singleFlight, throttle, toast } from "../dom.js";
import * as fmt from "../format.js";
import { schemaForm } from "../form.js";
import { getMeta, onEvent } from "../state.js";

const CHAIN_ACTIONS = [
  ["pause", "Pause"],
  ["resume", "Resume"],
  ["cancel", "Cancel"],
  ["restart", "Restart"],
];

function chainButtons(chain, onDone) {
  const sources = getMeta().ChainActionSources || {};
  return h(
    "div",
    { class: "actions" },
    CHAIN_ACTIONS.map(([action, label]) => {
      const allowed = (sources[action] || []).includes(chain.Status);
      const button = h(
        "button",
        {
          type: "button",
          class: ["action", `action-${action === "restart" ? "run" : action}`, "small-text"],
          disabled: !allowed,
          title: allowed ? label : `${label}: not possible while ${chain.Status}`,
          dataset: { action },
        },
        label,
      );
      button.addEventListener("click", async (event) => {
        event.stopPropagation();
        button.disabled = true;
        try {
          await api(`/chains/${chain.ChainId}/actions`, { method: "POST", body: { action } });
        } catch (error) {
          toast(`${label} failed: ${error.message}`, "error");
        }
        onDone();
      });
      return button;
    }),
  );
}

/** A form for a definition's parameters: their defaults say what type each one is. */
function parameterSchema(parameters) {
  const properties = {};
  for (const [name, value] of Object.entries(parameters || {})) {
    const type =
      typeof value === "boolean" ? "boolean"
      : Number.isInteger(value) ? "integer"
      : typeof value === "number" ? "number"
      : typeof value === "string" ? "string"
      : undefined;
    properties[name] = { title: name, default: value, ...(type ? { type } : {}) };
  }
  return { properties };
}

async function startPanel(onStarted) {
  let definitions = [];
  try {
    definitions = (await api("/chain-definitions")).Definitions || [];
  } catch {
    return null;
  }
  if (!definitions.length) return null;
  const select = h("select", { id: "chain-definition" }, definitions.map((d) => h("option", { value: d.Name }, d.Name)));
  const description = h("p", { class: "muted small-text" });
  const holder = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Start chain");
  let form = null;
  const element = h(
    "form",
    { class: "card task-form", novalidate: true, id: "start-chain" },
    h("div", { class: "card-head" }, h("h2", null, "Start a chain"), h("label", { class: "inline" }, "Definition", select)),
    description,
    holder,
    h("div", { class: "row end" }, submit),
  );
  function pick() {
    const chosen = definitions.find((d) => d.Name === select.value);
    description.textContent = chosen.Description || "";
    form = schemaForm(parameterSchema(chosen.Parameters), { idPrefix: "param-" });
    replace(holder, Object.keys(chosen.Parameters || {}).length ? form.element : h("p", { class: "muted" }, "No parameters."));
  }
  select.addEventListener("change", pick);
  pick();
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { value, problems } = form.read();
    if (problems.length) return form.showErrors(problems);
    submit.disabled = true;
    try {
      const created = await api(`/chain-definitions/${encodeURIComponent(select.value)}/start`, {
        method: "POST",
        body: { parameters: value },
      });
      toast("Chain started", "ok");
      onStarted(created.ChainId);
    } catch (error) {
      if (error instanceof ApiError) form.showErrors(error.fields, error.message);
      else throw error;
    } finally {
      submit.disabled = false;
    }
  });
  return element;
}

async function mountList(main) {
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, "No chains yet.");
  const table = h(
    "table",
    { class: "tasks chains", id: "chain-table" },
    h("thead", null, h("tr", null, ["Status", "Chain", "Name", "Duration", "Created", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    tbody,
  );
  const panel = await startPanel((id) => {
    location.hash = `#/chains/${id}`;
  });
  replace(
    main,
    h(
      "section",
      { class: "view" },
      h("div", { class: "view-head" }, h("h1", null, "Chains"), h("a", { href: "/tasky/v1/docs#/chains", class: "small-text" }, "API: POST /tasky/v1/chains")),
      panel,
      h("div", { class: "table-wrap" }, table),
      empty,
    ),
  );

  const load = singleFlight(async () => {
    const page = await api("/chains", { query: { order: "desc", limit: 50 } });
    replace(
      tbody,
      page.Chains.map((chain) =>
        h(
          "tr",
          { dataset: { chain: chain.ChainId } },
          h("td", { dataset: { label: "Status" } }, statusBadge(chain.Status)),
          h("td", { dataset: { label: "Chain" } }, h("a", { href: `#/chains/${chain.ChainId}`, class: "mono task-link" }, fmt.shortId(chain.ChainId))),
          h("td", { dataset: { label: "Name" } }, chain.Name || chain.Definition || "—"),
          h("td", { dataset: { label: "Duration" } }, fmt.duration(chain.DurationSeconds ?? (chain.Status === "Running" ? Date.now() / 1000 - chain.CreatedAt : null))),
          h("td", { dataset: { label: "Created" }, title: fmt.fullTime(chain.CreatedAt) }, fmt.ago(chain.CreatedAt)),
          h("td", { dataset: { label: "Actions" } }, chainButtons(chain, () => soon())),
        ),
      ),
    );
    empty.hidden = page.Chains.length > 0;
    table.hidden = page.Chains.length === 0;
  });
  const soon = throttle(() => load().catch(() => {}), 700);
  const stop = onEvent((event) => {
    if ((event.type || "").startsWith("chain.") || event.type === "stream.reset") soon();
  });
  await load();
  return () => {
    stop();
    soon.cancel();
  };
}

function stepItem(step) {
  return h(
    "li",
    { class: "chain-step", dataset: { step: step.Name, status: step.Status } },
    statusBadge(step.Status),
    h("span", { class: "step-name" }, step.Name),
    h("span", { class: "muted" }, step.Worker),
    step.TaskId ? h("a", { href: `#/tasks/${step.TaskId}`, class: "mono small-text" }, fmt.shortId(step.TaskId)) : null,
    h("span", { class: "spacer" }),
    step.DurationSeconds !== null && step.DurationSeconds !== undefined ? h("span", { class: "muted small-text" }, fmt.duration(step.DurationSeconds)) : null,
    step.Error ? h("div", { class: "error-box small-text step-error" }, step.Error) : null,
  );
}

async function mountChain(main, chainId) {
  const body = h("div", { class: "view detail", id: "chain-detail" });
  replace(main, body);

  const load = singleFlight(async () => {
    let chain;
    try {
      chain = await api(`/chains/${chainId}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        replace(body, h("h1", null, "No such chain"), h("a", { href: "#/chains" }, "← All chains"));
        return;
      }
      throw error;
    }
    const stages = new Map();
    for (const step of chain.Steps) {
      if (!stages.has(step.Stage)) stages.set(step.Stage, { group: step.Group, when: step.When, steps: [] });
      stages.get(step.Stage).steps.push(step);
    }
    replace(
      body,
      h("a", { href: "#/chains", class: "back" }, "← All chains"),
      h(
        "div",
        { class: "detail-head" },
        h(
          "div",
          { class: "title-row" },
          h("h1", null, chain.Name || chain.Definition || "Chain", " ", h("span", { class: "muted mono id" }, fmt.shortId(chain.ChainId))),
          statusBadge(chain.Status),
          h("span", { class: "spacer" }),
          chainButtons(chain, () => soon()),
        ),
      ),
      chain.Error ? h("div", { class: "error-box" }, chain.Error) : null,
      h(
        "div",
        { class: "detail-grid" },
        h(
          "section",
          { class: "card" },
          h("div", { class: "card-head" }, h("h2", null, "Steps"), h("span", { class: "muted small-text" }, `on failure: ${chain.OnFailure}`)),
          h(
            "div",
            { class: "stack" },
            [...stages.entries()].map(([index, stage]) =>
              h(
                "div",
                { class: "chain-stage" },
                h("span", { class: "chain-stage-name" }, `Stage ${index + 1}${stage.group ? ` · ${stage.group} (parallel)` : ""}${stage.when && stage.when !== "success" ? ` · when ${stage.when}` : ""}`),
                h("ol", { class: "chain-steps" }, stage.steps.map(stepItem)),
              ),
            ),
          ),
        ),
        h(
          "div",
          { class: "stack" },
          h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", null, "Result")), chain.Status === "Completed" ? h("pre", { class: "json" }, prettyJson(chain.Result)) : h("p", { class: "muted" }, "Not finished yet.")),
          h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", null, "Parameters")), h("pre", { class: "json" }, prettyJson(chain.Parameters))),
          h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", null, "Timings")), h("dl", { class: "kv" }, h("dt", null, "Created"), h("dd", null, fmt.fullTime(chain.CreatedAt)), h("dt", null, "Finished"), h("dd", null, fmt.fullTime(chain.FinishedAt) || "—"), h("dt", null, "Restarts"), h("dd", null, String(chain.Restarts)))),
        ),
      ),
    );
  });
  const soon = throttle(() => load().catch(() => {}), 400);
  const stop = onEvent((event) => {
    // Steps' progress and log lines do not change this view; statuses do.
    const relevant = event.type === "task.status" || event.type === "task.created" || (event.type || "").startsWith("chain.");
    if ((event.chain === chainId && relevant) || event.type === "stream.reset") soon();
  });
  await load();
  return () => {
    stop();
    soon.cancel();
  };
}

export async function mountChains(main, id) {
  return id ? mountChain(main, id) : mountList(main);
}
