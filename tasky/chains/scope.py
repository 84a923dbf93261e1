"""The values references see while a chain runs: its parameters, its steps, itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasky.chains.plan import Plan, StepView
from tasky.chains.refs import Ref, RefError, follow
from tasky.store.chain_records import ChainRecord


def failure_text(view: StepView) -> str:
    return f"step {view.spec.name!r} {view.status.lower()}: {view.error or 'no error text'}"


class Scope:
    def __init__(self, chain: ChainRecord, views: Mapping[str, StepView], plan: Plan) -> None:
        self.chain = chain
        self.views = views
        self.plan = plan

    def lookup(self, ref: Ref) -> Any:
        if ref.root == "params":
            if ref.name not in self.chain.parameters:
                raise RefError(f"{ref.text}: the chain has no parameter {ref.name!r}")
            return follow(ref, self.chain.parameters[ref.name], f"parameter {ref.name}")
        if ref.root == "chain":
            return self._chain_field(ref.name)
        view = self.views.get(ref.name)
        if view is None:
            raise RefError(f"{ref.text}: the chain has no step {ref.name!r}")
        if ref.field == "status":
            return view.status
        if ref.field == "error":
            return view.error
        if ref.field == "task_id":
            return view.task.id if view.task is not None else None
        if view.status != "Completed" or view.task is None:
            raise RefError(f"{ref.text}: step {ref.name!r} has no result (it is {view.status})")
        return follow(ref, view.task.result, f"the result of step {ref.name}")

    def _chain_field(self, name: str) -> Any:
        if name == "id":
            return self.chain.id
        if name == "name":
            return self.chain.name
        failed = self.plan.fatal or (self.plan.failures[0] if self.plan.failures else None)
        if name == "failed_step":
            return failed.spec.name if failed is not None else None
        return failure_text(failed) if failed is not None else None
