// Starting a chain from the page: a named definition with a form for its parameters, or an ad
// hoc chain put together from steps and parallel groups. The server is the judge: its 422 names
// the step at fault, and the page shows the message on that step.

import { api, ApiError } from "./api.js";
import { h, replace, toast } from "./dom.js";
import { describe, schemaForm } from "./form.js";
import { loadWorkers } from "./state.js";

const WHEN = [
  ["success", "on success (default)"],
  ["failure", "on failure"],
  ["always", "always"],
];
let counter = 0;

function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
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

async function definitionPanel(definitions, onStarted) {
  const select = h("select", { id: "chain-definition" }, definitions.map((d) => h("option", { value: d.Name }, d.Name)));
  const description = h("p", { class: "muted small-text" });
  const holder = h("div");
  const submit = h("button", { type: "submit", class: "primary", id: "start-definition" }, "Start chain");
  let form = null;
  const element = h(
    "form",
    { class: "task-form", novalidate: true, id: "start-chain" },
    h("div", { class: "field" }, h("label", { class: "field-label", for: "chain-definition" }, "Definition"), select),
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

/** A starting config for a worker: its defaults, and an empty value of the right type for the rest. */
function configSkeleton(worker) {
  const schema = (worker && worker.config_objects) || {};
  const required = new Set(schema.required || []);
  const out = {};
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const info = describe(prop, schema);
    const preset = info.node.default ?? prop.default;
    if (preset !== undefined) out[name] = preset;
    else if (required.has(name)) {
      out[name] = { boolean: false, integer: 0, number: 0, lines: [], array: [], object: {} }[info.kind] ?? "";
    }
  }
  return out;
}

function labelled(label, control, help = "") {
  return h(
    "div",
    { class: "field" },
    h("label", { class: "field-label", for: control.id }, label),
    control,
    help ? h("p", { class: "help" }, help) : null,
  );
}

function whenSelect(id) {
  return h("select", { id }, WHEN.map(([value, text]) => h("option", { value }, text)));
}

/** One step's editor: name, worker, config as JSON (references allowed), and when (top level). */
function stepEditor(workers, name, { inGroup, onRemove }) {
  const nameInput = h("input", { id: uid("step-name"), class: "step-name-input", value: name, autocomplete: "off", spellcheck: "false" });
  const worker = h("select", { id: uid("step-worker"), class: "step-worker" }, workers.map((w) => h("option", { value: w.name }, w.name)));
  const when = inGroup ? null : whenSelect(uid("step-when"));
  const config = h("textarea", { id: uid("step-config"), class: "mono step-config", rows: "3", spellcheck: "false" });
  const error = h("p", { class: "field-error step-error", role: "alert" });
  let prefilled = "";
  function prefill() {
    // Only while untouched: a config someone typed is never thrown away by a worker change.
    if (config.value.trim() && config.value !== prefilled) return;
    prefilled = JSON.stringify(configSkeleton(workers.find((w) => w.name === worker.value)), null, 2);
    config.value = prefilled;
    config.rows = Math.min(12, Math.max(3, prefilled.split("\n").length));
  }
  worker.addEventListener("change", prefill);
  prefill();
  const remove = h("button", { type: "button", class: "ghost small remove-step" }, "Remove step");
  remove.addEventListener("click", onRemove);
  const element = h(
    "div",
    { class: "step-editor" },
    h(
      "div",
      { class: "fields three" },
      labelled("Step name", nameInput),
      labelled("Worker", worker),
      when ? labelled("Runs", when) : null,
    ),
    labelled("Config (JSON)", config, "The worker's config. Strings may use ${params.NAME} and ${steps.STEP.result.FIELD}."),
    error,
    h("div", { class: "row end" }, remove),
  );
  function read() {
    let parsed;
    try {
      parsed = JSON.parse(config.value || "{}");
    } catch (exc) {
      return { problem: `config is not JSON: ${exc.message}` };
    }
    const step = { name: nameInput.value.trim(), worker: worker.value, config: parsed };
    if (when && when.value !== "success") step.when = when.value;
    return { step };
  }
  return { element, read, error, nameOf: () => nameInput.value.trim(), focus: () => nameInput.focus() };
}

function adhocPanel(workers, onStarted) {
  const stages = []; // {element, read(), editors: [stepEditor]}
  let steps = 0;
  const list = h("div", { class: "stage-list", id: "chain-stages" });
  const nameInput = h("input", { id: "chain-name", autocomplete: "off", placeholder: "nightly-backup" });
  const onFailure = h("select", { id: "chain-on-failure" }, h("option", { value: "stop" }, "stop the chain"), h("option", { value: "continue" }, "go on"));
  const parameters = h("textarea", { id: "chain-parameters", class: "mono", rows: "2", spellcheck: "false" }, "{}");
  const formError = h("div", { class: "form-error", role: "alert", hidden: true });
  const addStep = h("button", { type: "button", class: "ghost", id: "add-step" }, "+ Step");
  const addGroup = h("button", { type: "button", class: "ghost", id: "add-group" }, "+ Parallel group");
  const submit = h("button", { type: "submit", class: "primary", id: "start-adhoc" }, "Start chain");

  const nextName = () => `step${++steps}`;

  function dropStage(stage) {
    stages.splice(stages.indexOf(stage), 1);
    stage.element.remove();
    numberStages();
  }

  function numberStages() {
    stages.forEach((stage, i) => {
      stage.element.querySelector(".stage-number").textContent = `Stage ${i + 1}`;
    });
  }

  function addSingle() {
    const stage = { editors: [] };
    const editor = stepEditor(workers, nextName(), { inGroup: false, onRemove: () => dropStage(stage) });
    stage.editors.push(editor);
    stage.element = h("div", { class: "stage-editor", dataset: { kind: "step" } }, h("span", { class: "stage-number" }), editor.element);
    stage.read = () => {
      const got = editor.read();
      return got.problem ? { problems: [[editor, got.problem]] } : { spec: got.step };
    };
    stages.push(stage);
    list.append(stage.element);
    numberStages();
    return editor;
  }

  function addParallel() {
    const stage = { editors: [] };
    const groupName = h("input", { id: uid("group-name"), class: "group-name-input", value: `group${stages.length + 1}`, autocomplete: "off", spellcheck: "false" });
    const when = whenSelect(uid("group-when"));
    const inner = h("div", { class: "group-steps" });
    const addInner = h("button", { type: "button", class: "ghost small add-group-step" }, "+ Step in this group");
    const removeGroup = h("button", { type: "button", class: "ghost small remove-group" }, "Remove group");
    function addMember() {
      const editor = stepEditor(workers, nextName(), {
        inGroup: true,
        onRemove: () => {
          stage.editors.splice(stage.editors.indexOf(editor), 1);
          editor.element.remove();
          if (!stage.editors.length) dropStage(stage);
        },
      });
      stage.editors.push(editor);
      inner.append(editor.element);
      return editor;
    }
    addInner.addEventListener("click", () => addMember().focus());
    removeGroup.addEventListener("click", () => dropStage(stage));
    stage.element = h(
      "fieldset",
      { class: "stage-editor group-editor", dataset: { kind: "group" } },
      h("legend", null, h("span", { class: "stage-number" }), " · parallel group"),
      h("div", { class: "fields three" }, labelled("Group name", groupName), labelled("Runs", when)),
      inner,
      h("div", { class: "row" }, addInner, h("span", { class: "spacer" }), removeGroup),
    );
    stage.read = () => {
      const problems = [];
      const parallel = [];
      for (const editor of stage.editors) {
        const got = editor.read();
        if (got.problem) problems.push([editor, got.problem]);
        else parallel.push(got.step);
      }
      if (problems.length) return { problems };
      const spec = { name: groupName.value.trim(), parallel };
      if (when.value !== "success") spec.when = when.value;
      return { spec };
    };
    stages.push(stage);
    list.append(stage.element);
    numberStages();
    addMember();
    return addMember();
  }

  addStep.addEventListener("click", () => addSingle().focus());
  addGroup.addEventListener("click", () => addParallel().focus());
  addSingle();

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    for (const stage of stages) {
      for (const editor of stage.editors) {
        editor.error.textContent = "";
        editor.element.classList.remove("invalid");
      }
    }
  }

  function showOnStep(editor, message) {
    editor.error.textContent = message;
    editor.element.classList.add("invalid");
  }

  const element = h(
    "form",
    { class: "task-form", novalidate: true, id: "adhoc-chain" },
    h("div", { class: "fields two" }, labelled("Chain name", nameInput), labelled("When a step fails", onFailure)),
    list,
    h("div", { class: "row" }, addStep, addGroup),
    h("details", { class: "advanced" }, h("summary", null, "Parameters"), labelled("Parameters (JSON object)", parameters, "Values the steps read as ${params.NAME}.")),
    formError,
    h("div", { class: "row end" }, submit),
  );

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const specs = [];
    let bad = null;
    for (const stage of stages) {
      const got = stage.read();
      if (got.problems) {
        for (const [editor, message] of got.problems) showOnStep(editor, message);
        bad = bad || got.problems[0][0];
      } else specs.push(got.spec);
    }
    let params;
    try {
      params = JSON.parse(parameters.value || "{}");
    } catch (exc) {
      formError.textContent = `Parameters are not JSON: ${exc.message}`;
      formError.hidden = false;
      return;
    }
    if (bad) return bad.focus();
    const body = { on_failure: onFailure.value, parameters: params, steps: specs };
    if (nameInput.value.trim()) body.name = nameInput.value.trim();
    submit.disabled = true;
    try {
      const created = await api("/chains", { method: "POST", body });
      toast("Chain started", "ok");
      onStarted(created.ChainId);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      formError.textContent = error.message;
      formError.hidden = false;
      const named = error.body.Step;
      const editor = named ? stages.flatMap((s) => s.editors).find((e) => e.nameOf() === named) : null;
      if (editor) {
        showOnStep(editor, error.message);
        editor.focus();
      }
    } finally {
      submit.disabled = false;
    }
  });
  return element;
}

/** The "Start a chain" card: from a definition (when there are some) or from steps. */
export async function newChainPanel(onStarted) {
  const workers = await loadWorkers();
  let definitions = [];
  try {
    definitions = (await api("/chain-definitions")).Definitions || [];
  } catch {
    definitions = [];
  }
  const panels = [];
  if (definitions.length) panels.push(["definition", "From a definition", await definitionPanel(definitions, onStarted)]);
  panels.push(["steps", "From steps", adhocPanel(workers, onStarted)]);
  const tabs = h("div", { class: "segmented", role: "tablist", "aria-label": "How to start a chain" });
  const bodies = [];
  panels.forEach(([key, label, body], index) => {
    const tab = h("button", { type: "button", role: "tab", id: `chain-tab-${key}`, "aria-controls": `chain-panel-${key}` }, label);
    const panel = h("div", { role: "tabpanel", id: `chain-panel-${key}`, "aria-labelledby": tab.id }, body);
    tab.addEventListener("click", () => show(index));
    tabs.append(tab);
    bodies.push([tab, panel]);
  });
  function show(chosen) {
    bodies.forEach(([tab, panel], index) => {
      tab.setAttribute("aria-selected", String(index === chosen));
      tab.tabIndex = index === chosen ? 0 : -1;
      panel.hidden = index !== chosen;
    });
  }
  // Arrow keys move between the tabs, as in every tab list.
  tabs.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const at = bodies.findIndex(([tab]) => tab === document.activeElement);
    if (at < 0) return;
    const next = (at + (event.key === "ArrowRight" ? 1 : bodies.length - 1)) % bodies.length;
    show(next);
    bodies[next][0].focus();
  });
  show(0);
  return h(
    "section",
    { class: "card", id: "new-chain" },
    h("div", { class: "card-head" }, h("h2", null, "Start a chain"), bodies.length > 1 ? tabs : h("span", { class: "muted small-text" }, "from steps (this server has no named definitions)")),
    bodies.map(([, panel]) => panel),
  );
}
