"""modules/iam applied with the real terraform and AWS provider against the embedded AWS.

The roles are read back through the IAM API: what GitHub's OIDC token must say to assume each of
them is in AWS's copy of the trust policy, not only in the module's source.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from bgtool.config.schema import load_environment
from bgtool.iam.policy import ROLES, policy
from bgtool.terraform.cliconfig import resolve_mirror, write_cli_config
from tests.helpers import REPO
from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

REPOSITORY = "acme/shop-infra"
PREFIX = "bgtool-modtest"
OIDC = "token.actions.githubusercontent.com"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bgtool", "AWS_SECRET_ACCESS_KEY": "bgtool", "AWS_REGION": "us-east-1"}


def root_module(endpoint: str, policies: dict[str, str]) -> str:
    """A root module as a team would write it: the module, the policies bgtool generates."""
    documents = "\n".join(f"    {role} = {json.dumps(text)}" for role, text in policies.items())
    return f"""
provider "aws" {{
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  endpoints {{
    iam = "{endpoint}"
    sts = "{endpoint}"
  }}
}}

module "roles" {{
  source = "{REPO / 'modules' / 'iam'}"

  github_repository  = "{REPOSITORY}"
  name_prefix        = "{PREFIX}"
  drift_branches     = ["main", "release"]
  apply_environments = ["production", "staging"]
  policies = {{
{documents}
  }}
}}

output "role_arns" {{
  value = module.roles.role_arns
}}
"""


def terraform(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("terraform")
    assert binary, "terraform is not on PATH"
    rc = write_cli_config(workdir / ".cli", resolve_mirror(None))
    env = {**os.environ, **CREDENTIALS, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1",
           "CHECKPOINT_DISABLE": "1", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run([binary, *args], cwd=workdir, env=env, text=True, capture_output=True,
                          timeout=600, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"terraform {' '.join(args)}:\n{done.stderr}\n{done.stdout}"
    return done


def values(condition: dict[str, Any], key: str) -> list[str]:
    """IAM gives a single value as a string, several as a list."""
    value = condition["StringEquals"][key]
    return sorted([value] if isinstance(value, str) else value)


@pytest.fixture(scope="module")
def applied_roles(project: Project, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("iam-module")
    config = load_environment(project.root, "local", endpoint_override=project.endpoint).config
    policies = {role: json.dumps(policy("local", config, role)) for role in ROLES}
    (workdir / "main.tf").write_text(root_module(project.endpoint, policies))
    terraform(workdir, "init", "-input=false", "-no-color")
    terraform(workdir, "apply", "-auto-approve", "-input=false", "-no-color")
    arns = json.loads(terraform(workdir, "output", "-json", "role_arns").stdout)
    iam = boto3.client("iam", endpoint_url=project.endpoint, region_name="us-east-1",
                       aws_access_key_id="bgtool", aws_secret_access_key="bgtool")
    return {"arns": arns, "iam": iam, "policies": policies}


def trust(applied_roles: dict[str, Any], role: str) -> dict[str, Any]:
    document = applied_roles["iam"].get_role(RoleName=f"{PREFIX}-{role}")["Role"]["AssumeRolePolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document


def test_three_roles_with_their_arns(applied_roles: dict[str, Any]) -> None:
    assert sorted(applied_roles["arns"]) == sorted(ROLES)
    for role, arn in applied_roles["arns"].items():
        assert arn.endswith(f":role/{PREFIX}-{role}")


@pytest.mark.parametrize(("role", "subjects"), [
    ("plan", [f"repo:{REPOSITORY}:pull_request"]),
    ("drift", [f"repo:{REPOSITORY}:ref:refs/heads/main", f"repo:{REPOSITORY}:ref:refs/heads/release"]),
    ("apply", [f"repo:{REPOSITORY}:environment:production", f"repo:{REPOSITORY}:environment:staging"]),
])
def test_trust_policy_names_the_repository_and_branch_or_environment(
        applied_roles: dict[str, Any], role: str, subjects: list[str]) -> None:
    (statement,) = trust(applied_roles, role)["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    provider = statement["Principal"]["Federated"]
    assert provider.endswith(f":oidc-provider/{OIDC}")
    assert values(statement["Condition"], f"{OIDC}:sub") == sorted(subjects)
    assert values(statement["Condition"], f"{OIDC}:aud") == ["sts.amazonaws.com"]
    # The provider the trust names is the one the module created.
    found = [p["Arn"] for p in applied_roles["iam"].list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    assert provider in found


def test_each_role_carries_the_policy_bgtool_generates(applied_roles: dict[str, Any]) -> None:
    iam = applied_roles["iam"]
    for role in ROLES:
        got = iam.get_role_policy(RoleName=f"{PREFIX}-{role}", PolicyName=f"bgtool-{role}")["PolicyDocument"]
        got = json.loads(got) if isinstance(got, str) else got
        assert got == json.loads(applied_roles["policies"][role])
