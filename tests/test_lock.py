"""Set-up is reproducible: every dependency is locked, the lock agrees with pyproject.toml, and
both ``make run`` and ``make test`` install through it."""

from __future__ import annotations

import re
import subprocess
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

LOCK = ROOT / "requirements" / "constraints.txt"


def _locked() -> dict[str, list[Version]]:
    """Name -> pinned versions (one per platform marker; usually one)."""
    pins: dict[str, list[Version]] = {}
    for line in LOCK.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        [spec] = requirement.specifier
        assert spec.operator == "==", line
        pins.setdefault(canonicalize_name(requirement.name), []).append(Version(spec.version))
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    texts = list(project["project"]["dependencies"])
    for extra in project["project"]["optional-dependencies"].values():
        texts += extra
    texts += project["build-system"]["requires"]
    return [Requirement(text) for text in texts]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _locked()
    for requirement in _declared():
        versions = pins.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is not in {LOCK.name}: run make lock"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{requirement.name}=={version} in the lock is outside {requirement}: run make lock"
            )


def test_pip_itself_is_locked() -> None:
    assert "pip" in _locked()


def _recipe(target: str) -> str:
    # make -n prints what a target would run, without running it (the stamps may be there).
    done = subprocess.run(
        ["make", "-n", "-B", "-f", "Makefile", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def test_make_run_and_make_test_install_through_the_lock() -> None:
    for stamp in (".venv/.installed", ".venv/.installed-test"):
        installs = [line for line in _recipe(stamp).splitlines() if re.search(r"pip install", line)]
        assert installs, stamp
        for line in installs:
            assert f"PIP_CONSTRAINT={LOCK}" in line, line
