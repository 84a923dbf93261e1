"""The client's Server-Sent Events decoder on the cases the WHATWG rules spell out."""

from __future__ import annotations

from tasky.api.events import format_event
from tasky.client._sse import ServerEvent, SSEDecoder


def feed(decoder: SSEDecoder, text: str) -> list[ServerEvent]:
    events = [decoder.feed(line) for line in text.split("\n")]
    return [e for e in events if e is not None]


def test_what_the_server_sends_decodes_back() -> None:
    wire = format_event("ab12", 7, {"type": "task.status", "task": "t", "status": "Running"})
    decoder = SSEDecoder()
    [event] = feed(decoder, "retry: 2000\n: connected\n\n" + wire.decode())
    assert event.id == "ab12:7" and event.event == "task.status"
    assert event.json() == {"type": "task.status", "task": "t", "status": "Running"}
    assert decoder.last_id == "ab12:7"


def test_multi_line_data_comments_and_ids() -> None:
    decoder = SSEDecoder()
    events = feed(decoder, "id: 1\ndata: a\ndata:b\n\n: keep-alive\nid: 2\n\ndata: {bad\n\n")
    assert [(e.id, e.event, e.data) for e in events] == [
        ("1", "message", "a\nb"),
        ("2", "message", "{bad"),
    ]
    assert events[1].json() is None  # not JSON: callers skip it
    # A keep-alive's id moves the resume point even though it dispatches nothing.
    assert feed(decoder, ": keep-alive\nid: 9\n\n") == [] and decoder.last_id == "9"
    assert feed(decoder, "id: x\0y\ndata: z\n\n")[0].id == "9"  # ids with NUL are ignored
