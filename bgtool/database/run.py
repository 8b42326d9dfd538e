"""Applying pending migrations: the embedded default (SQLite) or the team's own tool.

`migrate_command` runs without a shell: a string is split like a shell would (shlex) but never
interpreted by one, and `$NAME` / `${NAME}` in an argument are replaced from the command's
environment, so `-database ${DATABASE_URL}` works without the secret ever being in the file or on
a command line that bgtool prints. The connection comes from an environment variable
(`connection_env`) or a Secrets Manager secret (`connection_secret`, exported to the command as
`connection_env`, default DATABASE_URL).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from string import Template
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bgtool.config.schema import DatabaseSettings
from bgtool.errors import BgtoolError

DEFAULT_CONNECTION_ENV = "DATABASE_URL"
COMMAND_TIMEOUT_SECONDS = 3600
OUTPUT_TAIL_CHARS = 2000


def command_argv(settings: DatabaseSettings, env: dict[str, str], shown: str) -> list[str]:
    """The argument vector of migrate_command with $NAME substituted from ENV (no shell involved)."""
    raw = settings.migrate_command
    if raw is None:
        raise ValueError("no migrate_command")
    try:
        words = shlex.split(raw) if isinstance(raw, str) else list(raw)
    except ValueError as exc:
        raise BgtoolError(f"{shown}: database.migrate_command cannot be split into arguments: {exc}") from None
    try:
        return [Template(word).substitute(env) for word in words]
    except KeyError as exc:
        raise BgtoolError(f"{shown}: database.migrate_command uses ${exc.args[0]}, which is not set in the "
                          "environment", hint="Set it, or remove it from the command. Nothing was run.") from None
    except ValueError as exc:
        raise BgtoolError(f"{shown}: database.migrate_command: {exc} (write $$ for a literal $)") from None


def connection_environment(settings: DatabaseSettings, secrets: Any, shown: str) -> dict[str, str]:
    """{name: connection} from the named variable or the secret; empty when neither is configured."""
    name = settings.connection_env or DEFAULT_CONNECTION_ENV
    if settings.connection_secret:
        try:
            value = secrets.get_secret_value(SecretId=settings.connection_secret)["SecretString"]
        except (ClientError, BotoCoreError, KeyError) as exc:
            raise BgtoolError(f"{shown}: database.connection_secret {settings.connection_secret!r} cannot be "
                              f"read: {exc}", hint="Check the secret's name and this role's "
                              "secretsmanager:GetSecretValue permission. Nothing was run.") from None
        return {name: value}
    if settings.connection_env:
        if not os.environ.get(name):
            raise BgtoolError(f"{shown}: database.connection_env names {name}, which is not set",
                              hint=f"Export {name} with the database connection. Nothing was run.")
        return {name: os.environ[name]}
    return {}


def run_command(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the team's migration tool; a non-zero exit becomes a BgtoolError with the output's tail."""
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True,
                              timeout=COMMAND_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise BgtoolError(f"migrate_command: {argv[0]!r} was not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise BgtoolError(f"migrate_command did not finish within {COMMAND_TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "")[-OUTPUT_TAIL_CHARS:].strip()
        raise BgtoolError(f"migrate_command {shlex.join(argv[:1])} exited {done.returncode}: {tail}")
    return done
