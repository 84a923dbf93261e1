"""Named chain definitions: saved over the API (in the store) or declared in the config file.

A definition declares its parameters with default values; starting it by name may override
them. Definitions from the config file are read-only over the API (edit the file instead).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tasky import clock
from tasky.chains.config import DEFINITION_NAME, load_chain_tables
from tasky.chains.model import MAX_DEPTH, ChainSpec, DefinitionError, json_depth
from tasky.chains.validate import check_definition
from tasky.echo import shown
from tasky.engine.errors import NotFound
from tasky.store.chain_base import ChainStore
from tasky.store.chain_records import DefinitionRecord
from tasky.workers.registry import WorkerRegistry


class DefinitionReadOnly(Exception):
    """The definition comes from the config file (HTTP 409)."""


class Definitions:
    def __init__(self, store: ChainStore, registry: WorkerRegistry) -> None:
        self.store = store
        self.registry = registry
        self._configured: dict[str, DefinitionRecord] = {}

    def load_config(self, paths: list[Path]) -> None:
        """Read and check the config file's chains; a bad one stops the server from starting."""
        self._configured = configured_definitions(paths, self.registry)

    async def put(self, name: str, raw: Any) -> tuple[bool, DefinitionRecord]:
        _check_name(name)
        if name in self._configured:
            raise DefinitionReadOnly(
                f"chain definition {name!r} comes from {self._configured[name].source}; "
                "change it there"
            )
        spec = check_definition(raw, self.registry, parameters=None)
        now = clock.now()
        existing = await self.store.get_definition(name)
        record = DefinitionRecord(
            name, spec.model_dump(mode="json"), existing.created_at if existing else now, now
        )
        created = await self.store.put_definition(record)
        return created, record

    async def get(self, name: str) -> DefinitionRecord:
        found = self._configured.get(name) or await self.store.get_definition(name)
        if found is None:
            raise NotFound(f"no chain definition named {shown(name)}")
        return found

    async def list_definitions(self) -> list[DefinitionRecord]:
        stored = {d.name: d for d in await self.store.list_definitions()}
        stored.update(self._configured)
        return [stored[name] for name in sorted(stored)]

    async def delete(self, name: str) -> None:
        if name in self._configured:
            raise DefinitionReadOnly(
                f"chain definition {name!r} comes from {self._configured[name].source}; "
                "remove it there"
            )
        if not await self.store.delete_definition(name):
            raise NotFound(f"no chain definition named {shown(name)}")

    async def prepare(self, name: str, given: Any) -> tuple[ChainSpec, dict[str, Any]]:
        """The checked spec and parameter values to start definition ``name`` with."""
        record = await self.get(name)
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise DefinitionError("parameters must be a JSON object of name: value")
        if json_depth(given) > MAX_DEPTH:
            raise DefinitionError(f"parameters are nested more than {MAX_DEPTH} levels deep")
        declared: dict[str, Any] = record.spec.get("parameters") or {}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise DefinitionError(
                f"unknown parameter(s) {', '.join(unknown)}; definition {name!r} declares: "
                f"{', '.join(sorted(declared)) or 'none'}"
            )
        values = {**declared, **given}
        spec = check_definition(record.spec, self.registry, parameters=values)
        return spec, values


def configured_definitions(
    paths: list[Path], registry: WorkerRegistry
) -> dict[str, DefinitionRecord]:
    """The checked ``[chains.NAME]`` definitions of the config files.

    Raises ValueError naming the file, the chain and the step; ``tasky serve`` calls this before
    it listens, so a mistake is reported plainly and nothing starts.
    """
    now = clock.now()
    found = {}
    for name, (raw, path) in load_chain_tables(paths).items():
        try:
            spec = check_definition(raw, registry, parameters=None)
        except DefinitionError as exc:
            raise ValueError(f"config file {path}: chain {name!r}: {exc}") from None
        found[name] = DefinitionRecord(
            name, spec.model_dump(mode="json"), now, now, source=str(path)
        )
    return found


def _check_name(name: str) -> None:
    if not re.match(DEFINITION_NAME, name):
        raise DefinitionError(
            f"a definition name is 1 to 100 letters, digits, '_', '-' or '.', not {name!r}"
        )
