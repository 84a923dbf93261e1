// A Server-Sent Events client over fetch streaming. EventSource cannot send an Authorization
// header, and the token must not go in the URL (it would land in logs); fetch can do both and
// still resume with Last-Event-ID after a drop.

import { askToken, authHeaders, BASE } from "./api.js";

export class EventStream {
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = "";
    this.retryMs = 2000;
    this.controller = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  async loop() {
    let failures = 0;
    while (!this.stopped) {
      this.onState(failures ? "reconnecting" : "connecting");
      try {
        await this.once();
        failures = 0;
      } catch (error) {
        if (this.stopped) return;
        failures += 1;
      }
      if (this.stopped) return;
      this.onState("reconnecting");
      const wait = Math.min(this.retryMs * 2 ** Math.min(failures, 3), 15000);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async once() {
    this.controller = new AbortController();
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (this.lastId) headers["Last-Event-ID"] = this.lastId;
    const response = await fetch(`${BASE}/events`, { headers, signal: this.controller.signal });
    if (response.status === 401) {
      await askToken(Boolean(headers.Authorization));
      return;
    }
    if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
    this.onState("live");
    // A first connection has nothing to resume from: what changed before it is unknown, so the
    // views re-read (as after a reset). Reconnections resume with Last-Event-ID instead.
    if (!this.lastId) this.onEvent({ type: "stream.reset", reason: "connected" });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let block = { data: [], event: "", id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // A "\r" at the very end may be half of a "\r\n": it waits for the next chunk.
      const held = buffer.endsWith("\r") ? "\r" : "";
      const lines = (held ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
      buffer = lines.pop() + held;
      for (const line of lines) {
        if (line === "") {
          this.dispatch(block);
          block = { data: [], event: "", id: null };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "data") block.data.push(text);
          else if (field === "event") block.event = text;
          else if (field === "id" && !text.includes("\0")) block.id = text;
          else if (field === "retry" && /^\d+$/.test(text)) this.retryMs = Number(text);
        }
      }
    }
  }

  dispatch(block) {
    // As in the SSE spec: an id alone (no data) still moves Last-Event-ID forward.
    if (block.id !== null) this.lastId = block.id;
    if (!block.data.length) return;
    let event;
    try {
      event = JSON.parse(block.data.join("\n"));
    } catch {
      return;
    }
    if (!event.type) event.type = block.event || "message";
    this.onEvent(event);
  }
}
