"""Command workers: a task runs one program with an argv built from typed parameters.

Nothing runs through a shell. A placeholder ``{name}`` must be a whole argv element and is
replaced by exactly one element (or, for a boolean with a ``flag``, by the flag or nothing), so a
value like ``x; rm -rf /`` or ``$(id)`` reaches the program as one literal argument.

:class:`CommandWorker` is the base class; :func:`make_command_worker` builds one from a
declaration (what the TOML loader in :mod:`tasky.config_file` does).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    create_model,
)

from tasky.workers.base import Worker
from tasky.workers.files import check_path
from tasky.workers.paths import PathRefused
from tasky.workers.strict import AllowControl

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ParamType = Literal["string", "integer", "number", "boolean", "enum", "path"]
PARAM_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "enum", "path")


@dataclass(frozen=True, slots=True)
class CommandLine:
    """What to execute: argv (argv[0] found on PATH), working directory and environment."""

    argv: list[str]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)


class CommandWorker(Worker):
    """A worker whose task is a program run without a shell, in its own process group."""

    mode = "command"
    actions = frozenset({"cancel", "pause", "resume"})
    # "text": the result holds the exit code and the last stdout lines; "json": stdout parsed.
    output: ClassVar[Literal["text", "json"]] = "text"
    stdout_tail: ClassVar[int] = 20
    success_codes: ClassVar[frozenset[int]] = frozenset({0})
    # A line of stdout or stderr matching this sets the progress: named groups ``percent`` or
    # ``fraction``, and optionally ``message``.
    progress_pattern: ClassVar[re.Pattern[str] | None] = None

    def command_line(self, config: Any, roots: Sequence[Path]) -> CommandLine:
        # check_definition refuses a command worker that does not override this.
        raise TypeError(f"worker {self.name} defines no command line")

    @classmethod
    def check_definition(cls) -> None:
        super().check_definition()
        if cls.command_line is CommandWorker.command_line:
            raise ValueError(f"worker {cls.name} needs a command_line(config, roots) method")

    def perform(self, config: Any, task: Any) -> Any:
        raise TypeError(f"worker {self.name} runs a command; the engine starts it, not perform")


# -- parameters ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Param:
    """One typed parameter of a declared command worker (a field of its config)."""

    name: str
    type: ParamType
    description: str = ""
    default: Any = None
    required: bool = True
    # string
    pattern: str | None = None
    min_length: int | None = None
    max_length: int = 4096
    allow_dash: bool = False
    # integer / number
    minimum: float | None = None
    maximum: float | None = None
    # enum
    values: tuple[str, ...] = ()
    # path
    must_exist: bool = True
    kind: Literal["any", "file", "dir"] = "any"
    # boolean: when set, True puts this element in argv and False leaves the element out
    flag: str | None = None
    # string: accept control characters (tab, newline, escape...; never NUL, which no argv holds)
    allow_control: bool = False
    # integer / number: accept values below zero ("-5" reads as an option: only after "--")
    allow_negative: bool = False
    # string: never shown by the API (masked), its schema says password; prefer ``env`` for it
    secret: bool = False
    # the value also goes to the program as this environment variable (then argv may omit it)
    env: str | None = None


def _no_leading_dash(value: str) -> str:
    # A value starting with "-" would be read as an option by most programs (argument injection).
    if value.startswith("-"):
        raise ValueError("must not start with '-'")
    return value


def _path_checker(param: Param, roots: Sequence[Path]) -> Any:
    def check(value: str) -> str:
        try:
            check_path(value, roots, kind=param.kind, must_exist=param.must_exist)
        except PathRefused as exc:
            raise ValueError(str(exc)) from None
        return value

    return check


def _secret_checker(param: Param) -> Any:
    # SecretStr takes no pattern constraint: the same checks as a plain string, on its value.
    pattern = re.compile(param.pattern) if param.pattern is not None else None

    def check(value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if pattern is not None and pattern.search(text) is None:
            raise ValueError("does not match the parameter's pattern")
        if not param.allow_dash:
            _no_leading_dash(text)
        return value

    return check


def _lowest(param: Param) -> float | None:
    """The effective minimum: zero unless negative numbers are allowed."""
    if param.allow_negative:
        return param.minimum
    return 0 if param.minimum is None else max(param.minimum, 0)


def _annotation(param: Param, roots: Sequence[Path]) -> Any:
    info: dict[str, Any] = {"description": param.description or None}
    if param.type == "string":
        base: Any
        if param.secret:
            base = Annotated[
                SecretStr,
                Field(min_length=param.min_length, max_length=param.max_length, **info),
                AfterValidator(_secret_checker(param)),
            ]
        else:
            base = Annotated[
                str,
                Field(
                    min_length=param.min_length,
                    max_length=param.max_length,
                    pattern=param.pattern,
                    **info,
                ),
            ]
            if not param.allow_dash:
                base = Annotated[base, AfterValidator(_no_leading_dash)]
        if param.allow_control:
            base = Annotated[base, AllowControl]
        return base
    if param.type == "integer":
        return Annotated[int, Field(ge=_lowest(param), le=param.maximum, strict=True, **info)]
    if param.type == "number":
        return Annotated[
            float,
            Field(ge=_lowest(param), le=param.maximum, strict=True, allow_inf_nan=False, **info),
        ]
    if param.type == "boolean":
        return Annotated[bool, Field(strict=True, **info)]
    if param.type == "enum":
        return Annotated[Literal[param.values], Field(**info)]
    return Annotated[
        str,
        Field(min_length=1, max_length=4096, pattern=param.pattern, **info),
        AfterValidator(_path_checker(param, roots)),
    ]


def config_model(name: str, params: Sequence[Param], roots: Sequence[Path]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for param in params:
        default = ... if param.required and param.default is None else param.default
        fields[param.name] = (_annotation(param, roots), default)
    model: type[BaseModel] = create_model(
        f"{name}Config", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# Variables that make a program load code or change how it finds programs: never from a task.
_UNSAFE_ENV = re.compile(
    r"(LD_|DYLD_).*|PATH|IFS|ENV|BASH_ENV|PYTHON(PATH|HOME|STARTUP)|PERL5(LIB|OPT)|NODE_OPTIONS|"
    r"RUBYOPT|GCONV_PATH|LOCPATH|HOSTALIASES|TMPDIR|HOME",
    re.ASCII,
)


def _check_param_options(param: Param, fixed_env: Mapping[str, str]) -> None:
    if param.allow_control and param.type != "string":
        raise ValueError(f"parameter {param.name}: allow_control is for strings")
    if param.secret and param.type != "string":
        raise ValueError(f"parameter {param.name}: only a string can be secret")
    if param.secret and param.default is not None:
        raise ValueError(f"parameter {param.name}: a secret cannot have a default (it is shown)")
    if param.allow_negative and param.type not in ("integer", "number"):
        raise ValueError(f"parameter {param.name}: allow_negative is for integers and numbers")
    if param.minimum is not None and param.minimum < 0 and not param.allow_negative:
        raise ValueError(f"parameter {param.name}: a negative min needs allow_negative = true")
    if param.env is not None:
        if not _ENV_NAME.fullmatch(param.env) or _UNSAFE_ENV.fullmatch(param.env.upper()):
            raise ValueError(f"parameter {param.name}: env {param.env!r} is not allowed")
        if param.env in fixed_env:
            raise ValueError(f"parameter {param.name}: env {param.env} is also a fixed variable")


# -- argv templates -----------------------------------------------------------------------------
def check_template(argv: Sequence[str], params: Sequence[Param]) -> None:
    """Refuse templates whose placeholders are not whole elements or name no parameter."""
    names = {p.name for p in params}
    if not argv or not all(isinstance(a, str) for a in argv) or not argv[0]:
        raise ValueError("argv must be a non-empty list of strings")
    if PLACEHOLDER.fullmatch(argv[0]):
        raise ValueError("argv[0] (the program) cannot be a placeholder")
    used: set[str] = set()
    for element in argv:
        whole = PLACEHOLDER.fullmatch(element)
        if whole:
            if whole.group(1) not in names:
                raise ValueError(f"argv element {element!r} names no declared parameter")
            used.add(whole.group(1))
            continue
        for inner in PLACEHOLDER.finditer(element):
            if inner.group(1) in names:
                raise ValueError(
                    f"argv element {element!r}: a placeholder must be a whole element "
                    f"(write [..., {element[: inner.start()]!r}, {inner.group(0)!r}] instead)"
                )
    unused = names - used - {p.name for p in params if p.env is not None}
    if unused:
        raise ValueError(f"parameters not used in argv: {', '.join(sorted(unused))}")
    _check_option_like(argv, params)


def _check_option_like(argv: Sequence[str], params: Sequence[Param]) -> None:
    """A value that may start with "-" belongs after a "--" element: there it is no option."""
    end_of_options = argv.index("--") if "--" in argv else len(argv)
    for param in params:
        if not (param.allow_dash or param.allow_negative):
            continue
        where = [i for i, a in enumerate(argv) if a == "{" + param.name + "}"]
        if any(i < end_of_options for i in where):
            key = "allow_dash" if param.allow_dash else "allow_negative"
            raise ValueError(
                f"parameter {param.name}: with {key} its placeholder must come after a '--' "
                "element (or pass it as an env variable), or a value such as '-5' or '--help' "
                "would be read as an option"
            )


def render_argv(
    argv: Sequence[str],
    params: Mapping[str, Param],
    values: Mapping[str, Any],
    roots: Sequence[Path],
) -> list[str]:
    out: list[str] = []
    for element in argv:
        whole = PLACEHOLDER.fullmatch(element)
        if whole is None or whole.group(1) not in params:
            out.append(element)
            continue
        param = params[whole.group(1)]
        value = values.get(param.name)
        if value is None:
            continue  # an optional parameter left out leaves its element out
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if param.type == "boolean":
            if param.flag is not None:
                if value:
                    out.append(param.flag)
                continue
            out.append("true" if value else "false")
        elif param.type == "path":
            # Checked again now: the file system may have changed since the task was submitted.
            # The program gets a path with no symlink in it, but it opens that path itself, later:
            # a component swapped for a symlink in between would be followed (see check_path).
            checked = check_path(str(value), roots, kind=param.kind, must_exist=param.must_exist)
            out.append(str(checked))
        else:
            out.append(str(value))
    # The config checks refuse NUL already; a C program would see a truncated argument.
    if any("\x00" in element for element in out):
        raise ValueError("an argument holds a NUL character")
    return out


def render_env(params: Sequence[Param], values: Mapping[str, Any]) -> dict[str, str]:
    """The environment variables of the parameters that declare ``env``."""
    out: dict[str, str] = {}
    for param in params:
        value = values.get(param.name)
        if param.env is None or value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if "\x00" in text:
            raise ValueError(f"the value of {param.name} holds a NUL character")
        out[param.env] = text
    return out


def make_command_worker(
    *,
    name: str,
    argv: Sequence[str],
    params: Sequence[Param] = (),
    roots: Sequence[Path] = (),
    description: str = "",
    usage: str = "",
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    output: Literal["text", "json"] = CommandWorker.output,
    stdout_tail: int = CommandWorker.stdout_tail,
    success_codes: Collection[int] = CommandWorker.success_codes,
    progress_pattern: str | None = None,
    timeout: float | None = CommandWorker.timeout,
    max_tasks: int = CommandWorker.max_tasks,
    max_queued: int | None = CommandWorker.max_queued,
    retention_days: float | None = CommandWorker.retention_days,
    retries: int = CommandWorker.retries,
    kill_grace: float = CommandWorker.kill_grace,
    idempotent: bool = CommandWorker.idempotent,
    actions: Collection[str] = CommandWorker.actions,
    check_program: bool = True,
) -> type[CommandWorker]:
    """Build a command worker class; raises ValueError with a clear message on a bad declaration.

    The defaults are :class:`CommandWorker`'s (and so :class:`~tasky.workers.base.Worker`'s).
    """
    seen: set[str] = set()
    for param in params:
        if not param.name.isidentifier() or param.name in seen:
            raise ValueError(f"parameter name {param.name!r} is invalid or repeated")
        seen.add(param.name)
        if param.type == "enum" and not param.values:
            raise ValueError(f"parameter {param.name}: an enum needs values")
        if param.pattern is not None:
            try:
                re.compile(param.pattern)
            except re.error as exc:
                raise ValueError(f"parameter {param.name}: bad pattern: {exc}") from None
        _check_param_options(param, env or {})
    check_template(argv, params)
    for param in params:
        if param.default is not None:
            try:
                TypeAdapter(_annotation(param, roots)).validate_python(param.default)
            except ValidationError as exc:
                message = exc.errors()[0]["msg"]
                raise ValueError(f"parameter {param.name}: bad default: {message}") from None
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    if retries < 0:
        raise ValueError("retries cannot be negative")
    if not success_codes or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in success_codes
    ):
        raise ValueError("success_codes must be a list of exit codes (0-255)")
    if check_program and shutil.which(argv[0]) is None:
        raise ValueError(f"program {argv[0]!r} not found (or not executable)")
    if cwd is not None and not cwd.is_dir():
        raise ValueError(f"working directory {cwd} does not exist")
    if output not in ("text", "json"):
        raise ValueError(f"output must be 'text' or 'json', not {output!r}")
    if not 0 <= stdout_tail <= 10_000:
        raise ValueError("stdout_tail must be between 0 and 10000 lines")
    pattern = re.compile(progress_pattern) if progress_pattern else None
    if pattern is not None and not {"percent", "fraction"} & set(pattern.groupindex):
        raise ValueError("progress pattern needs a named group 'percent' or 'fraction'")
    template = list(argv)
    by_name = {p.name: p for p in params}
    fixed_env = dict(env or {})

    def command_line(self: CommandWorker, config: Any, run_roots: Sequence[Path]) -> CommandLine:
        # Field by field, not model_dump: a dump would turn secrets into "**********".
        if isinstance(config, BaseModel):
            values = {name: getattr(config, name) for name in type(config).model_fields}
        else:
            values = dict(config)
        env = {**fixed_env, **render_env(params, values)}
        return CommandLine(render_argv(template, by_name, values, run_roots), cwd, env)

    attrs: dict[str, Any] = {
        "name": name,
        "description": description or f"Runs {argv[0]}",
        "usage": usage or "argv: " + " ".join(template),
        "Config": config_model(name, params, roots),
        "max_tasks": max_tasks,
        "max_queued": max_queued,
        "retention_days": retention_days,
        "actions": frozenset(actions),
        "idempotent": idempotent,
        "timeout": timeout,
        "retries": retries,
        "kill_grace": kill_grace,
        "output": output,
        "stdout_tail": stdout_tail,
        "success_codes": frozenset(success_codes),
        "progress_pattern": pattern,
        "command_line": command_line,
        "__module__": __name__,
    }
    cls: type[CommandWorker] = type(name, (CommandWorker,), attrs)
    cls.check_definition()
    return cls
