"""Workers with a secret config field, for tests/test_security_secrets.py.

Each proves it received the real secret by returning its SHA-256, never the secret itself.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tasky import TaskContext, Worker


class VaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(default="admin", max_length=100)
    password: SecretStr = Field(description="Never shown.")
    hold: float = Field(default=0, ge=0, le=30)


def _digest(config: VaultConfig) -> dict[str, Any]:
    secret = config.password.get_secret_value()
    return {"user": config.user, "sha256": hashlib.sha256(secret.encode()).hexdigest()}


class Vault(Worker):
    """Thread mode, one at a time: holds its slot ``hold`` seconds, then returns the digest."""

    name = "Vault"
    Config = VaultConfig
    max_tasks = 1

    def perform(self, config: VaultConfig, task: TaskContext) -> dict[str, Any]:
        task.log(f"unlocking for {config.user}")
        deadline = time.monotonic() + config.hold
        while time.monotonic() < deadline and not task.cancelled:
            time.sleep(0.02)
        return _digest(config)


class VaultProcess(Worker):
    """The same in process mode: the config crosses to a child process."""

    name = "VaultProcess"
    Config = VaultConfig
    mode = "process"

    def perform(self, config: VaultConfig, task: TaskContext) -> dict[str, Any]:
        return _digest(config)
