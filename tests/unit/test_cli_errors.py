"""The CLI's one error policy, driven in-process through main(argv).

Each failure kind is raised where a command really meets it (an AWS read of `status`), by a fake or
by botocore itself, and the user must see one clear line, exit 1 (3 for usage), never a traceback,
and with --json exactly one document {"ok": false, "error": {...}} on stdout.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ProfileNotFound

from bgtool.cli.app import main
from bgtool.errors import BgtoolError
from bgtool.records.lock import OperationLock
from bgtool.terraform.events import Diagnostic
from bgtool.terraform.runner import TerraformError
from tests.helpers import copy_project

ENDPOINT = "http://127.0.0.1:1"

# What Terraform 1.11 printed for a lock held by a killed `terraform apply` (captured from a real run).
LOCK_DETAIL = """Error message: ConditionalCheckFailedException: The conditional request failed
Lock Info:
  ID:        39ee4018-412a-750d-4d6c-4656033b4994
  Path:      bgtool-local-state/bgtool/local/base.tfstate
  Operation: OperationTypeApply
  Who:       ci@runner-7
  Version:   1.11.4
  Created:   2026-11-26 16:32:08.525338451 +0000 UTC
  Info:


Terraform acquires a state lock to protect the state from being written
by multiple users at the same time."""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project")
    monkeypatch.setenv("BGTOOL_ROOT", str(root))
    monkeypatch.setenv("BGTOOL_AWS_ENDPOINT", ENDPOINT)
    return root


def failing_status(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """`status` reads the operation lock from AWS first: that read fails with EXC."""

    def current(self: OperationLock) -> None:
        raise exc

    monkeypatch.setattr(OperationLock, "current", current)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_failure(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert "Traceback" not in err and "Traceback" not in out
    doc = json.loads(out)  # exactly one document, nothing else on stdout
    assert doc["ok"] is False and code == doc["error"]["exit_code"]
    return doc["error"]


def client_error(code: str, message: str, status: int = 400, operation: str = "GetItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "req-1"}}, operation)


AWS_CASES: list[tuple[str, Callable[[], BaseException], str, str]] = [
    ("expired token", lambda: client_error("ExpiredTokenException", "The security token included in the "
                                           "request is expired"), "aws-credentials", "expired or invalid"),
    ("throttling", lambda: client_error("ThrottlingException", "Rate exceeded"), "aws-throttling", "throttling"),
    ("access denied", lambda: client_error(
        "AccessDeniedException", "User: arn:aws:sts::210987654321:assumed-role/ci/x is not authorized to perform: "
        "dynamodb:GetItem"), "aws-permission", "may not call GetItem"),
    ("server error", lambda: client_error("InternalFailure", "boom", status=500), "aws-service", "embedded AWS"),
    ("no credentials", NoCredentialsError, "aws-credentials", "no usable AWS credentials"),
    ("unreachable", lambda: EndpointConnectionError(endpoint_url=ENDPOINT), "network", "not running"),
    ("connection reset", lambda: ConnectionResetError(104, "Connection reset by peer"), "network", "not running"),
]


@pytest.mark.parametrize(("name", "make", "kind", "cause"), AWS_CASES, ids=[c[0] for c in AWS_CASES])
def test_aws_failures_are_one_line_with_where_why_and_recovery(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    name: str, make: Callable[[], BaseException], kind: str, cause: str,
) -> None:
    failing_status(monkeypatch, make())
    error = json_failure(capsys, "status", "local")
    assert error["kind"] == kind
    assert cause in error["message"]
    assert f"the embedded AWS at {ENDPOINT} (region us-east-1)" in error["message"]
    assert error["hint"].endswith("then run 'bgtool status local --json' again.")
    assert error["region"] == "us-east-1" and error["endpoint"]

    code, out, err = run(capsys, "status", "local")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one clear line: what, where, why, how to recover
    assert lines[0].startswith("error: ") and "bgtool status local" in lines[0]


def test_the_account_is_named_when_aws_names_it(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    failing_status(monkeypatch, client_error("AccessDenied", "arn:aws:iam::210987654321:role/ci is not authorized"))
    error = json_failure(capsys, "status", "local")
    assert error["account"] == "210987654321" and "account 210987654321" in error["message"]
    assert error["code"] == "AccessDenied" and error["request_id"] == "req-1"


def test_no_secret_reaches_the_report(project: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    failing_status(monkeypatch, client_error("InvalidClientTokenId", "The security token is invalid"))
    code, out, err = run(capsys, "status", "local", "--json")
    assert code == 1
    for secret in ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", "bgtool:bgtool"):
        assert secret not in out + err


def test_missing_profile_of_a_real_account(project: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Real botocore, no network: the profile named in the file does not exist on this machine."""
    env = project / "environments/staging.yaml"
    env.write_text(env.read_text().replace("  region: eu-west-1\n", "  region: eu-west-1\n  profile: nosuch\n", 1))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project / "no-credentials"))
    error = json_failure(capsys, "status", "staging")
    assert error["kind"] == "aws-credentials" and error["exception"] == ProfileNotFound.__name__
    assert "AWS region eu-west-1, profile nosuch" in error["message"]
    assert "aws sso login --profile nosuch" not in error["hint"]  # the profile is missing, not expired
    assert "'nosuch' is not configured" in error["message"]


def test_no_credentials_for_a_real_account(project: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Real botocore: the credential chain finds nothing (no env keys, files, profile or metadata service)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    error = json_failure(capsys, "status", "staging")
    assert error["kind"] == "aws-credentials" and error["exception"] == "NoCredentialsError"
    assert "AWS region eu-west-1, default credentials" in error["message"]


def test_unreachable_embedded_aws_for_real(project: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Real botocore against a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("BGTOOL_AWS_ENDPOINT", f"http://127.0.0.1:{port}")
    error = json_failure(capsys, "status", "local")
    assert error["kind"] == "network" and error["exception"] == "EndpointConnectionError"
    assert f"127.0.0.1:{port}" in error["endpoint"]
    assert "bgtool local up" in error["hint"]


def test_terraform_lock_conflict_points_at_unlock(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    diagnostic = Diagnostic("error", "Error acquiring the state lock", LOCK_DETAIL)
    failing_status(monkeypatch, TerraformError("base", "plan", [diagnostic]))
    error = json_failure(capsys, "status", "local")
    assert error["kind"] == "terraform-lock"
    assert "apply of ci@runner-7" in error["message"] and "39ee4018-412a-750d-4d6c-4656033b4994" in error["message"]
    assert "'bgtool unlock local'" in error["hint"]
    assert error["lock"]["Who"] == "ci@runner-7" and error["layer"] == "base"


def test_a_failed_apply_caused_by_a_lock_keeps_its_layer_report(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cause = TerraformError("green", "apply", [Diagnostic("error", "Error acquiring the state lock", LOCK_DETAIL)])
    wrapped = BgtoolError("layers up to date: base; failed: green", hint="Then run 'bgtool apply local' again.")
    wrapped.__cause__ = cause
    failing_status(monkeypatch, wrapped)
    error = json_failure(capsys, "status", "local")
    assert error["kind"] == "terraform-lock" and error["message"].startswith("layers up to date: base")
    assert "'bgtool unlock local'" in error["hint"] and "bgtool apply local" in error["hint"]


def test_terraform_network_failure_names_the_cause(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    diagnostic = Diagnostic("error", "reading ELBv2 Load Balancer",
                            'dial tcp 127.0.0.1:1: connect: connection refused', address="aws_lb.this")
    failing_status(monkeypatch, TerraformError("base", "apply", [diagnostic], failed=["aws_lb.this"]))
    error = json_failure(capsys, "status", "local")
    assert error["kind"] == "terraform" and "the AWS endpoint is unreachable" in error["message"]
    assert "layer 'base'" in error["message"] and error["failed_resources"] == ["aws_lb.this"]
    assert "connection refused" in error["message"]  # Terraform's own diagnostic is kept


def test_unexpected_exception_is_one_line_and_a_log_file(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    failing_status(monkeypatch, KeyError("colors"))
    code, out, err = run(capsys, "status", "local")
    assert code == 1 and out == ""
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "unexpected error: KeyError: 'colors'" in err and "'bgtool status local' shows" in err
    logs = list((project / ".bgtool" / "logs").glob("error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    assert "Traceback" in logs[0].read_text() and "KeyError" in logs[0].read_text()

    failing_status(monkeypatch, RuntimeError("again"))
    error = json_failure(capsys, "status", "local")
    assert error["kind"] == "internal" and error["log"] and Path(error["log"]).exists()


def test_bgtool_error_keeps_message_and_hint(project: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    failing_status(monkeypatch, BgtoolError("the thing is broken", hint="Run 'bgtool fix local'."))
    error = json_failure(capsys, "status", "local")
    assert error == {"message": "the thing is broken", "hint": "Run 'bgtool fix local'.", "kind": "error",
                     "exit_code": 1}


def test_abort_exits_1(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    failing_status(monkeypatch, typer.Abort())
    error = json_failure(capsys, "status", "local")
    assert error["kind"] == "aborted" and error["exit_code"] == 1


def test_invalid_environment_file_is_a_config_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = project / "environments/local.yaml"
    env.write_text(env.read_text().replace("active_color: blue", "active_color: purple", 1))
    error = json_failure(capsys, "status", "local")
    assert error["kind"] == "config" and "active_color" in error["message"]


@pytest.mark.parametrize("argv", [["status"], ["status", "local", "--bogus"], ["nosuchcommand"],
                                  ["switch", "local", "--bake", "soon"]])
def test_usage_errors_exit_3(project: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 3 and out == ""
    assert "Usage: bgtool" in err and "Traceback" not in err
    error = json_failure(capsys, *argv)
    assert error["kind"] == "usage" and error["exit_code"] == 3


def test_success_documents_say_ok(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "history", "nosuchenv", "--json")
    assert code == 1 and json.loads(out)["ok"] is False  # no such environment: a config error
    code, out, _ = run(capsys, "render", "local", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and set(doc["layers"]) == {"base", "blue", "green", "traffic"}


def test_a_failing_command_with_a_document_says_not_ok(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`local status` prints its document and exits 1 when the embedded AWS does not run."""
    code, out, _ = run(capsys, "local", "status", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False and doc["running"] is False


def test_a_failure_after_the_document_was_handed_over_replaces_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """One document on stdout, even when a command fails after handing over its result."""
    from bgtool.cli import operate, ui

    def print_status(doc: object) -> None:
        ui.emit_json({"env": "local", "half": "done"})
        raise BgtoolError("rendering failed")

    monkeypatch.setattr(operate, "read_live", lambda *a, **k: None)
    monkeypatch.setattr(operate, "dashboard_exists", lambda *a, **k: True)
    monkeypatch.setattr(operate, "build_status", lambda *a, **k: {"env": "local"})
    monkeypatch.setattr(operate, "last_switch", lambda *a, **k: None)
    monkeypatch.setattr(OperationLock, "current", lambda self: None)
    monkeypatch.setattr(operate, "print_status", print_status)
    error = json_failure(capsys, "status", "local")
    assert error["message"] == "rendering failed"

    monkeypatch.setattr(operate, "print_status", lambda doc: None)
    code, out, _ = run(capsys, "status", "local", "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "env": "local"}


def test_a_provider_that_cannot_be_downloaded_points_at_the_mirror(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Terraform's own words on a machine without internet; "dial tcp" in them is not the AWS endpoint."""
    detail = ('Could not retrieve the list of available versions for provider hashicorp/aws: could not connect to '
              'registry.terraform.io: failed to request discovery document: Get "https://registry.terraform.io/'
              '.well-known/terraform.json": dial tcp: lookup registry.terraform.io: no such host')
    diagnostic = Diagnostic("error", "Failed to query available provider packages", detail)
    failing_status(monkeypatch, TerraformError("base", "init", [diagnostic]))
    error = json_failure(capsys, "status", "local")
    assert "cannot install the AWS provider" in error["message"]
    assert "endpoint is unreachable" not in error["message"]
    assert "BGTOOL_PROVIDER_MIRROR" in error["hint"] and "terraform.provider_mirror" in error["hint"]
