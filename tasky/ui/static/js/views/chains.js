// Chains: filled in once the chains API is there (see tasky/chains).

import { h, replace } from "../dom.js";

export async function mountChains(main) {
  replace(main, h("section", { class: "view" }, h("h1", null, "Chains"), h("p", { class: "muted" }, "Loading…")));
  return () => {};
}
