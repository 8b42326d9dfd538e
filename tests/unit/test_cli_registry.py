"""A command imports only the module that registers it: the table that says which one must be right."""

from __future__ import annotations

import json
import subprocess
import sys

from bgtool.cli.app import COMMAND_MODULE, COMMAND_MODULES, app, main

LIST = """
import importlib, json
from bgtool.cli.app import app
importlib.import_module("bgtool.cli.{module}")
print(json.dumps(sorted({{c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}}
                        | {{g.name or g.typer_instance.info.name for g in app.registered_groups}})))
"""


def registered_by(module: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", LIST.format(module=module)], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_each_command_is_registered_by_the_module_the_table_names() -> None:
    for command, module in COMMAND_MODULE.items():
        assert command in registered_by(module), f"bgtool.cli.{module} does not register {command!r}"


def test_every_command_is_in_the_table() -> None:
    main(["--help"])  # imports every module
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}  # type: ignore[union-attr]
    names |= {g.name or g.typer_instance.info.name for g in app.registered_groups}  # type: ignore[union-attr]
    assert names == set(COMMAND_MODULE), names ^ set(COMMAND_MODULE)
    assert set(COMMAND_MODULE.values()) <= set(COMMAND_MODULES)
