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
