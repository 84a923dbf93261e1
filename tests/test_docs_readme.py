"""The README's examples are real: its TOML loads and its worker example registers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasky.config_file import load_workers
from tasky.workers.registry import WorkerRegistry

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_readme_toml_loads(tmp_path: Path) -> None:
    found = blocks("toml")
    assert found
    for i, text in enumerate(found):
        path = tmp_path / f"readme-{i}.toml"
        path.write_text(text)
        workers = load_workers(path, [tmp_path])
        assert workers and workers[0].name == "Grep"


def test_readme_worker_module_registers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = next(b for b in blocks("python") if "myworkers.py" in b)
    (tmp_path / "myworkers.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = WorkerRegistry()
    assert registry.register_module("myworkers") == 2
    assert set(registry.names()) == {"Resize", "Hello"}


def test_every_documented_curl_body_is_sent_as_json() -> None:
    """The server refuses bodies that are not application/json (a browser-borne request's
    mark), so an example without the header would fail for whoever copies it."""
    docs = [README] + [p.read_text() for p in (Path(__file__).parent.parent / "docs").glob("*.md")]
    commands = [
        cmd
        for text in docs
        for cmd in re.split(r"\n(?=\$? ?curl )", text)
        if re.match(r"\$? ?curl ", cmd) and re.search(r" (-d|--data)\b", cmd.split("\n\n")[0])
    ]
    assert len(commands) >= 8
    for cmd in commands:
        first = cmd.split("\n\n")[0]
        assert "application/json" in first or '"$J"' in first, first
