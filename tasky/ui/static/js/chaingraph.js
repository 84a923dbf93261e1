// A chain drawn as a graph: its stages in order, the steps of a parallel group side by side in a
// dashed box, arrows from each stage to the next (through one junction, so fan-out and fan-in
// stay readable). Nodes are coloured by status and patched in place as the chain moves: a
// running step shows its progress and the time it has been running.

import { svg } from "./dom.js";
import * as fmt from "./format.js";

const NODE_W = 184;
const NARROW_NODE_W = 124; // the least a node shrinks to, so a phone fits two side by side
const NODE_H = 66;
const GAP_MAJOR = 64; // between stages (room for the arrows)
const GAP_MINOR = 14; // between the steps of one stage
const GROUP_PAD = 10;
const GROUP_LABEL = 20;
const PAD = 12;

function stagesOf(steps) {
  const stages = new Map();
  for (const step of steps) {
    if (!stages.has(step.Stage)) stages.set(step.Stage, { group: step.Group, when: step.When, steps: [] });
    stages.get(step.Stage).steps.push(step);
  }
  return [...stages.values()];
}

/** Where every node and group goes, left to right ("across") or top to bottom ("down"). */
export function layout(steps, orient, nodeW = NODE_W) {
  const stages = stagesOf(steps);
  const across = orient === "across";
  const widest = Math.max(1, ...stages.map((s) => s.steps.length));
  // Each stage's box (its nodes plus a group's frame and label) along the minor axis.
  const minorSize = (n) => n * (across ? NODE_H : nodeW) + (n - 1) * GAP_MINOR;
  const fullMinor = minorSize(widest) + 2 * GROUP_PAD + (across ? GROUP_LABEL : 0);
  const stageMajor = (across ? nodeW : NODE_H + GROUP_LABEL) + 2 * GROUP_PAD;
  const nodes = [];
  const groups = [];
  const columns = [];
  stages.forEach((stage, i) => {
    const major = PAD + i * (stageMajor + GAP_MAJOR) + GROUP_PAD + (across ? 0 : GROUP_LABEL);
    const size = minorSize(stage.steps.length);
    const start = PAD + (fullMinor - size) / 2 + (across ? GROUP_LABEL / 2 : 0);
    const placed = stage.steps.map((step, j) => {
      const minor = start + j * ((across ? NODE_H : nodeW) + GAP_MINOR);
      const node = across ? { x: major, y: minor, step } : { x: minor, y: major, step };
      nodes.push(node);
      return node;
    });
    columns.push(placed);
    const label = [stage.group, stage.when && stage.when !== "success" ? `on ${stage.when}` : ""].filter(Boolean).join(" · ");
    if (stage.group || label) {
      const first = placed[0];
      const last = placed[placed.length - 1];
      groups.push({
        x: first.x - GROUP_PAD,
        y: first.y - GROUP_PAD - GROUP_LABEL,
        width: last.x + nodeW - first.x + 2 * GROUP_PAD,
        height: last.y + NODE_H - first.y + 2 * GROUP_PAD + GROUP_LABEL,
        label,
        framed: Boolean(stage.group),
      });
    }
  });
  const count = stages.length;
  const majorTotal = 2 * PAD + count * stageMajor + Math.max(0, count - 1) * GAP_MAJOR;
  const minorTotal = 2 * PAD + fullMinor;
  return {
    nodes,
    groups,
    columns,
    width: across ? majorTotal : minorTotal,
    height: across ? minorTotal : majorTotal,
    across,
    nodeW,
    widest,
  };
}

/** The plan that fits `room` best: stages in a row, else in a column with nodes narrowed. */
export function fitLayout(steps, room) {
  const across = layout(steps, "across");
  if (across.width <= room) return across;
  const down = layout(steps, "down");
  if (down.width <= room) return down;
  const spare = room - (down.width - down.widest * NODE_W);
  const narrowed = layout(steps, "down", Math.max(NARROW_NODE_W, Math.floor(spare / down.widest)));
  return narrowed.width < across.width ? narrowed : across;
}

function edgePaths(plan) {
  const paths = [];
  for (let i = 0; i + 1 < plan.columns.length; i++) {
    const from = plan.columns[i];
    const to = plan.columns[i + 1];
    const w = plan.nodeW;
    const out = (n) => (plan.across ? [n.x + w, n.y + NODE_H / 2] : [n.x + w / 2, n.y + NODE_H]);
    const into = (n) => (plan.across ? [n.x, n.y + NODE_H / 2] : [n.x + w / 2, n.y]);
    const ends = from.map(out);
    const starts = to.map(into);
    // The junction: halfway between the stages, in the middle of the wider side.
    const mid = (a, b) => (a + b) / 2;
    const spread = (points, k) => mid(Math.min(...points.map((p) => p[k])), Math.max(...points.map((p) => p[k])));
    const junction = plan.across
      ? [mid(ends[0][0], starts[0][0]), mid(spread(ends, 1), spread(starts, 1))]
      : [mid(spread(ends, 0), spread(starts, 0)), mid(ends[0][1], starts[0][1])];
    for (const [x, y] of ends) paths.push({ d: `M${x},${y} L${junction[0]},${junction[1]}`, arrow: false });
    for (const [x, y] of starts) paths.push({ d: `M${junction[0]},${junction[1]} L${x},${y}`, arrow: true });
  }
  return paths;
}

function clip(text, chars) {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/** The running time of a step that started, up to now while it runs. */
function elapsed(step) {
  if (step.DurationSeconds !== null && step.DurationSeconds !== undefined) return step.DurationSeconds;
  return fmt.runSeconds(step); // stands still while the step's task is Paused
}

function statusLine(step, progress) {
  const parts = [step.Status];
  if (step.Status === "Running" || step.Status === "Paused") {
    if (progress !== null && progress !== undefined) parts.push(fmt.percent(progress));
  }
  const seconds = elapsed(step);
  if (seconds !== null) parts.push(fmt.duration(seconds));
  return parts.join(" · ");
}

/**
 * A graph for a chain's steps inside `holder` (a scrolling box). Returns {update(steps,
 * progress), tick(), destroy()}: update patches the nodes in place when the steps are the same
 * (so a focused node keeps its focus) and redraws otherwise; tick moves the running clocks.
 */
export function chainGraph(holder) {
  let steps = [];
  let progress = new Map(); // task id -> fraction
  let shape = ""; // the stages and names drawn, to tell a patch from a redraw
  let fitted = ""; // the orientation and node width drawn
  const nodes = new Map(); // step name -> {link, box, status, bar, barTrack, title}

  function plan() {
    return fitLayout(steps, holder.clientWidth || 800);
  }

  const key = (p) => `${p.across}|${p.nodeW}`;

  function draw() {
    const chosen = plan();
    fitted = key(chosen);
    nodes.clear();
    const root = svg("svg", {
      class: "chain-graph-svg",
      width: chosen.width,
      height: chosen.height,
      viewBox: `0 0 ${chosen.width} ${chosen.height}`,
      role: "group",
      "aria-label": "The chain's steps as a graph",
    });
    root.dataset.orient = chosen.across ? "across" : "down";
    root.append(
      svg("defs", null, svg("marker", { id: "chain-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))),
    );
    for (const group of chosen.groups) {
      root.append(
        svg("g", { class: ["chain-group", group.framed ? "framed" : ""].join(" ").trim() },
          group.framed ? svg("rect", { x: group.x, y: group.y, width: group.width, height: group.height, rx: 10, class: "group-box" }) : null,
          svg("text", { x: group.x + 6, y: group.y + 14, class: "group-label", text: group.label }),
        ),
      );
    }
    for (const edge of edgePaths(chosen)) {
      root.append(svg("path", { d: edge.d, class: "edge", "marker-end": edge.arrow ? "url(#chain-arrow)" : null }));
    }
    for (const { x, y, step } of chosen.nodes) root.append(node(x, y, step, chosen.nodeW));
    holder.replaceChildren(root);
    patch();
  }

  function node(x, y, step, width) {
    const title = svg("title");
    const box = svg("rect", { x, y, width, height: NODE_H, rx: 9, class: "node-box" });
    // About 8 px a character in bold 14 px, 7 in 12 px: clipped to fit, the whole name in <title>.
    const name = svg("text", { x: x + 12, y: y + 20, class: "node-name", text: clip(step.Name, Math.floor((width - 20) / 8.5)) });
    const worker = svg("text", { x: x + 12, y: y + 37, class: "node-worker", text: clip(step.Worker, Math.floor((width - 20) / 7)) });
    const status = svg("text", { x: x + 12, y: y + 54, class: "node-status" });
    const track = svg("rect", { x: x + 1, y: y + NODE_H - 5, width: width - 2, height: 4, rx: 2, class: "node-track" });
    const bar = svg("rect", { x: x + 1, y: y + NODE_H - 5, width: 0, height: 4, rx: 2, class: "node-bar" });
    const group = svg("g", { class: "chain-node" }, title, box, name, worker, status, track, bar);
    // A node whose step has a task opens it; the <a> is what the keyboard reaches.
    const link = svg("a", { class: "chain-node-link" }, group);
    group.dataset.step = step.Name;
    nodes.set(step.Name, { link, group, status, bar, track, title, width });
    return link;
  }

  function patch() {
    for (const step of steps) {
      const parts = nodes.get(step.Name);
      if (!parts) continue;
      const fraction = step.TaskId ? progress.get(step.TaskId) : undefined;
      const line = statusLine(step, fraction);
      parts.group.setAttribute("class", `chain-node status-${step.Status.toLowerCase()}`);
      parts.group.dataset.status = step.Status;
      parts.status.textContent = line;
      const label = `step ${step.Name} (${step.Worker}): ${line}`;
      parts.title.textContent = label;
      // The link's name is its visible text (name, worker, status line), as it should be.
      if (step.TaskId) parts.link.setAttribute("href", `#/tasks/${step.TaskId}`);
      else parts.link.removeAttribute("href");
      const active = step.Status === "Running" || step.Status === "Paused";
      const known = fraction !== null && fraction !== undefined;
      parts.track.setAttribute("visibility", active ? "visible" : "hidden");
      parts.bar.setAttribute("visibility", active && known ? "visible" : "hidden");
      parts.bar.setAttribute("width", String(Math.max(0, Math.min(1, known ? fraction : 0)) * (parts.width - 2)));
    }
  }

  function update(newSteps, newProgress) {
    steps = newSteps;
    if (newProgress) progress = newProgress;
    const newShape = JSON.stringify(steps.map((s) => [s.Stage, s.Group, s.When, s.Name, s.Worker]));
    if (newShape !== shape || !holder.firstChild) {
      shape = newShape;
      draw();
    } else {
      patch();
    }
  }

  function setProgress(taskId, fraction) {
    progress.set(taskId, fraction);
    patch();
  }

  const tick = () => {
    if (steps.some((s) => s.Status === "Running" || s.Status === "Paused")) patch();
  };

  // A narrower or wider window may call for the other orientation.
  const observer = new ResizeObserver(() => {
    if (steps.length && key(plan()) !== fitted) draw();
  });
  observer.observe(holder);

  return { update, setProgress, tick, destroy: () => observer.disconnect() };
}
