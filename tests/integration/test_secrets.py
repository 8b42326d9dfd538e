"""No credential in anything bgtool writes or prints, run end to end against the embedded AWS.

bgtool runs with distinctive fake credentials: in the process environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and in the named profile the environment uses, so every
request boto3 and Terraform send carries them (moto accepts any). The commands cover everything
bgtool writes: rendered Terraform and its init files (apply), local state and a history record
(deploy), an error log (a command that fails unexpectedly) and --json documents. Then every file
under the project's .bgtool/ and build/ENV/, and every captured stdout/stderr, is searched for them.

The account id (moto's 123456789012) is not in the rendered files, the history, the logs or these
--json documents either. It does appear in Terraform state and saved plans (ARNs), which are AWS's
record of the account's resources, and in the embedded data plane's own configuration.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import edit_yaml
from tests.integration.conftest import BGTOOL, Project, add_environment

pytestmark = pytest.mark.integration

ENV = "secrets77"
PROFILE = "bgtool-secrets"
MARKERS = {
    "AWS_ACCESS_KEY_ID": "AKIDENVMARKERQ7X3ZK9",
    "AWS_SECRET_ACCESS_KEY": "envsecretmarker-5b1e9c0f7a2d4e86",
    "AWS_SESSION_TOKEN": "envtokenmarker-c4f8a1d93e7b2065",
}
PROFILE_KEY, PROFILE_SECRET = "AKIDPROFILEMARKER7Q2W", "profilesecretmarker-0e9d8c7b6a5f4e3d"
ALL_MARKERS = (*MARKERS.values(), PROFILE_KEY, PROFILE_SECRET)
MOTO_ACCOUNT = "123456789012"
# Terraform's provider copies (hundreds of MB each, the provider's own bytes) are not bgtool's output.
NOT_WRITTEN_BY_BGTOOL = ("providers",)


@dataclass
class Run:
    """A project whose environment runs with marker credentials; every output kept for the search."""

    project: Project
    credentials: Path
    results: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**self.project.env, **MARKERS, "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials),
                "AWS_CONFIG_FILE": str(self.credentials.with_name("no-aws-config"))}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([BGTOOL, *args], cwd=self.project.root, env=self.env, text=True,
                              capture_output=True, timeout=900, stdin=subprocess.DEVNULL, check=False)
        self.results[" ".join(args)] = done
        return done

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run(*args)
        assert done.returncode == 0, f"bgtool {' '.join(args)} exited {done.returncode}\n{done.stderr}\n{done.stdout}"
        return done


def written_files(root: Path) -> Iterator[Path]:
    """Everything bgtool wrote for the project: its machine-local files and the rendered layers."""
    for top in (root / ".bgtool", root / "build" / ENV):
        for path in top.rglob("*"):
            if path.is_file() and not path.is_symlink() and not set(NOT_WRITTEN_BY_BGTOOL) & set(path.parts):
                yield path


def rendered_files(root: Path) -> list[Path]:
    """The root modules bgtool renders (its Terraform, variable files), without Terraform's own files."""
    return [p for p in (root / "build" / ENV).rglob("*")
            if p.is_file() and ".terraform" not in p.parts and p.suffix in (".tf", ".json")]


def contents(path: Path) -> list[bytes]:
    """The file's bytes; for a saved plan (a zip archive) each member's, which compression hides."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [archive.read(name) for name in archive.namelist()]
    return [path.read_bytes()]


@pytest.fixture(scope="module")
def released(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """apply, deploy (a history record), status/history/plan as --json, and an unexpected failure."""
    add_environment(project, ENV, 77, backend="local")
    edit_yaml(project.root / f"environments/{ENV}.yaml", "  region: us-east-1\n",
              f"  region: us-east-1\n  profile: {PROFILE}\n")
    credentials = tmp_path_factory.mktemp("aws") / "credentials"
    credentials.write_text(f"[{PROFILE}]\naws_access_key_id = {PROFILE_KEY}\n"
                           f"aws_secret_access_key = {PROFILE_SECRET}\n")
    run = Run(project, credentials)
    run.ok("apply", ENV, "--yes", "--json")
    run.ok("deploy", ENV, "1.1.0", "--yes", "--json")
    for command in ("status", "history"):
        run.ok(command, ENV, "--json")
    assert run.run("plan", ENV, "--json").returncode in (0, 2)
    return run


def test_the_deploy_was_recorded(released: Run) -> None:
    """The release ran with the marker credentials and left a history record to search."""
    history = json.loads(released.results[f"history {ENV} --json"].stdout)
    assert history["ok"] is True
    deployed = [r for r in history["records"] if r["operation"] == "deploy"]
    assert deployed and deployed[-1]["result"] == "succeeded", history


def test_an_unexpected_failure_writes_a_log(released: Run) -> None:
    """A history record that is not JSON is a bug's situation: one line, and the traceback in .bgtool/logs/."""
    path = sorted((released.project.root / ".bgtool/history" / ENV).glob("*.json"))[-1]
    kept = path.read_text()
    try:
        path.write_text("{ not json")
        failed = released.run("history", ENV, "--json")
    finally:
        path.write_text(kept)
    assert failed.returncode == 1
    error = json.loads(failed.stdout)["error"]
    assert error["kind"] == "internal" and Path(error["log"]).parent == released.project.root / ".bgtool/logs"
    assert "Traceback" in Path(error["log"]).read_text()


def test_no_credential_in_any_file_or_output(released: Run) -> None:
    files = list(written_files(released.project.root))
    assert any(p.parent.name == "logs" and p.name.startswith("error-") for p in files)
    assert any((released.project.root / ".bgtool/history" / ENV).glob("*.json")), "one file per record"
    assert any(p.name.endswith(".tfstate") for p in files), "the local state is searched too"
    assert any(zipfile.is_zipfile(p) for p in files), "the saved plans are searched too"
    for path in files:
        found = [m for m in ALL_MARKERS for data in contents(path) if m.encode() in data]
        assert not found, f"{path} holds {found}"
    for command, done in released.results.items():
        found = [m for m in ALL_MARKERS if m in done.stdout + done.stderr]
        assert not found, f"the output of bgtool {command} holds {found}"


def test_no_account_id_in_rendered_files(released: Run) -> None:
    rendered = rendered_files(released.project.root)
    assert {p.parent.name for p in rendered} >= {"base", "blue", "green", "traffic"}
    for path in rendered:
        assert MOTO_ACCOUNT not in path.read_text(), f"{path} holds the account id"


def test_no_account_id_in_history_logs_or_json_outputs(released: Run) -> None:
    """What bgtool itself reports names no account. (Terraform's own diagnostics, passed on verbatim in a
    failure's --json, may quote an ARN of the failing resource; drift's documented `listener_arn` is one.)"""
    root = released.project.root
    for path in [*(root / ".bgtool/history").rglob("*"), *(root / ".bgtool/logs").rglob("*")]:
        assert not path.is_file() or MOTO_ACCOUNT not in path.read_text(), f"{path} holds the account id"
    for command, done in released.results.items():
        assert MOTO_ACCOUNT not in done.stdout + done.stderr, f"the output of bgtool {command} holds the account id"
