"""`bgtool iam ENV [--role plan|drift|apply] [--json]`: the IAM policy each pipeline role needs."""

from __future__ import annotations

import json

import typer
from rich.markup import escape

from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.common import ENV, JSON
from bgtool.config.project import find_root
from bgtool.config.schema import load_environment
from bgtool.errors import BgtoolError
from bgtool.iam.policy import ROLE_PURPOSE, ROLES, policy


@app.command()
def iam(
    env: str = ENV,
    role: str | None = typer.Option(None, "--role", "-r", help="plan, drift or apply (default: all three)."),
    account: str | None = typer.Option(
        None, "--account", help="12-digit account ID to put in the ARNs (default: '*', so nothing account-specific)."
    ),
    as_json: bool = JSON,
) -> int:
    """Print the least-privilege IAM policy of the plan, drift and apply roles for ENV.

    Writes are scoped to the environment's resources (its name prefix, its EC2 tag, its state
    objects and lock items); reads that AWS cannot scope are on '*'. Nothing is contacted.
    """
    ui.set_json_mode(as_json)
    if role is not None and role not in ROLES:
        raise BgtoolError(f"--role {role!r} is not a role; allowed: {', '.join(ROLES)}",
                          hint="Omit --role for all three.")
    if account is not None and not (len(account) == 12 and account.isdigit()):
        raise BgtoolError(f"--account {account!r} is not a 12-digit AWS account ID", hint="Omit it to keep '*'.")
    config = load_environment(find_root(), env).config
    chosen = [role] if role else list(ROLES)
    documents = {r: policy(env, config, r, account=account) for r in chosen}  # type: ignore[arg-type]
    for r, document in documents.items():
        ui.console.print(f"[bold]{escape(r)}[/bold] role of {escape(env)}: {escape(ROLE_PURPOSE[r])}")  # type: ignore[index]
        ui.console.print(json.dumps(document, indent=2), markup=False, highlight=False, soft_wrap=True)
    if as_json:
        roles = {r: {"purpose": ROLE_PURPOSE[r], "policy": d} for r, d in documents.items()}  # type: ignore[index]
        ui.emit_json({"env": env, "roles": roles})
    return 0
