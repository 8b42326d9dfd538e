"""Entry point: one typer app, commands registered from one module per area, one error policy.

Exit codes (the contract scripts rely on):
  0  success
  1  failure: invalid input, a failed health gate, a rolled-back switch, a Terraform or AWS error
  2  `plan` found changes / `drift` found drift (like `terraform plan -detailed-exitcode`)
  3  usage error: unknown command or option, missing argument
"""

from __future__ import annotations

import click
import typer
from rich.text import Text

from bgtool.cli import ui
from bgtool.errors import BgtoolError

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


def _register() -> None:
    from bgtool.cli import drift, infra, local, operate, release  # noqa: F401  (register on import)


def main(argv: list[str] | None = None) -> int:
    _register()
    try:
        code = app(args=argv, standalone_mode=False, prog_name="bgtool")
    except click.exceptions.UsageError as exc:
        exc.show()
        return 3
    except click.exceptions.Abort:
        ui.console.print("aborted")
        return 1
    except BgtoolError as exc:
        _report(exc)
        return exc.exit_code
    return code if isinstance(code, int) else 0


def _report(exc: BgtoolError) -> None:
    ui.console.print(Text("error: ", style="bold red") + Text(exc.message), soft_wrap=True)
    if exc.hint:
        ui.console.print(Text(exc.hint, style="yellow"), soft_wrap=True)
    if ui.json_mode():
        ui.emit_json({"ok": False, "error": exc.message, "hint": exc.hint})

