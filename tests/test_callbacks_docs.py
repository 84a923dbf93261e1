"""The verification snippet of docs/callbacks.md works against Tasky's own signer."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from tasky.callbacks import sign, verify

DOC = Path(__file__).resolve().parent.parent / "docs" / "callbacks.md"
SECRET = "doc-secret"
BODY = b'{"TaskId": "abc", "Status": "Completed"}'


def snippet() -> Callable[..., bool]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) == 1
    namespace: dict[str, object] = {}
    exec(blocks[0], namespace)  # our own documentation, run on purpose
    check = namespace["tasky_signature_ok"]
    assert callable(check)
    return check  # type: ignore[no-any-return]


def test_documented_check_accepts_tasky_signatures_only() -> None:
    check = snippet()
    now = int(time.time())
    header = sign(SECRET, now, BODY)
    assert check(SECRET, header, BODY)
    assert not check("other-secret", header, BODY)
    assert not check(SECRET, header, BODY.replace(b"Completed", b"Failed"))
    assert not check(SECRET, sign(SECRET, now - 3600, BODY), BODY)  # a replay of an old one
    assert not check(SECRET, "v1=abc", BODY)
    assert not check(SECRET, "", BODY)


def test_tasky_verify_agrees_with_the_docs() -> None:
    check = snippet()
    now = int(time.time())
    for header in (sign(SECRET, now, BODY), sign(SECRET, now - 1000, BODY), "t=x,v1=y"):
        assert verify(SECRET, header, BODY, time.time()) == check(SECRET, header, BODY)
