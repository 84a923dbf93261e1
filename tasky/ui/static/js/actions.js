// The action buttons of a task (pause, resume, cancel, run again), shared by table and detail.

import { api } from "./api.js";
import { h, svg, toast } from "./dom.js";
import { actionStates } from "./state.js";

const LABELS = {
  pause: ["Pause"],
  resume: ["Resume"],
  cancel: ["Cancel"],
  run: ["Run again"],
};

// 16x16 line icons (drawn here: fonts often lack the media-control glyphs).
const ICONS = {
  pause: ["M5.5 3.5v9", "M10.5 3.5v9"],
  resume: ["M5 3.2l8 4.8-8 4.8z"],
  cancel: ["M4 4l8 8", "M12 4l-8 8"],
  run: ["M13 8a5 5 0 1 1-1.6-3.7", "M13 2.5v3h-3"],
};

export function icon(name) {
  return svg(
    "svg",
    { viewBox: "0 0 16 16", width: 16, height: 16, class: "icon", "aria-hidden": "true", focusable: "false" },
    ICONS[name].map((d) => svg("path", { d })),
  );
}

export async function runAction(task, action) {
  try {
    const status = await api(`/tasks/${task.TaskId}/actions`, { method: "POST", body: { action } });
    return status;
  } catch (error) {
    toast(`${LABELS[action][0]} failed: ${error.message}`, "error");
    return null;
  }
}

/** Buttons for every action; the ones the task does not allow now are disabled, with a reason. */
export function actionButtons(task, { compact = false, onDone } = {}) {
  return h(
    "div",
    { class: "actions" },
    actionStates(task).map(([action, allowed, why]) => {
      const [label] = LABELS[action];
      const button = h(
        "button",
        {
          type: "button",
          class: ["action", `action-${action}`, compact && "small"],
          disabled: !allowed,
          title: allowed ? label : `${label}: ${why}`,
          "aria-label": `${label} task ${task.TaskId}`,
          dataset: { action },
        },
        icon(action),
        h("span", { class: "label" }, label),
      );
      button.addEventListener("click", async (event) => {
        event.stopPropagation();
        button.disabled = true;
        const result = await runAction(task, action);
        if (onDone) onDone(result);
      });
      return button;
    }),
  );
}

export function statusBadge(status) {
  return h("span", { class: ["badge", `status-${(status || "").toLowerCase()}`] }, status || "?");
}

export function progressBar(fraction, status) {
  const value = fraction === null || fraction === undefined ? null : Math.max(0, Math.min(1, fraction));
  const bar = h("progress", {
    class: ["bar", `status-${(status || "").toLowerCase()}`],
    max: "100",
    "aria-label": "Progress",
  });
  if (value !== null) bar.value = Math.round(value * 1000) / 10;
  return bar;
}
