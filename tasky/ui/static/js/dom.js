// Building the page from data. Everything that comes from the server goes in as text nodes
// (textContent), never as HTML: task output and logs are untrusted.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key in node && !(node instanceof SVGElement) && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

/** h("button", {class: "x", onclick: fn}, "text", child) */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  return append(node, children);
}

export function svg(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined) continue;
    if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
  return append(node, children);
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function replace(node, ...children) {
  clear(node);
  return append(node, children);
}

/** Call fn at most once per `ms`, always with the latest state, never dropping the last call. */
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  const run = () => {
    timer = null;
    if (!pending) return;
    pending = false;
    // The timer is set before fn runs, so calls made meanwhile only mark the next run.
    timer = setTimeout(run, ms);
    fn();
  };
  const wrapped = () => {
    pending = true;
    if (timer === null) run();
  };
  wrapped.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    pending = false;
  };
  return wrapped;
}

/**
 * One run of the async fn at a time: a call while it runs makes it run once more afterwards
 * (with fresh state) instead of overlapping, so answers cannot arrive out of order or twice.
 */
export function singleFlight(fn) {
  let running = null;
  let again = false;
  const call = () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        let result;
        do {
          again = false;
          result = await fn();
        } while (again);
        return result;
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return call;
}

/**
 * Run `redraw` (which replaces what is inside `container`) without losing the keyboard's place:
 * if the focus was on a row marked data-key, or on a control in one, the same row's control
 * (same data-action, else its first link or button) gets it back. Lists that refresh on their
 * own would otherwise throw the focus back to the top of the page every few seconds.
 */
export function keepFocus(container, redraw) {
  const active = document.activeElement;
  const row = active && active !== document.body && container.contains(active) ? active.closest("[data-key]") : null;
  const key = row ? row.dataset.key : null;
  const onRow = active === row;
  const action = !onRow && active.dataset ? active.dataset.action : undefined;
  redraw();
  if (key === null) return;
  const again = [...container.querySelectorAll("[data-key]")].find((node) => node.dataset.key === key);
  if (!again) return;
  const usable = (node) => node && !node.disabled;
  const same = action ? again.querySelector(`[data-action="${CSS.escape(action)}"]`) : null;
  const target = onRow ? again : usable(same) ? same : [...again.querySelectorAll("a[href], button")].find(usable);
  if (target) target.focus({ preventScroll: true });
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: ["toast", kind] }, message);
  box.append(item);
  setTimeout(() => item.classList.add("leaving"), 3500);
  setTimeout(() => item.remove(), 4000);
}

export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}

/** A JSON value in a box that scrolls when long: focusable, so the keyboard can scroll it too. */
export function jsonBlock(value, label, extraClass = "") {
  return h("pre", { class: ["json", extraClass], tabindex: "0", "aria-label": label }, prettyJson(value));
}

export function copyButton(text, label = "Copy") {
  const button = h("button", { class: "ghost small", type: "button", title: "Copy to the clipboard" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      toast("Copied");
    } catch {
      toast("The browser did not allow copying", "error");
    }
  });
  return button;
}
