// A form generated from a worker's config JSON Schema (pydantic's): one field per property, with
// its type, required mark, default, enum choices and range. The server stays the judge: its 422
// "Fields" are shown next to the fields they name.

import { h } from "./dom.js";

function resolve(schema, root) {
  let node = schema || {};
  for (let depth = 0; node.$ref && depth < 10; depth++) {
    const name = node.$ref.split("/").pop();
    node = { ...((root.$defs || root.definitions || {})[name] || {}), ...node, $ref: undefined };
  }
  return node;
}

/** The property's kind and constraints, with Optional[X] (anyOf X | null) unwrapped. */
export function describe(prop, root) {
  let node = resolve(prop, root);
  let nullable = false;
  const choices = node.anyOf || node.oneOf;
  if (choices) {
    const real = choices.map((c) => resolve(c, root)).filter((c) => c.type !== "null");
    nullable = real.length < choices.length;
    if (real.length === 1) node = { ...real[0], ...node, anyOf: undefined, oneOf: undefined };
    else node = { ...node, type: undefined };
  }
  let kind = "json";
  const type = Array.isArray(node.type) ? node.type.find((t) => t !== "null") : node.type;
  if (Array.isArray(node.enum)) kind = "enum";
  else if (node.const !== undefined) kind = "enum";
  else if (type === "boolean") kind = "boolean";
  else if (type === "integer" || type === "number") kind = type;
  else if (type === "string") kind = "string";
  else if (type === "array" || type === "object") kind = type;
  // A list of plain strings or numbers reads best as one item per line.
  const items = kind === "array" ? resolve(node.items, root) : null;
  if (items && ["string", "number", "integer"].includes(items.type) && !items.enum) kind = "lines";
  return { node, kind, nullable, type, itemType: items ? items.type : undefined };
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function hints(node, kind) {
  const parts = [];
  const low = node.exclusiveMinimum !== undefined ? `more than ${node.exclusiveMinimum}` : node.minimum !== undefined ? `at least ${node.minimum}` : "";
  const high = node.exclusiveMaximum !== undefined ? `less than ${node.exclusiveMaximum}` : node.maximum !== undefined ? `at most ${node.maximum}` : "";
  if (node.minimum !== undefined && node.maximum !== undefined) parts.push(`${node.minimum} to ${node.maximum}`);
  else parts.push(...[low, high].filter(Boolean));
  if (node.minLength !== undefined && node.minLength > 1) parts.push(`at least ${plural(node.minLength, "character")}`);
  if (node.maxLength !== undefined) parts.push(`at most ${plural(node.maxLength, "character")}`);
  if (node.pattern) parts.push(`pattern ${node.pattern}`);
  if (node.maxItems !== undefined) parts.push(`at most ${node.maxItems} items`);
  if (kind === "lines") parts.push("one per line");
  if (kind === "json") parts.push("JSON, or plain text");
  if (kind === "array" || kind === "object") parts.push(`JSON ${kind}`);
  return parts.join(" · ");
}

function inputFor(name, info, value, required) {
  const { node, kind } = info;
  const id = `field-${name}`;
  if (kind === "enum") {
    const options = Array.isArray(node.enum) ? node.enum : [node.const];
    const select = h("select", { id, name });
    if (!required) select.append(h("option", { value: "" }, "(default)"));
    for (const option of options) {
      select.append(h("option", { value: JSON.stringify(option) }, String(option)));
    }
    if (value !== undefined) select.value = JSON.stringify(value);
    return select;
  }
  if (kind === "boolean") {
    const box = h("input", { id, name, type: "checkbox" });
    box.checked = Boolean(value);
    return box;
  }
  if (kind === "integer" || kind === "number") {
    const input = h("input", {
      id,
      name,
      type: "number",
      inputmode: kind === "integer" ? "numeric" : "decimal",
      step: kind === "integer" ? "1" : "any",
    });
    const low = node.minimum ?? node.exclusiveMinimum;
    const high = node.maximum ?? node.exclusiveMaximum;
    if (low !== undefined) input.min = String(low);
    if (high !== undefined) input.max = String(high);
    if (value !== undefined && value !== null) input.value = String(value);
    return input;
  }
  if (kind === "string") {
    // A secret (SecretStr: format password, writeOnly) is typed into a password input, never shown.
    const secret = node.format === "password" || node.writeOnly === true;
    const long = !secret && (node.maxLength || 0) > 300 && (node.format === "textarea" || (node.maxLength || 0) > 10000);
    const input = long ? h("textarea", { id, name, rows: "3" }) : h("input", { id, name, type: "text" });
    if (node.maxLength !== undefined) input.maxLength = node.maxLength;
    if (secret) input.type = "password";
    if (value !== undefined && value !== null) input.value = String(value);
    input.autocomplete = "off";
    return input;
  }
  if (kind === "lines") {
    const area = h("textarea", { id, name, rows: "3", spellcheck: "false", class: "mono" });
    if (Array.isArray(value)) area.value = value.join("\n");
    return area;
  }
  const area = h("textarea", { id, name, rows: "3", spellcheck: "false", class: "mono" });
  if (value !== undefined && value !== null) {
    area.value = typeof value === "string" && kind === "json" ? value : JSON.stringify(value, null, 2);
  }
  return area;
}

function readField(field) {
  const { input, info, name } = field;
  const { kind } = info;
  if (kind === "boolean") return { value: input.checked };
  const raw = input.value;
  // Left empty: not sent, so the server applies the default or says the field is required.
  if (raw.trim() === "") return { omit: true };
  if (kind === "enum") return { value: JSON.parse(raw) };
  if (kind === "integer" || kind === "number") {
    const number = Number(raw);
    if (Number.isNaN(number)) return { error: "not a number" };
    return { value: number };
  }
  if (kind === "string") return { value: raw };
  if (kind === "lines") {
    const items = raw.split("\n").filter((line) => line.trim() !== "");
    if (info.itemType === "string") return { value: items };
    const numbers = items.map(Number);
    if (numbers.some(Number.isNaN)) return { error: "one number per line" };
    return { value: numbers };
  }
  try {
    const parsed = JSON.parse(raw);
    if (kind === "array" && !Array.isArray(parsed)) return { error: "must be a JSON array" };
    if (kind === "object" && (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))) {
      return { error: "must be a JSON object" };
    }
    return { value: parsed };
  } catch {
    // A free-form value: what is not JSON is sent as the text typed in.
    if (kind === "json") return { value: raw };
    return { error: `${name}: not valid JSON` };
  }
}

/**
 * Build the form. `values` pre-fills fields (editing a task's config); otherwise the defaults do.
 * Returns {element, fields, read(), showErrors(list), clearErrors()}.
 */
export function schemaForm(schema, { values, idPrefix = "" } = {}) {
  const root = schema || {};
  const properties = root.properties || {};
  const required = new Set(root.required || []);
  const fields = [];
  const element = h("div", { class: "fields" });
  for (const [name, prop] of Object.entries(properties)) {
    const info = describe(prop, root);
    const isRequired = required.has(name);
    const initial = values && name in values ? values[name] : info.node.default ?? prop.default;
    const input = inputFor(idPrefix + name, info, initial, isRequired);
    input.setAttribute("aria-describedby", `help-${idPrefix}${name} error-${idPrefix}${name}`);
    const error = h("p", { class: "field-error", id: `error-${idPrefix}${name}`, role: "alert" });
    const help = [info.node.description || prop.description, hints(info.node, info.kind)]
      .filter(Boolean)
      .join(" — ");
    const defaultText =
      prop.default !== undefined && prop.default !== null ? `default ${JSON.stringify(prop.default)}` : "";
    const label = h(
      "label",
      { for: input.id, class: "field-label" },
      info.node.title || prop.title || name,
      isRequired ? h("span", { class: "required", title: "required" }, " *") : null,
      h("code", { class: "field-name" }, name),
    );
    const wrapper = h(
      "div",
      { class: ["field", `kind-${info.kind}`], dataset: { field: name } },
      info.kind === "boolean" ? h("div", { class: "check" }, input, label) : [label, input],
      h("p", { class: "help", id: `help-${idPrefix}${name}` }, [help, defaultText].filter(Boolean).join(" · ")),
      error,
    );
    element.append(wrapper);
    fields.push({ name, input, info, required: isRequired, wrapper, error });
  }
  const formError = h("div", { class: "form-error", role: "alert", hidden: true });
  element.prepend(formError);

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    for (const field of fields) {
      field.error.textContent = "";
      field.wrapper.classList.remove("invalid");
      field.input.removeAttribute("aria-invalid");
    }
  }

  function showErrors(list, message) {
    clearErrors();
    const loose = [];
    for (const item of list || []) {
      const top = String(item.field || "").split(".")[0];
      const field = fields.find((f) => f.name === top);
      if (field) {
        const rest = String(item.field).slice(top.length + 1);
        field.error.textContent = (field.error.textContent ? `${field.error.textContent}; ` : "") +
          (rest ? `${rest}: ${item.message}` : item.message);
        field.wrapper.classList.add("invalid");
        field.input.setAttribute("aria-invalid", "true");
      } else {
        loose.push(`${item.field}: ${item.message}`);
      }
    }
    if (loose.length || (message && !(list || []).length)) {
      formError.textContent = loose.length ? loose.join("\n") : message;
      formError.hidden = false;
    }
    const first = fields.find((f) => f.wrapper.classList.contains("invalid"));
    if (first) first.input.focus();
  }

  function read() {
    const value = {};
    const problems = [];
    for (const field of fields) {
      const got = readField(field);
      if (got.error) problems.push({ field: field.name, message: got.error });
      else if (!got.omit) value[field.name] = got.value;
    }
    return { value, problems };
  }

  return { element, fields, read, showErrors, clearErrors };
}
