"""Command: run one of a few allow-listed programs, without a shell, in its own process group."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasky.workers.command import CommandLine, CommandWorker


@dataclass(frozen=True, slots=True)
class Allowed:
    argv: tuple[str, ...]
    max_args: int = 0
    arg_pattern: str | None = None


# What the Command worker may run. Arguments are appended as literal argv elements.
ALLOWED: dict[str, Allowed] = {
    "echo": Allowed(("echo",), max_args=20),
    "date": Allowed(("date", "-u")),
    "uname": Allowed(("uname", "-a")),
    "uptime": Allowed(("uptime",)),
    "df": Allowed(("df", "-h", "--")),
    "sleep": Allowed(("sleep",), max_args=1, arg_pattern=r"^\d{1,6}(\.\d{1,3})?$"),
}

Program = Literal["echo", "date", "uname", "uptime", "df", "sleep"]


class CommandConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program: Program = Field(description="One of the allow-listed programs.")
    args: list[str] = Field(
        default_factory=list, max_length=20, description="Arguments, each passed as it is."
    )

    @model_validator(mode="after")
    def _check_args(self) -> CommandConfig:
        allowed = ALLOWED[self.program]
        if len(self.args) > allowed.max_args:
            raise ValueError(f"{self.program} takes at most {allowed.max_args} arguments")
        for arg in self.args:
            if len(arg) > 1000 or "\x00" in arg:
                raise ValueError("an argument is too long or contains a NUL byte")
            if allowed.arg_pattern and not re.fullmatch(allowed.arg_pattern, arg):
                raise ValueError(f"{self.program}: argument {arg!r} is not allowed")
        return self


class Command(CommandWorker):
    name = "Command"
    description = (
        "Command runs an allow-listed program (echo, date, uname, uptime, df, sleep) on the "
        "server, without a shell; its output lines go to the task's log."
    )
    usage = (
        "Give program and args. Each arg reaches the program as one literal argument: "
        "nothing is interpreted by a shell. Pause, resume and cancel act on the process."
    )
    Config = CommandConfig
    max_tasks = 4
    timeout = 3600
    kill_grace = 2.0

    def command_line(self, config: CommandConfig, roots: Sequence[Path]) -> CommandLine:
        return CommandLine([*ALLOWED[config.program].argv, *config.args])
