"""Chain definitions without a server: reference syntax, checking, and the planning rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tasky.chains.model import ChainSpec, DefinitionError, StageInfo, stages_of
from tasky.chains.plan import StepView, decide
from tasky.chains.refs import Ref, RefError, follow, parse_ref, render, walk_refs
from tasky.chains.validate import check_definition
from tasky.states import Status
from tasky.store.chain_records import StepRecord
from tasky.store.records import TaskRecord
from tasky.workers.registry import WorkerRegistry


# -- reference syntax --------------------------------------------------------------------------
def test_parse_ref_forms() -> None:
    assert parse_ref("params.src") == Ref("${params.src}", "params", "src", None, ())
    assert parse_ref(" steps.copy.result.files.0 ") == Ref(
        "${ steps.copy.result.files.0 }", "steps", "copy", "result", ("files", "0")
    )
    assert parse_ref("steps.copy.error").field == "error"
    assert parse_ref("chain.id").root == "chain"


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("foo", "write ${params.NAME}"),
        ("params", "write ${params.NAME}"),
        ("steps.copy", "write ${params.NAME}"),
        ("steps.copy.output", "a step offers result"),
        ("steps.copy.status.x", "only .result can be followed"),
        ("chain.owner", "the chain offers"),
        ("params.a b", "write ${params.NAME}"),
        ("params..x", "write ${params.NAME}"),
    ],
)
def test_parse_ref_errors(expr: str, says: str) -> None:
    with pytest.raises(RefError, match=says.replace("$", r"\$").replace(".", r"\.")):
        parse_ref(expr)


def _lookup(values: dict[str, Any]) -> Any:
    def lookup(ref: Ref) -> Any:
        return follow(ref, values[ref.name], ref.name)

    return lookup


def test_render_keeps_types_and_interpolates_text() -> None:
    values = {"n": 5, "obj": {"a": [1, 2]}, "s": "x", "nothing": None, "flag": True}
    config = {
        "whole": "${params.n}",
        "deep": "${params.obj.a.1}",
        "text": "n=${params.n} s=${params.s} none=[${params.nothing}] f=${params.flag}",
        "json": "obj=${params.obj}",
        "escaped": "$${params.n} stays",
        "list": ["${params.s}", 3],
        "plain": "no refs",
    }
    out = render(config, _lookup(values))
    assert out == {
        "whole": 5,
        "deep": 2,
        "text": "n=5 s=x none=[] f=true",
        "json": 'obj={"a":[1,2]}',
        "escaped": "${params.n} stays",
        "list": ["x", 3],
        "plain": "no refs",
    }


def test_follow_errors_name_the_missing_part() -> None:
    value = {"files": ["a"], "size": 3}
    with pytest.raises(RefError, match=r"has no key 'dest' \(keys: files, size\)"):
        follow(parse_ref("steps.c.result.dest"), value, "the result of step c")
    with pytest.raises(RefError, match="is a list of 1; no item '4'"):
        follow(parse_ref("steps.c.result.files.4"), value, "the result of step c")
    with pytest.raises(RefError, match="is 3, not an object"):
        follow(parse_ref("steps.c.result.size.x"), value, "the result of step c")


def test_walk_refs_reports_locations() -> None:
    found = list(walk_refs({"a": {"b": ["x", "${params.p}"]}, "c": "${chain.id}"}))
    assert [(loc, ref.root) for loc, ref in found] == [
        (("a", "b", 1), "params"),
        (("c",), "chain"),
    ]


# -- checking definitions ----------------------------------------------------------------------
def _check(raw: dict[str, Any], registry: WorkerRegistry, params: Any = "own") -> ChainSpec:
    values = raw.get("parameters", {}) if params == "own" else params
    return check_definition(raw, registry, parameters=values)


def _error(raw: Any, registry: WorkerRegistry, params: Any = "own") -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        if isinstance(raw, dict):
            _check(raw, registry, params)
        else:
            check_definition(raw, registry, parameters={})
    return info.value


def test_check_canonicalises_worker_names(registry: WorkerRegistry) -> None:
    spec = _check({"steps": [{"name": "a", "worker": "echo"}]}, registry)
    step = spec.steps[0]
    assert step.worker == "Echo"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "step", "says"),
    [
        ({"steps": [{"name": "a", "worker": "Nope"}]}, "a", "unknown worker 'Nope'"),
        (
            {"steps": [{"name": "a", "worker": "Hold", "config": {"seconds": "long"}}]},
            "a",
            "invalid config for worker Hold: seconds:",
        ),
        (
            {"steps": [{"name": "a", "worker": "Echo", "config": {"value": 1, "extra": 2}}]},
            "a",
            "extra: Extra inputs are not permitted",
        ),
        (
            {
                "steps": [
                    {"name": "a", "worker": "Echo", "config": {"value": "${steps.b.result}"}},
                    {"name": "b", "worker": "Echo", "config": {"value": "${steps.a.result}"}},
                ]
            },
            "a",
            "cycle: a -> b -> a",
        ),
        (
            {"steps": [{"name": "a", "worker": "Echo", "config": {"value": "${steps.a.status}"}}]},
            "a",
            "cycle: a -> a",
        ),
        (
            {
                "steps": [
                    {"name": "a", "worker": "Echo", "config": {"value": "${steps.b.result}"}},
                    {"name": "b", "worker": "Echo"},
                ]
            },
            "a",
            "refers to step 'b', which runs later",
        ),
        (
            {
                "steps": [
                    {
                        "name": "g",
                        "parallel": [
                            {"name": "a", "worker": "Echo"},
                            {
                                "name": "b",
                                "worker": "Echo",
                                "config": {"value": "${steps.a.result}"},
                            },
                        ],
                    }
                ]
            },
            "b",
            "which runs in parallel with it",
        ),
        (
            {"steps": [{"name": "a", "worker": "Echo", "config": {"value": "${steps.zz.result}"}}]},
            "a",
            "names no step of this chain",
        ),
        (
            {"steps": [{"name": "a", "worker": "Echo", "config": {"value": "${params.nope}"}}]},
            "a",
            "names a parameter the chain does not declare",
        ),
        (
            {"steps": [{"name": "a", "worker": "Echo", "config": {"value": "${nonsense}"}}]},
            "a",
            "bad reference in its config",
        ),
        (
            {
                "parameters": {"p": {"x": 1}},
                "steps": [{"name": "a", "worker": "Echo", "config": {"value": "${params.p.y}"}}],
            },
            "a",
            "parameter p has no key 'y'",
        ),
        (
            {"steps": [{"name": "a", "worker": "Echo"}, {"name": "a", "worker": "Echo"}]},
            "a",
            "two steps (or groups) have this name",
        ),
        (
            {"steps": [{"name": "a", "worker": "Echo", "when": "sometimes"}]},
            "a",
            "when:",
        ),
        (
            {
                "steps": [
                    {"name": "g", "parallel": [{"name": "a", "worker": "Echo", "when": "always"}]}
                ]
            },
            "a",
            "'when' belongs to its group 'g'",
        ),
        ({"steps": [{"worker": "Echo"}]}, "#1", "steps.0.name: Field required"),
        ({"steps": [{"name": "9bad", "worker": "Echo"}]}, "9bad", "steps.0.name: String should"),
        (
            {"steps": [{"name": "g", "parallel": [{"name": "x"}]}]},
            "x",
            "steps.0.parallel.0.worker: Field required",
        ),
        ({"steps": []}, None, "steps: List should have at least 1 item"),
        ({"steps": [{"name": "a", "worker": "Echo"}], "color": 1}, None, "color: Extra inputs"),
        (
            {"steps": [{"name": "a", "worker": "Echo"}], "result": "${steps.q.result}"},
            None,
            "names no step of this chain",
        ),
    ],
)
def test_bad_definitions_name_the_step(
    registry: WorkerRegistry, raw: dict[str, Any], step: str | None, says: str
) -> None:
    err = _error(raw, registry)
    assert err.step == step
    assert says in str(err)
    if step is not None:
        assert str(err).startswith(f"step {step!r}: ")


def test_not_an_object_is_refused(registry: WorkerRegistry) -> None:
    assert "must be a JSON object" in str(_error([1, 2], registry))


def test_deep_nesting_is_refused_before_it_is_walked(registry: WorkerRegistry) -> None:
    deep: Any = "x"
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [deep]
    err = _error({"steps": [{"name": "a", "worker": "Echo", "config": {"value": deep}}]}, registry)
    assert "nested more than 64 levels deep" in str(err)


def test_config_checked_where_no_reference_is(registry: WorkerRegistry) -> None:
    raw = {
        "steps": [
            {"name": "a", "worker": "Echo", "config": {"value": 3}},
            # seconds comes from a result: unknown now, so only checked when the step starts.
            {"name": "b", "worker": "Hold", "config": {"seconds": "${steps.a.result.value}"}},
        ]
    }
    _check(raw, registry)
    raw["steps"][1]["config"]["bogus"] = 1  # type: ignore[index]
    err = _error(raw, registry)
    assert err.step == "b"
    assert [f["field"] for f in err.fields] == ["bogus"]


def test_parameters_checked_once_known(registry: WorkerRegistry) -> None:
    raw = {
        "parameters": {"secs": None},
        "steps": [{"name": "a", "worker": "Hold", "config": {"seconds": "${params.secs}"}}],
    }
    check_definition(raw, registry, parameters=None)  # saving: values not known yet
    err = _error(raw, registry, params={"secs": "soon"})
    assert err.step == "a"
    assert "seconds" in str(err)
    _check(raw, registry, params={"secs": 1.5})


# -- planning ----------------------------------------------------------------------------------
def _views(spec: ChainSpec, tasks: dict[str, Status], states: dict[str, str] | None = None) -> Any:
    views = {}
    for stage in stages_of(spec):
        for position, step in enumerate(stage.steps):
            record = StepRecord("c" * 32, step.name, position)
            task = None
            if step.name in tasks:
                record.state = "submitted"
                record.task_id = step.name.ljust(32, "0")
                task = TaskRecord(record.task_id, step.worker, tasks[step.name], {}, 0.0)
            if states and step.name in states:
                record.state = states[step.name]  # type: ignore[assignment]
            views[step.name] = StepView(step, stage, record, task)
    return views


def _spec(*steps: dict[str, Any], **extra: Any) -> ChainSpec:
    return ChainSpec.model_validate({"steps": list(steps), **extra})


def _names(views: list[StepView]) -> list[str]:
    return [v.spec.name for v in views]


def test_plan_sequence_waits_for_each_step() -> None:
    spec = _spec({"name": "a", "worker": "E"}, {"name": "b", "worker": "E"})
    stages = stages_of(spec)
    assert _names(decide(spec, stages, _views(spec, {})).submit) == ["a"]
    assert decide(spec, stages, _views(spec, {"a": Status.RUNNING})).submit == []
    assert _names(decide(spec, stages, _views(spec, {"a": Status.COMPLETED})).submit) == ["b"]
    done = decide(spec, stages, _views(spec, {"a": Status.COMPLETED, "b": Status.COMPLETED}))
    assert done.done is Status.COMPLETED
    assert _names(done.last_ran) == ["b"]


class _CountingStages(list[StageInfo]):
    """A chain's stages that count how many of them a caller is handed (one by one, sliced or
    iterated)."""

    handed = 0

    def __getitem__(self, key: Any) -> Any:
        found = super().__getitem__(key)
        self.handed += len(found) if isinstance(key, slice) else 1
        return found

    def __iter__(self) -> Iterator[StageInfo]:
        for stage in super().__iter__():
            self.handed += 1
            yield stage


def test_planning_from_progress_touches_only_the_stage_that_runs() -> None:
    """A step of a long chain is planned from where the chain is (its progress), and costs what
    a step of a short one does: the stages after the one that runs are not looked at, nor
    copied."""
    n = 10_000
    spec = _spec(*({"name": f"s{i}", "worker": "E"} for i in range(n)))
    stages = _CountingStages(stages_of(spec))
    half = {f"s{i}": Status.COMPLETED for i in range(n // 2)}
    views = _views(spec, {**half, f"s{n // 2}": Status.RUNNING})
    progress = decide(spec, stages, views).progress()
    assert progress.stage == n // 2
    stages.handed = 0
    plan = decide(spec, stages, views, progress)
    assert plan.submit == [] and plan.done is None and plan.stage == n // 2
    assert stages.handed == 1
    views[f"s{n // 2}"].task.status = Status.COMPLETED
    stages.handed = 0
    assert _names(decide(spec, stages, views, progress).submit) == [f"s{n // 2 + 1}"]
    assert stages.handed == 2


def test_plan_failure_rules() -> None:
    spec = _spec(
        {"name": "a", "worker": "E"},
        {"name": "b", "worker": "E"},
        {"name": "notify", "worker": "E", "when": "failure"},
        {"name": "cleanup", "worker": "E", "when": "always"},
    )
    stages = stages_of(spec)
    plan = decide(spec, stages, _views(spec, {"a": Status.FAILED}))
    assert _names(plan.skip) == ["b"]
    assert _names(plan.submit) == ["notify"]
    assert plan.fatal is not None and plan.fatal.spec.name == "a"
    ok = decide(spec, stages, _views(spec, {"a": Status.COMPLETED, "b": Status.COMPLETED}))
    assert _names(ok.skip) == ["notify"]
    assert _names(ok.submit) == ["cleanup"]
    end = decide(
        spec,
        stages,
        _views(spec, {"a": Status.CANCELED, "notify": Status.COMPLETED, "cleanup": Status.FAILED}),
    )
    assert end.done is Status.FAILED
    assert _names(end.failures) == ["a", "cleanup"]


def test_plan_continue_policy() -> None:
    spec = _spec({"name": "a", "worker": "E"}, {"name": "b", "worker": "E"}, on_failure="continue")
    stages = stages_of(spec)
    plan = decide(spec, stages, _views(spec, {"a": Status.FAILED}))
    assert _names(plan.submit) == ["b"]
    assert plan.fatal is None
    end = decide(spec, stages, _views(spec, {"a": Status.FAILED, "b": Status.COMPLETED}))
    assert end.done is Status.COMPLETED
    # A step may insist on stopping the chain even when the chain continues.
    strict = _spec(
        {"name": "a", "worker": "E", "on_failure": "stop"},
        {"name": "b", "worker": "E"},
        on_failure="continue",
    )
    assert _names(decide(strict, stages_of(strict), _views(strict, {"a": Status.FAILED})).skip) == [
        "b"
    ]


def test_plan_group_fans_in() -> None:
    spec = _spec(
        {"name": "g", "parallel": [{"name": "x", "worker": "E"}, {"name": "y", "worker": "E"}]},
        {"name": "after", "worker": "E"},
    )
    stages = stages_of(spec)
    assert _names(decide(spec, stages, _views(spec, {})).submit) == ["x", "y"]
    half = decide(spec, stages, _views(spec, {"x": Status.COMPLETED, "y": Status.RUNNING}))
    assert half.submit == []
    # A crash between recording the group and submitting its second task: only that one.
    crashed = _views(spec, {"x": Status.RUNNING}, states={"y": "submitted"})
    assert _names(decide(spec, stages, crashed).submit) == ["y"]
    both = decide(spec, stages, _views(spec, {"x": Status.COMPLETED, "y": Status.COMPLETED}))
    assert _names(both.submit) == ["after"]


def test_plan_recorded_step_with_its_task_is_not_submitted_again() -> None:
    spec = _spec({"name": "a", "worker": "E"})
    views = _views(spec, {"a": Status.QUEUED})
    assert decide(spec, stages_of(spec), views).submit == []
    assert views["a"].status == "Queued"
