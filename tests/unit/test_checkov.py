"""checkov: every skip is reasoned and listed in the README, and the scan catches a weakened default.

The full scan of every rendered layer of every example environment is `make checkov` (part of
`make lint` and `make test`); here one check runs against a deliberately weakened copy, to show
that the scan would fail if a hardened default were dropped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bgtool.config.schema import TLS_POLICIES, load_environment
from bgtool.render.templates import render_environment
from tests.helpers import REPO, copy_project

SKIP = re.compile(r"#\s*checkov:skip=(CKV2?_AWS_\d+):(.*)$", re.M)
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def module_skips() -> list[tuple[str, str, str]]:
    """(module, check id, reason) for every skip comment in modules/."""
    found = []
    for path in sorted((REPO / "modules").rglob("*.tf")):
        for check, reason in SKIP.findall(path.read_text()):
            found.append((path.parent.name, check, reason.strip()))
    return found


def test_every_skip_has_a_reason() -> None:
    skips = module_skips()
    assert skips, "no skips at all: then this test and the README section should go"
    for module, check, reason in skips:
        assert len(reason) >= 30, f"modules/{module}: the reason for skipping {check} is too short: {reason!r}"


def test_readme_lists_every_skip() -> None:
    readme = (REPO / "README.md").read_text()
    rows = {(m, c) for m, c in re.findall(r"^\|\s*`modules/([\w-]+)`\s*\|\s*`(CKV2?_AWS_\d+)`", readme, re.M)}
    assert rows == {(m, c) for m, c, _ in module_skips()}


def test_tls_policies_agree_between_schema_and_module() -> None:
    variables = (REPO / "modules" / "traffic" / "variables.tf").read_text()
    block = variables[variables.index('variable "tls_policy"'):]
    listed = re.findall(r'"(ELBSecurityPolicy-[^"]+)"', block[: block.index("error_message")])
    assert listed[1:] == list(TLS_POLICIES), "the default first, then the list of the validation"


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is installed by `make venv` into .venv-checkov")
def test_scan_fails_when_imdsv1_is_allowed(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    color = root / "modules" / "color" / "main.tf"
    color.write_text(color.read_text().replace('http_tokens                 = "required"',
                                               'http_tokens                 = "optional"'))
    render_environment(root, load_environment(root, "local"))
    weak = scan(root / "build" / "local" / "green", "CKV_AWS_79")
    assert [r["check_id"] for r in weak["results"]["failed_checks"]] == ["CKV_AWS_79"]
    shutil.copy(REPO / "modules" / "color" / "main.tf", color)
    strong = scan(root / "build" / "local" / "green", "CKV_AWS_79")
    assert strong["results"]["failed_checks"] == [] and strong["summary"]["passed"] >= 1


def scan(directory: Path, check: str) -> dict:
    done = subprocess.run(
        [str(CHECKOV), "--directory", str(directory), "--framework", "terraform", "--check", check,
         "--download-external-modules", "false", "--skip-download", "--quiet", "--output", "json"],
        capture_output=True, text=True, timeout=300, check=False,
        env={"BC_SKIP_MAPPING": "TRUE", "PATH": "/usr/bin:/bin", "HOME": str(directory)},
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)
