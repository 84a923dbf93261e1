"""Chains over the HTTP API (in-process app, real SQLite file): running, rules, groups, output
passing, control, limits and bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tasky.chains import schemas

API = "/tasky/v1"


async def start_chain(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    r = await client.post(f"{API}/chains", json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{API}/chains/{r.json()['ChainId']}"
    chain_id: str = schemas.ChainCreated.model_validate(r.json()).ChainId
    return chain_id


async def get_chain(client: httpx.AsyncClient, chain_id: str) -> dict[str, Any]:
    r = await client.get(f"{API}/chains/{chain_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    schemas.ChainDetail.model_validate(body)
    return body


async def wait_chain(
    client: httpx.AsyncClient, chain_id: str, *wanted: str, timeout: float = 15
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = await get_chain(client, chain_id)
        if body["Status"] in wanted:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"chain stayed {body['Status']}, wanted {wanted}: {body}")
        await asyncio.sleep(0.02)


async def wait_step(
    client: httpx.AsyncClient, chain_id: str, step: str, *wanted: str, timeout: float = 15
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = await get_chain(client, chain_id)
        found = steps_of(body)[step]
        if found["Status"] in wanted:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"step {step} stayed {found['Status']}, wanted {wanted}")
        await asyncio.sleep(0.02)


async def wait_until(
    client: httpx.AsyncClient, chain_id: str, check: Any, timeout: float = 15
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = await get_chain(client, chain_id)
        if check(body):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"chain never got there: {body}")
        await asyncio.sleep(0.02)


def steps_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in body["Steps"]}


async def chain_tasks(client: httpx.AsyncClient, chain_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/tasks", params={"chain": chain_id})
    assert r.status_code == 200
    tasks: list[dict[str, Any]] = r.json()["Tasks"]
    return tasks


async def act(client: httpx.AsyncClient, chain_id: str, action: str) -> httpx.Response:
    return await client.post(f"{API}/chains/{chain_id}/actions", json={"action": action})


# -- running ------------------------------------------------------------------------------------
async def test_sequential_steps_pass_outputs(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "name": "pipeline",
            "parameters": {"n": 7, "label": "run"},
            "steps": [
                {"name": "first", "worker": "Echo", "config": {"value": {"n": "${params.n}"}}},
                {
                    "name": "second",
                    "worker": "Echo",
                    "config": {"value": {"twice": ["${steps.first.result.n}", "${params.n}"]}},
                },
                {
                    "name": "third",
                    "worker": "Echo",
                    "config": {
                        "value": "${params.label}: ${steps.second.result.twice.0} "
                        "from ${steps.first.task_id} (${steps.first.status})"
                    },
                },
            ],
        },
    )
    body = await wait_chain(client, chain_id, "Completed")
    steps = steps_of(body)
    assert [s["Status"] for s in body["Steps"]] == ["Completed"] * 3
    assert steps["first"]["Output"] == {"n": 7}
    assert steps["second"]["Output"] == {"twice": [7, 7]}  # a whole reference keeps its type
    first_task = steps["first"]["TaskId"]
    assert steps["third"]["Output"] == {"string_output": f"run: 7 from {first_task} (Completed)"}
    assert body["Result"] == steps["third"]["Output"]  # default result: the last step's output
    assert body["Name"] == "pipeline"
    assert body["Error"] is None
    # Each step started after the one before it finished.
    assert steps["second"]["StartedAt"] >= steps["first"]["FinishedAt"]
    assert steps["third"]["StartedAt"] >= steps["second"]["FinishedAt"]
    # The steps are ordinary tasks: listed with their chain id, with results and logs.
    tasks = await chain_tasks(client, chain_id)
    assert [t["TaskId"] for t in tasks] == [s["TaskId"] for s in body["Steps"]]
    assert all(t["ChainId"] == chain_id for t in tasks)
    detail = (await client.get(f"{API}/tasks/{first_task}")).json()
    assert detail["ChainId"] == chain_id
    assert detail["Config"] == {"value": {"n": 7}}
    logs = (await client.get(f"{API}/tasks/{first_task}/logs")).json()
    assert logs["Lines"][0]["Line"] == "echo {'n': 7}"


async def test_result_template(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "a", "worker": "Echo", "config": {"value": 2}},
                {"name": "b", "worker": "Echo", "config": {"value": 3}},
            ],
            "result": {"sum_parts": ["${steps.a.result.value}", "${steps.b.result.value}"]},
        },
    )
    body = await wait_chain(client, chain_id, "Completed")
    assert body["Result"] == {"sum_parts": [2, 3]}


async def test_failure_rules(client: httpx.AsyncClient) -> None:
    chain = {
        "parameters": {"fail": 1_000_000},
        "steps": [
            {"name": "work", "worker": "Flaky", "config": {"fail_times": "${params.fail}"}},
            {"name": "next", "worker": "Echo", "config": {"value": "after work"}},
            {
                "name": "notify",
                "worker": "Echo",
                "when": "failure",
                "config": {"value": "${chain.failed_step}: ${chain.error}"},
            },
            {"name": "cleanup", "worker": "Echo", "when": "always"},
        ],
    }
    failing = await start_chain(client, chain)
    body = await wait_chain(client, failing, "Failed")
    steps = steps_of(body)
    assert steps["work"]["Status"] == "Failed"
    assert steps["work"]["Error"] == "RuntimeError: boom"
    assert steps["next"]["Status"] == "Skipped"
    assert steps["next"]["TaskId"] is None
    assert steps["notify"]["Status"] == "Completed"
    assert steps["notify"]["Output"] == {
        "string_output": "work: step 'work' failed: RuntimeError: boom"
    }
    assert steps["cleanup"]["Status"] == "Completed"
    assert body["Error"] == "step 'work' failed: RuntimeError: boom"
    assert body["Result"] is None
    assert len(await chain_tasks(client, failing)) == 3  # no task for the skipped step

    chain["parameters"] = {"fail": 0}
    passing = await start_chain(client, chain)
    body = await wait_chain(client, passing, "Completed")
    assert [s["Status"] for s in body["Steps"]] == [
        "Completed",
        "Completed",
        "Skipped",
        "Completed",
    ]


async def test_continue_after_failure(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "on_failure": "continue",
            "steps": [
                {"name": "a", "worker": "Flaky"},
                {"name": "b", "worker": "Echo", "config": {"value": "${steps.a.status}"}},
                {"name": "c", "worker": "Flaky", "on_failure": "stop"},
                {"name": "d", "worker": "Echo"},
            ],
        },
    )
    body = await wait_chain(client, chain_id, "Failed")
    steps = steps_of(body)
    assert steps["a"]["Status"] == "Failed"
    assert steps["b"]["Output"] == {"string_output": "Failed"}
    assert steps["c"]["Status"] == "Failed"
    assert steps["d"]["Status"] == "Skipped"  # c insists on stopping
    assert body["Error"] == "step 'c' failed: RuntimeError: boom"


async def test_parallel_group_fans_out_and_in(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {
                    "name": "fan",
                    "parallel": [
                        {"name": "slow", "worker": "Spin", "config": {"seconds": 0.3}},
                        {"name": "x", "worker": "Echo", "config": {"value": 1}},
                        {"name": "y", "worker": "Echo", "config": {"value": 2}},
                    ],
                },
                {
                    "name": "join",
                    "worker": "Echo",
                    "config": {
                        "value": [
                            "${steps.x.result.value}",
                            "${steps.y.result.value}",
                            "${steps.slow.status}",
                        ]
                    },
                },
            ]
        },
    )
    body = await wait_chain(client, chain_id, "Completed")
    steps = steps_of(body)
    assert {steps[n]["Group"] for n in ("slow", "x", "y")} == {"fan"}
    assert steps["join"]["Group"] is None
    assert steps["join"]["Output"] == {"value": [1, 2, "Completed"]}
    # The three ran side by side: the fast ones finished before the slow one did.
    assert steps["x"]["FinishedAt"] < steps["slow"]["FinishedAt"]
    assert steps["x"]["StartedAt"] < steps["slow"]["FinishedAt"]
    # Fan-in: join waited for the whole group.
    assert steps["join"]["StartedAt"] >= steps["slow"]["FinishedAt"]


async def test_group_result_and_group_rule(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "a", "worker": "Echo", "config": {"value": "A"}},
                {
                    "name": "recover",
                    "when": "failure",
                    "parallel": [
                        {"name": "r1", "worker": "Echo"},
                        {"name": "r2", "worker": "Echo"},
                    ],
                },
                {
                    "name": "both",
                    "parallel": [
                        {"name": "p", "worker": "Echo", "config": {"value": 1}},
                        {"name": "q", "worker": "Echo", "config": {"value": "two"}},
                    ],
                },
            ]
        },
    )
    body = await wait_chain(client, chain_id, "Completed")
    steps = steps_of(body)
    assert steps["r1"]["Status"] == steps["r2"]["Status"] == "Skipped"
    assert body["Result"] == {"p": {"value": 1}, "q": {"string_output": "two"}}


async def test_missing_result_field_fails_that_step(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "a", "worker": "Echo", "config": {"value": {"path": "x"}}},
                {"name": "b", "worker": "Echo", "config": {"value": "${steps.a.result.dest}"}},
                {"name": "c", "worker": "Hold", "config": {"seconds": "${steps.a.result.path}"}},
            ],
            "on_failure": "continue",
        },
    )
    body = await wait_chain(client, chain_id, "Completed")
    steps = steps_of(body)
    assert steps["b"]["Status"] == "Failed"
    assert steps["b"]["TaskId"] is None
    assert steps["b"]["Error"] == (
        "a reference has no value: ${steps.a.result.dest}: the result of step a has no key "
        "'dest' (keys: path)"
    )
    # Known only now: the filled-in config is checked like any submitted config.
    assert steps["c"]["Status"] == "Failed"
    assert steps["c"]["Error"].startswith("invalid config for worker Hold (references filled in)")
    assert len(await chain_tasks(client, chain_id)) == 1


# -- control ------------------------------------------------------------------------------------
async def test_cancel_mid_chain(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "first", "worker": "Echo"},
                {
                    "name": "group",
                    "parallel": [
                        {"name": "long", "worker": "Hold", "config": {"seconds": 30}},
                        {"name": "other", "worker": "Spin", "config": {"seconds": 30}},
                    ],
                },
                {"name": "later", "worker": "Echo"},
                {"name": "notify", "worker": "Echo", "when": "failure"},
            ]
        },
    )
    await wait_step(client, chain_id, "long", "Running")
    await wait_step(client, chain_id, "other", "Running")
    r = await act(client, chain_id, "cancel")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["Status"] == "Canceled"
    steps = steps_of(body)
    assert steps["first"]["Status"] == "Completed"
    assert steps["long"]["Status"] == "Canceled"
    assert steps["other"]["Status"] == "Canceled"
    assert steps["later"]["Status"] == steps["notify"]["Status"] == "Canceled"
    await asyncio.sleep(0.3)  # nothing may start afterwards, not even a failure handler
    tasks = await chain_tasks(client, chain_id)
    assert sorted(t["Status"] for t in tasks) == ["Canceled", "Canceled", "Completed"]
    body = await get_chain(client, chain_id)
    assert body["Status"] == "Canceled"
    assert steps_of(body)["later"]["TaskId"] is None
    r = await act(client, chain_id, "cancel")
    assert r.status_code == 409
    assert r.json() == {"Error": "the chain is Canceled: cannot cancel", "Status": "Canceled"}


async def test_pause_and_resume(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "spin", "worker": "Spin", "config": {"seconds": 30}},
                {"name": "after", "worker": "Echo"},
            ]
        },
    )
    body = await wait_step(client, chain_id, "spin", "Running")
    task_id = steps_of(body)["spin"]["TaskId"]
    r = await act(client, chain_id, "pause")
    assert r.status_code == 200
    assert r.json()["Status"] == "Paused"
    assert steps_of(r.json())["spin"]["Status"] == "Paused"
    assert (await client.get(f"{API}/tasks/{task_id}/status")).json()["Status"] == "Paused"
    assert (await act(client, chain_id, "pause")).status_code == 409
    r = await act(client, chain_id, "resume")
    assert r.status_code == 200
    assert r.json()["Status"] == "Running"
    assert steps_of(r.json())["spin"]["Status"] == "Running"
    await act(client, chain_id, "cancel")


async def test_pause_holds_the_next_step(client: httpx.AsyncClient) -> None:
    # NoPause cannot pause: it runs to its end, but the next step must wait for resume.
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "busy", "worker": "NoPause", "config": {"seconds": 0.3}},
                {"name": "queued", "worker": "Hold", "config": {"seconds": 30}},
                {"name": "after", "worker": "Echo"},
            ]
        },
    )
    await wait_step(client, chain_id, "busy", "Running")
    r = await act(client, chain_id, "pause")
    assert r.json()["Status"] == "Paused"
    assert steps_of(r.json())["busy"]["Status"] in ("Running", "Completed")  # not paused
    body = await wait_step(client, chain_id, "busy", "Completed")
    await asyncio.sleep(0.3)
    body = await get_chain(client, chain_id)
    assert body["Status"] == "Paused"
    assert steps_of(body)["queued"]["Status"] == "Pending"
    assert len(await chain_tasks(client, chain_id)) == 1
    r = await act(client, chain_id, "resume")
    assert r.status_code == 200
    body = await wait_step(client, chain_id, "queued", "Running")
    # Pausing while a step waits in the queue holds it there; resume lets it go.
    await act(client, chain_id, "cancel")


async def test_restart_from_the_failed_step(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "prepare", "worker": "Echo", "config": {"value": "p"}},
                {
                    "name": "group",
                    "parallel": [
                        {"name": "ok", "worker": "Echo", "config": {"value": "fine"}},
                        {"name": "shaky", "worker": "Flaky", "config": {"fail_times": 1}},
                    ],
                },
                {"name": "finish", "worker": "Echo", "config": {"value": "${steps.shaky.result}"}},
                {"name": "notify", "worker": "Echo", "when": "failure"},
            ]
        },
    )
    failed = await wait_chain(client, chain_id, "Failed")
    before = steps_of(failed)
    assert before["shaky"]["Status"] == "Failed"
    assert before["finish"]["Status"] == "Skipped"
    assert before["notify"]["Status"] == "Completed"
    r = await act(client, chain_id, "restart")
    assert r.status_code == 200, r.text
    body = await wait_chain(client, chain_id, "Completed")
    after = steps_of(body)
    assert body["Restarts"] == 1
    assert body["Error"] is None
    # Work that completed was not redone; the failed task ran again as its next attempt.
    assert after["prepare"]["TaskId"] == before["prepare"]["TaskId"]
    assert after["ok"]["TaskId"] == before["ok"]["TaskId"]
    assert after["shaky"]["TaskId"] == before["shaky"]["TaskId"]
    assert after["shaky"]["Attempt"] == 2
    assert after["finish"]["Output"] == {"string_output": "ok"}
    assert after["notify"]["Status"] == "Skipped"
    assert after["notify"]["PreviousTaskIds"] == [before["notify"]["TaskId"]]
    statuses = {t["TaskId"]: t["Status"] for t in await chain_tasks(client, chain_id)}
    assert statuses[before["prepare"]["TaskId"]] == "Completed"
    assert len(statuses) == 5  # prepare, ok, shaky, the old notify, finish
    r = await act(client, chain_id, "restart")
    assert r.status_code == 409
    assert r.json()["Status"] == "Completed"


async def test_restart_a_canceled_chain(client: httpx.AsyncClient) -> None:
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "hold", "worker": "Hold", "config": {"seconds": 1}},
                {"name": "after", "worker": "Echo", "config": {"value": "done"}},
            ]
        },
    )
    await wait_step(client, chain_id, "hold", "Running")
    await act(client, chain_id, "cancel")
    r = await act(client, chain_id, "restart")
    assert r.status_code == 200
    body = await wait_chain(client, chain_id, "Completed")
    assert steps_of(body)["hold"]["Attempt"] == 2
    assert body["Result"] == {"string_output": "done"}


async def test_worker_limits_hold_inside_chains(client: httpx.AsyncClient) -> None:
    # Hold runs one task at a time (max_tasks = 1), chains or not.
    group = {
        "steps": [
            {
                "name": "g",
                "parallel": [
                    {"name": f"h{i}", "worker": "Hold", "config": {"seconds": 30}} for i in range(3)
                ],
            }
        ]
    }
    first = await start_chain(client, group)
    second = await start_chain(
        client, {"steps": [{"name": "h", "worker": "Hold", "config": {"seconds": 30}}]}
    )
    await wait_step(client, second, "h", "Queued")

    def one_runs(body: dict[str, Any]) -> bool:
        return sorted(s["Status"] for s in body["Steps"]) == ["Queued", "Queued", "Running"]

    await wait_until(client, first, one_runs)
    await asyncio.sleep(0.2)  # and it stays that way
    assert one_runs(await get_chain(client, first))
    assert steps_of(await get_chain(client, second))["h"]["Status"] == "Queued"
    stats = (await client.get(f"{API}/workers/Hold/statistics")).json()
    assert stats["RunningNow"] == 1
    assert stats["QueuedNow"] == 3
    for chain_id in (first, second):
        assert (await act(client, chain_id, "cancel")).status_code == 200
        assert {t["Status"] for t in await chain_tasks(client, chain_id)} == {"Canceled"}
    # The engine frees the queue slots of canceled tasks as it reaches them: wait for that.
    for _ in range(500):
        stats = (await client.get(f"{API}/workers/Hold/statistics")).json()
        if stats["RunningNow"] == 0:
            break
        await asyncio.sleep(0.01)
    assert stats["RunningNow"] == 0


# -- reading ------------------------------------------------------------------------------------
async def test_list_chains(client: httpx.AsyncClient) -> None:
    ids = [
        await start_chain(client, {"steps": [{"name": "a", "worker": "Echo"}]}) for _ in range(3)
    ]
    for chain_id in ids:
        await wait_chain(client, chain_id, "Completed")
    r = await client.get(f"{API}/chains", params={"limit": 2})
    assert r.status_code == 200
    page = schemas.ChainList.model_validate(r.json())
    assert [c.ChainId for c in page.Chains] == ids[:2]
    assert page.NextCursor is not None
    rest = (await client.get(f"{API}/chains/", params={"cursor": page.NextCursor})).json()
    assert [c["ChainId"] for c in rest["Chains"]] == ids[2:]
    assert rest["NextCursor"] is None
    newest = (await client.get(f"{API}/chains", params={"order": "desc", "limit": 1})).json()
    assert newest["Chains"][0]["ChainId"] == ids[2]
    assert newest["Chains"][0]["Duration"]
    done = (await client.get(f"{API}/chains", params={"status": "completed"})).json()
    assert len(done["Chains"]) == 3
    running = (await client.get(f"{API}/chains", params={"status": "Running"})).json()
    assert running["Chains"] == []


async def test_read_and_control_errors(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/chains/nope")).status_code == 404
    missing = "0" * 32
    r = await client.get(f"{API}/chains/{missing}")
    assert r.status_code == 404
    assert r.json() == {"Error": f"no chain with id {missing!r}"}
    assert (await act(client, missing, "cancel")).status_code == 404
    assert (await client.get(f"{API}/chains", params={"status": "odd"})).status_code == 400
    assert (await client.get(f"{API}/chains", params={"order": "up"})).status_code == 400
    assert (await client.get(f"{API}/chains", params={"limit": "0"})).status_code == 400
    chain_id = await start_chain(client, {"steps": [{"name": "a", "worker": "Echo"}]})
    await wait_chain(client, chain_id, "Completed")
    r = await act(client, chain_id, "explode")
    assert r.status_code == 422
    assert "cancel, pause, resume, restart" in r.json()["Error"]
    r = await client.post(
        f"{API}/chains/{chain_id}/actions",
        content=b"{bad",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    for action, status in (("pause", 409), ("resume", 409), ("cancel", 409), ("restart", 409)):
        r = await act(client, chain_id, action)
        assert r.status_code == status
        assert r.json()["Error"] == f"the chain is Completed: cannot {action}"


# -- bad input ----------------------------------------------------------------------------------
BAD_CHAINS: list[tuple[Any, str | None, str]] = [
    ({"steps": [{"name": "a", "worker": "NoSuchWorker"}]}, "a", "unknown worker 'NoSuchWorker'"),
    (
        {
            "steps": [
                {"name": "a", "worker": "Echo"},
                {"name": "b", "worker": "Hold", "config": {"seconds": -1}},
            ]
        },
        "b",
        "invalid config for worker Hold: seconds:",
    ),
    (
        {"steps": [{"name": "c", "worker": "CopyFile", "config": {"source": "x"}}]},
        "c",
        "destination: Field required",
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
        {"steps": [{"name": "a", "worker": "Echo", "config": {"value": "${steps.ghost.result}"}}]},
        "a",
        "names no step of this chain",
    ),
    (
        {"steps": [{"name": "a", "worker": "Echo", "config": {"value": "${params.p}"}}]},
        "a",
        "names a parameter the chain does not declare",
    ),
    (
        {"steps": [{"name": "a", "worker": "Echo", "config": {"value": "${a.b}"}}]},
        "a",
        "bad reference",
    ),
    (
        {
            "steps": [
                {"name": "a", "worker": "Echo", "config": {"value": "${steps.b.result}"}},
                {"name": "b", "worker": "Echo"},
            ]
        },
        "a",
        "which runs later",
    ),
    ({"steps": [{"name": "a", "worker": "Echo", "when": "maybe"}]}, "a", "when"),
    ({"steps": []}, None, "at least 1 item"),
    ([{"name": "a"}], None, "must be a JSON object"),
]


async def test_bad_chains_are_refused_whole(client: httpx.AsyncClient) -> None:
    for body, step, says in BAD_CHAINS:
        r = await client.post(f"{API}/chains", json=body)
        assert r.status_code == 422, (body, r.text)
        answer = r.json()
        assert says in answer["Error"], (says, answer)
        assert answer["Step"] == step
        assert isinstance(answer["Fields"], list)
        if step is not None:
            assert answer["Error"].startswith(f"step {step!r}: ")
    r = await client.post(
        f"{API}/chains", content=b"[not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    # Nothing was created by any of them.
    assert (await client.get(f"{API}/chains")).json()["Chains"] == []
    assert (await client.get(f"{API}/tasks")).json()["Tasks"] == []


async def test_openapi_documents_chains(client: httpx.AsyncClient) -> None:
    doc = (await client.get(f"{API}/openapi.json")).json()
    paths = doc["paths"]
    assert set(paths[f"{API}/chains"]) == {"get", "post"}
    assert "post" in paths[f"{API}/chains/{{id}}/actions"]
    assert set(paths[f"{API}/chain-definitions/{{name}}"]) == {"get", "put", "delete"}
    assert "post" in paths[f"{API}/chain-definitions/{{name}}/start"]
    assert "ChainSpec" in doc["components"]["schemas"]
    assert "ChainDetail" in doc["components"]["schemas"]
    # Long chains: the chain's answer is bounded, the rest comes a page at a time.
    detail = doc["components"]["schemas"]["ChainDetail"]["properties"]
    assert {"StepCount", "StepCounts", "StepsNextCursor"} <= set(detail)
    steps = paths[f"{API}/chains/{{id}}/steps"]["get"]
    assert {p["name"] for p in steps["parameters"] if p["in"] == "query"} == {"limit", "cursor"}
    assert "StepPage" in doc["components"]["schemas"]
    shown = paths[f"{API}/chains/{{id}}"]["get"]
    assert [p["name"] for p in shown["parameters"] if p["in"] == "query"] == ["steps"]


# -- retention ----------------------------------------------------------------------------------
async def test_a_half_pruned_chain_reads_and_restarts_without_error(
    app: Any, client: httpx.AsyncClient
) -> None:
    """Pruning takes a long chain's tasks over several writes: between two of them (or after a
    crash) the chain is still there, finished, with steps whose tasks are gone."""
    echo = {"worker": "Echo", "config": {"value": 1}}
    chain_id = await start_chain(
        client,
        {
            "steps": [
                {"name": "a", **echo},
                {"name": "b", **echo},
                {"name": "c", "worker": "Flaky", "config": {}},
            ]
        },
    )
    await wait_chain(client, chain_id, "Failed")
    chains = app.state.engine.store.chains
    pruned = await chains.prune_finished(asyncio.get_running_loop().time() + 1e10, 2)
    assert (pruned.tasks, pruned.chains) == (2, 0)
    body = await get_chain(client, chain_id)
    assert body["Status"] == "Failed" and len(body["Steps"]) == 3
    assert sum(body["StepCounts"].values()) == 3
    listed = await client.get(f"{API}/chains")
    assert listed.status_code == 200 and chain_id in {c["ChainId"] for c in listed.json()["Chains"]}
    r = await client.get(f"{API}/chains/{chain_id}/steps")
    assert r.status_code in (200, 404), r.text
    # Restarted, it runs again the steps whose task is gone (and fails again at c).
    r = await act(client, chain_id, "restart")
    assert r.status_code == 200, r.text
    body = await wait_chain(client, chain_id, "Failed")
    assert [(s["Name"], s["Status"]) for s in body["Steps"]] == [
        ("a", "Completed"),
        ("b", "Completed"),
        ("c", "Failed"),
    ]
    assert body["Restarts"] == 1
