"""Entry point: one typer app, commands registered from one module per area, one error policy.

Exit codes (the contract scripts rely on):
  0  success
  1  failure: invalid input, a failed health gate, a rolled-back switch, a Terraform or AWS error
  2  `plan` found changes / `drift` found drift (like `terraform plan -detailed-exitcode`)
  3  usage error: unknown command or option, missing argument
"""

from __future__ import annotations

import importlib
import os
import shlex
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from bgtool import interrupts
from bgtool.cli import ui
from bgtool.errors import BgtoolError, ConfigError
from bgtool.terraform.cliconfig import PROVIDER_INSTALL_FAILURES

if TYPE_CHECKING:
    from bgtool.terraform.runner import TerraformError

EXIT_CODES = """Exit codes: 0 success; 1 failure (invalid input, gate failed, switch rolled back, Terraform or
AWS error); 2 plan found changes or drift found drift; 3 usage error."""

app = typer.Typer(
    name="bgtool",
    help=f"Zero-downtime blue-green releases on AWS, driven through Terraform.\n\n{EXIT_CODES}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


COMMAND_MODULES = ("database", "drift", "iam", "infra", "local", "local_fault", "operate", "release", "report")
# The module that registers each command: a command imports its own module only, since start-up time
# is part of how fast `rollback --break-glass` gets traffic back; help and unknown names import all.
COMMAND_MODULE = {
    "db": "database", "changed": "drift", "drift": "drift", "iam": "iam", "apply": "infra", "plan": "infra",
    "render": "infra", "local": "local_fault", "deploy": "operate", "history": "operate", "retire": "operate",
    "status": "operate", "unlock": "operate", "watch": "operate", "verify": "operate", "switch": "release",
    "rollback": "release", "report": "report",
}


@app.callback()
def _root() -> None:
    """Zero-downtime blue-green releases on AWS, driven through Terraform."""


def _register(args: list[str]) -> None:
    """Import the command modules (each registers its commands on import)."""
    first = next((a for a in args if not a.startswith("-")), None)
    for name in [COMMAND_MODULE[first]] if first in COMMAND_MODULE else COMMAND_MODULES:
        importlib.import_module(f"bgtool.cli.{name}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure ends here, as one report (and one JSON document with --json)."""
    interrupts.install()  # a cancelled CI job (SIGTERM) takes the Ctrl-C path: restore, unlock, record
    args = list(sys.argv[1:] if argv is None else argv)
    ui.set_json_mode("--json" in args)  # also for failures before the command runs (usage errors)
    try:
        _register(args)
        from bgtool.cli.common import forget_workspace  # imported by every command module by now

        forget_workspace()
        code = app(args=args, standalone_mode=False, prog_name="bgtool")
    except Exception as exc:  # the one error policy: nothing escapes as a traceback
        show = getattr(exc, "show", None) if isinstance(exc, typer.TyperException) else None
        if show is not None:
            show()  # typer's rendering: usage line, where to find --help, the error
        return _fail(_failure(exc, args), printed=show is not None)
    code = code if isinstance(code, int) else 0
    ui.close_live()
    ui.flush_json(code)
    return code


@dataclass(frozen=True)
class Failure:
    """What the user sees of a failure: one line (what, where, why), how to recover, and a kind for scripts."""

    message: str
    hint: str | None
    kind: str
    exit_code: int = 1
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "error": {**self.details, "message": self.message, "hint": self.hint, "kind": self.kind,
                                       "exit_code": self.exit_code}}


def _failure(exc: Exception, args: list[str]) -> Failure:
    try:
        return failure_of(exc, args)
    except Exception:  # the policy's own imports failed (a broken module): still one line and a log
        return _unexpected(exc, _rerun(args))


def _rerun(args: list[str]) -> str:
    return "bgtool " + shlex.join(args)


def failure_of(exc: Exception, args: list[str]) -> Failure:
    """Map an exception to its report. Typer's own exceptions follow click's convention (usage errors exit 2,
    which bgtool reserves for "changes found", so they exit 3 here)."""
    # Imported here, not at the top: a module that fails to import must still be reported by main().
    from bgtool.aws.errors import explain, is_aws_failure
    from bgtool.cli.common import current_target
    from bgtool.terraform.runner import TerraformError

    rerun = _rerun(args)
    if isinstance(exc, typer.TyperException):
        usage = exc.exit_code == 2
        return Failure(exc.format_message(), "See 'bgtool --help' and 'bgtool COMMAND --help'." if usage else None,
                       "usage" if usage else "error", 3 if usage else 1)
    if isinstance(exc, typer.Abort):
        return Failure("aborted; nothing more was done", None, "aborted")
    if isinstance(exc, TerraformError):
        return _terraform_failure(exc, rerun)
    if isinstance(exc, BgtoolError):
        details = dict(getattr(exc, "details", {}))
        terraform = next((c for c in _causes(exc) if isinstance(c, TerraformError)), None)
        if terraform is not None:  # e.g. an apply that failed in one layer: its message lists the layers
            inner = _terraform_failure(terraform, rerun)
            hint = f"{_lock_advice()}. {exc.hint}" if inner.kind == "terraform-lock" else exc.hint
            return Failure(exc.message, hint, inner.kind, exc.exit_code, {**inner.details, **details})
        aws = next((c for c in _causes(exc) if is_aws_failure(c)), None)
        if aws is not None and not isinstance(aws, BgtoolError):  # the message is bgtool's; kind and where: AWS's
            explained = explain(aws, current_target(), rerun)
            return Failure(exc.message, exc.hint, explained.kind, exc.exit_code, {**explained.details, **details})
        return Failure(exc.message, exc.hint, _kind(exc), exc.exit_code, details)
    if is_aws_failure(exc):
        return failure_of(explain(exc, current_target(), rerun), args)
    return _unexpected(exc, rerun)


def _causes(exc: BaseException) -> list[BaseException]:
    """What EXC was raised from, innermost last (explicit causes only: context is often unrelated)."""
    found: list[BaseException] = []
    while exc.__cause__ is not None and exc.__cause__ not in found:
        exc = exc.__cause__
        found.append(exc)
    return found


def _kind(exc: BgtoolError) -> str:
    from bgtool.records.lock import LockHeld

    if isinstance(exc, ConfigError):
        return "config"
    if isinstance(exc, LockHeld):
        return "locked"
    return str(getattr(exc, "kind", "error"))


def _terraform_failure(exc: TerraformError, rerun: str) -> Failure:
    """Terraform's diagnostics stay as they are (they name file, line and resource); the lead line says what
    failed where and the likely cause, and the hint the command that recovers."""
    from bgtool.cli.common import current_target
    from bgtool.terraform.statelocks import lock_conflict

    details: dict[str, Any] = {"layer": exc.layer, "command": f"terraform {exc.command}",
                               "failed_resources": exc.failed_resources,
                               "diagnostics": [d.render() for d in exc.diagnostics if d.severity == "error"]}
    target = current_target()
    where = f" against {target.describe()}" if target else ""
    holder = lock_conflict(exc.diagnostics)
    if holder is not None:
        details["lock"] = holder
        head = (f"terraform {exc.command} of layer '{exc.layer}' could not take the state lock: held by "
                f"{holder.get('Operation', '?').removeprefix('OperationType').lower() or 'an operation'} of "
                f"{holder.get('Who', '?')} since {holder.get('Created', '?')} (lock ID {holder.get('ID', '?')})")
        return Failure(head, f"{_lock_advice()}; then run '{rerun}' again.", "terraform-lock", 1, details)
    cause, fix = _terraform_cause(str(exc))
    details["likely_cause"] = cause
    head = f"terraform {exc.command} failed in layer '{exc.layer}'{where} (likely cause: {cause})"
    body = exc.message.split("\n", 1)[1] if "\n" in exc.message else ""
    return Failure(f"{head}\n{body}".rstrip(), f"{fix}, then run '{rerun}' again.", "terraform", 1, details)


def _lock_advice() -> str:
    from bgtool.cli.common import current_env

    return (f"If that run is still going, wait for it; if it crashed, 'bgtool unlock {current_env() or 'ENV'}' "
            "shows and clears the lock")


_TERRAFORM_CAUSES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (PROVIDER_INSTALL_FAILURES,
     "Terraform cannot install the AWS provider (no way to the registry, or a mirror without it)",
     "Point Terraform at a provider mirror: BGTOOL_PROVIDER_MIRROR or terraform.provider_mirror in the "
     "environment file (without either, bgtool looks in the conventional places named above)"),
    (("no valid credential sources", "expiredtoken", "security token included in the request is expired",
      "invalidclienttokenid", "failed to refresh cached credentials", "no ec2 imds role found"),
     "AWS credentials missing or expired", "Refresh the AWS credentials (profile, SSO login or CI role)"),
    (("connection refused", "no such host", "i/o timeout", "dial tcp", "connection reset", "tls handshake timeout"),
     "the AWS endpoint is unreachable", "Check that the endpoint answers ('bgtool local status' for the embedded "
     "AWS) and the network path to it"),
    (("accessdenied", "not authorized to perform", "unauthorizedoperation"),
     "the identity in use lacks a permission", "Use a role or profile with the permission named above"),
    (("throttling", "rate exceeded", "requestlimitexceeded", "toomanyrequests"),
     "AWS throttled the requests", "Wait a minute"),
)


def _terraform_cause(text: str) -> tuple[str, str]:
    lowered = text.lower()
    for needles, cause, fix in _TERRAFORM_CAUSES:
        if any(n in lowered for n in needles):
            return cause, fix
    return "see Terraform's diagnostics below", "Fix what the diagnostics name"


def _unexpected(exc: Exception, rerun: str) -> Failure:
    """A bug: one line for the user, the whole traceback in a log file for the report."""
    log = _write_traceback(exc)
    where = f"; full traceback in {log}" if log else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return Failure(f"unexpected error: {type(exc).__name__}{': ' + text if text else ''}{where}",
                   f"This is a bug in bgtool, please report it with that file. 'bgtool status {_env_or_placeholder()}' "
                   f"shows what state things are in; then run '{rerun}' again.", "internal", 1,
                   {"exception": type(exc).__name__, "log": str(log) if log else None})


def _env_or_placeholder() -> str:
    try:
        from bgtool.cli.common import current_env

        return current_env() or "ENV"
    except Exception:  # the failure may be that very import
        return "ENV"


def _write_traceback(exc: Exception) -> Path | None:
    from bgtool.config.project import find_root, state_dir

    try:
        directory = state_dir(find_root()) / "logs"
    except (BgtoolError, OSError):
        directory = Path(tempfile.gettempdir()) / "bgtool-logs"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"error-{stamp}-{os.getpid()}.log"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return None
    return path


def _fail(failure: Failure, *, printed: bool = False) -> int:
    ui.close_live()  # the panel's last frame, then the error under it
    ui.discard_json()
    if not printed:
        _report(failure)
    if ui.json_mode():
        ui.write_json(failure.to_dict())
    return failure.exit_code


def _report(failure: Failure) -> None:
    """A one-line message gets its hint on the same line: one clear line per failure."""
    if failure.hint and "\n" not in failure.message:
        ui.console.print(Text("error: ", style="bold red") + Text(f"{failure.message.rstrip('.')}. ")
                         + Text(failure.hint, style="yellow"), soft_wrap=True)
        return
    ui.console.print(Text("error: ", style="bold red") + Text(failure.message), soft_wrap=True)
    if failure.hint:
        ui.console.print(Text(failure.hint, style="yellow"), soft_wrap=True)
