"""Process-mode workers the process tests drive: busy loops, children, crashes, chatter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasky import TaskContext, Worker


class BurnConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=600, ge=0)
    children: int = Field(default=0, ge=0, le=4)
    ignore_term: bool = False


class Burn(Worker):
    """Spins the CPU without ever checking for pause or cancel; may start busy children."""

    name = "Burn"
    Config = BurnConfig
    mode = "process"
    actions = frozenset({"cancel", "pause", "resume"})
    kill_grace = 1.0

    def perform(self, config: BurnConfig, task: TaskContext) -> dict[str, Any]:
        if config.ignore_term:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        spin = "while True: pass"
        kids = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(config.children)]
        task.log(f"children {' '.join(str(k.pid) for k in kids)}")
        deadline = time.monotonic() + config.seconds
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            if rounds % 200_000 == 0:
                task.progress(None, f"round {rounds}")
        return {"rounds": rounds}


class CrashConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    how: Literal["exit", "segv", "kill", "raise", "not_json", "exit0"]
    code: int = 3


class Crash(Worker):
    name = "Crash"
    Config = CrashConfig
    mode = "process"

    def perform(self, config: CrashConfig, task: TaskContext) -> Any:
        task.log("about to crash")
        print("printed to stdout", flush=True)
        if config.how == "exit":
            os._exit(config.code)
        if config.how == "exit0":
            os._exit(0)
        if config.how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if config.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if config.how == "not_json":
            return {1, 2, 3}
        raise ValueError("bad input 42")


class ChattyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: int = Field(ge=0)
    via: Literal["log", "print"] = "print"


class Chatty(Worker):
    name = "Chatty"
    Config = ChattyConfig
    mode = "process"

    def perform(self, config: ChattyConfig, task: TaskContext) -> dict[str, int]:
        for i in range(config.lines):
            if config.via == "log":
                task.log(f"line {i}")
            else:
                print(f"line {i}")
            if i % 1000 == 0:
                task.progress(i / max(config.lines, 1), f"{i} lines")
        return {"lines": config.lines}
