"""No credential or account id in what bgtool writes; hostile file values cannot reach a shell."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from bgtool.cli.app import main
from bgtool.config.schema import load_environment
from bgtool.errors import ConfigError
from bgtool.render.templates import render_environment
from tests.helpers import REPO, copy_project, edit_yaml

EXAMPLES = ("local", "staging", "prod")
ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b")
ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
SECRET_WORDS = re.compile(r"(aws_secret_access_key|secret_key|access_key|session_token|PRIVATE KEY)", re.I)


def rendered_files(root: Path) -> dict[Path, str]:
    for env in EXAMPLES:
        render_environment(root, load_environment(root, env))
    return {p: p.read_text() for p in (root / "build").rglob("*") if p.is_file()}


def test_rendered_files_hold_no_credential_or_foreign_account(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    files = rendered_files(root)
    assert len(files) >= 4 * len(EXAMPLES) * 6
    allowed_accounts = set()
    for env in EXAMPLES:  # an ARN the file itself gives (the certificate) is the user's choice
        allowed_accounts |= set(ACCOUNT_ID.findall((root / f"environments/{env}.yaml").read_text()))
    for path, text in files.items():
        assert not ACCESS_KEY_ID.search(text), f"{path} holds an access key id"
        assert not SECRET_WORDS.search(text), f"{path} names a credential"
        assert set(ACCOUNT_ID.findall(text)) <= allowed_accounts, f"{path} holds an account id"


def test_iam_json_output_holds_no_account_id(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    monkeypatch.setenv("BGTOOL_ROOT", str(root))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    for env in EXAMPLES:
        assert main(["iam", env, "--json"]) == 0
        out = capsys.readouterr()
        document = json.loads(out.out)
        text = out.out + out.err
        assert "AKIAIOSFODNN7EXAMPLE" not in text and "EXAMPLEKEY" not in text
        assert not ACCOUNT_ID.search(json.dumps(document)), f"{env}: an account id in the policies"


def test_render_json_output_holds_no_credentials(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    monkeypatch.setenv("BGTOOL_ROOT", str(root))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert main(["render", "local", "--json"]) == 0
    out = capsys.readouterr()
    assert "EXAMPLEKEY" not in out.out + out.err and not ACCESS_KEY_ID.search(out.out + out.err)


HOSTILE_PATHS = [
    "/$(touch${IFS}PWNED)",
    "/`touch${IFS}PWNED`",
    "/';touch${IFS}PWNED;'",
    '/";touch${IFS}PWNED;"',
    "/x;touch${IFS}PWNED",
]


@pytest.mark.parametrize("hostile", HOSTILE_PATHS)
def test_hostile_health_check_path_stays_data_in_user_data(tmp_path: Path, hostile: str) -> None:
    """The user data's one line built from the file is run by bash: the value arrives verbatim and
    nothing is executed."""
    root = copy_project(tmp_path / "project")
    edit_yaml(root / "environments/local.yaml", "health_check_path: /health",
              f"health_check_path: {json.dumps(hostile)}")
    loaded = load_environment(root, "local")
    assert loaded.config.app.health_check_path == hostile
    dirs = render_environment(root, loaded)
    main_tf = (dirs["blue"] / "main.tf").read_text()
    line = next(x for x in main_tf.splitlines() if x.startswith("health_path="))
    line = line.replace("$${", "${")  # HCL's escape of a literal "${", as Terraform hands it over
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    done = subprocess.run(["bash", "-c", f'{line}\nprintf "%s" "$health_path"'], cwd=sandbox,
                          capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == hostile
    assert not (sandbox / "PWNED").exists() and list(sandbox.iterdir()) == []


@pytest.mark.parametrize(("key", "value"), [
    ("ssh_user", "ec2-user;touch PWNED"),
    ("ssh_user", "root@evil,ssh://x"),
    ("ssh_user", "$(id)"),
    ("ssh_key", "keys/id;rm -rf ~"),
    ("ssh_key", "keys/$(id).pem"),
])
def test_host_check_values_that_reach_a_shell_are_refused(tmp_path: Path, key: str, value: str) -> None:
    root = copy_project(tmp_path)
    path = root / "environments/prod.yaml"
    if key == "ssh_user":
        edit_yaml(path, "ssh_user: ec2-user", f"ssh_user: {json.dumps(value)}")
    else:
        edit_yaml(path, "ssh_user: ec2-user", f"ssh_user: ec2-user\n    ssh_key: {json.dumps(value)}")
    with pytest.raises(ConfigError) as refused:
        load_environment(root, "prod")
    assert f"gate.host_checks.{key}" in str(refused.value)


def test_bootstrapped_state_backend_is_versioned_encrypted_private_and_recoverable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    from bgtool.terraform.backend import ensure_backend

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = load_environment(REPO, "local").config

    class Clients:
        def client(self, service: str):
            return boto3.client(service, region_name=config.aws.region)

    with moto.mock_aws():
        assert ensure_backend(config, Clients()) == [f"s3 bucket {config.state.bucket}",
                                                     f"dynamodb table {config.state.lock_table}"]
        s3, ddb = boto3.client("s3", region_name="us-east-1"), boto3.client("dynamodb", region_name="us-east-1")
        assert s3.get_bucket_versioning(Bucket=config.state.bucket)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=config.state.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=config.state.bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        backups = ddb.describe_continuous_backups(TableName=config.state.lock_table)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
