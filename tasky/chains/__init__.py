"""Chains (the seed's RuleChains): ordered steps of ordinary tasks with rules, durable and
controllable. See docs/chains.md."""

from __future__ import annotations

from tasky.chains.model import ChainSpec, DefinitionError, GroupSpec, StepSpec
from tasky.chains.routes import chain_routes, install
from tasky.chains.runner import ChainConflict, ChainRunner
from tasky.chains.validate import check_definition
from tasky.store.chain_base import ChainStore

__all__ = [
    "ChainConflict",
    "ChainRunner",
    "ChainSpec",
    "ChainStore",
    "DefinitionError",
    "GroupSpec",
    "StepSpec",
    "chain_routes",
    "check_definition",
    "install",
]
