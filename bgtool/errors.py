"""Errors that carry what the operator needs: what broke, what state things are in, how to recover.

Every command maps a BgtoolError to exit code 1 and prints its message and hint; anything else
is a bug and surfaces with a traceback.
"""

from __future__ import annotations


class BgtoolError(Exception):
    """A failure the operator can act on."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UsageError(BgtoolError):
    """A command-line value outside what is allowed: refused before anything is locked, recorded or written."""

    exit_code = 3
    kind = "usage"


class ConfigError(BgtoolError):
    """The environment file is missing, unreadable or invalid; nothing was rendered or applied."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{path}: invalid environment file ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n{lines}",
            hint="Nothing was rendered or applied. Fix the file and run the command again.",
        )
