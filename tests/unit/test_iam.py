"""Pipeline role policies: writes only on the environment's own resources, no wildcard writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bgtool.cli.app import main
from bgtool.config.schema import load_environment
from bgtool.iam.policy import ROLES, policy, wildcard_writes
from tests.helpers import REPO

EXAMPLES = ("local", "staging", "prod")
WRITE_VERBS = ("Create", "Delete", "Modify", "Put", "Update", "Set", "Add", "Remove", "Attach", "Detach",
               "Authorize", "Revoke", "Run", "Allocate", "Release", "Associate", "Disassociate", "Replace",
               "Tag", "Untag", "Register", "Deregister")


def config(env: str):
    return load_environment(REPO, env).config


def actions(document: dict) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


def writes(document: dict) -> dict[str, list[str]]:
    """action -> resources, for every action that changes something."""
    out: dict[str, list[str]] = {}
    for statement in document["Statement"]:
        for action in statement["Action"]:
            if action.split(":")[1].startswith(WRITE_VERBS):
                out.setdefault(action, []).extend(statement["Resource"])
    return out


@pytest.mark.parametrize("env", EXAMPLES)
@pytest.mark.parametrize("role", ROLES)
def test_no_wildcard_action_on_writes(env: str, role: str) -> None:
    document = policy(env, config(env), role)
    assert document["Version"] == "2012-10-17"
    assert wildcard_writes(document) == []
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Action"] and statement["Resource"]
        assert all(a.count(":") == 1 and a != "*" for a in statement["Action"])


def test_wildcard_writes_are_detected() -> None:
    document = {"Statement": [{"Action": ["ec2:Describe*", "s3:Put*", "elasticloadbalancing:*", "s3:GetObject"]}]}
    assert wildcard_writes(document) == ["s3:Put*", "elasticloadbalancing:*"]


@pytest.mark.parametrize("env", EXAMPLES)
@pytest.mark.parametrize("role", ["plan", "drift"])
def test_plan_and_drift_change_nothing_but_state_locks(env: str, role: str) -> None:
    cfg = config(env)
    changed = writes(policy(env, cfg, role))
    assert set(changed) <= {"dynamodb:PutItem", "dynamodb:DeleteItem"}, "plan/drift only take Terraform's lock"
    assert "elasticloadbalancing:ModifyListener" not in actions(policy(env, cfg, role))
    assert "autoscaling:UpdateAutoScalingGroup" not in actions(policy(env, cfg, role))
    objects = next(s for s in policy(env, cfg, role)["Statement"] if s["Sid"] == "StateAndHistoryObjects")
    assert objects["Action"] == ["s3:GetObject"]


@pytest.mark.parametrize("env", EXAMPLES)
def test_apply_writes_are_scoped_to_the_environment(env: str) -> None:
    cfg = config(env)
    changed = writes(policy(env, cfg, "apply"))
    assert {"elasticloadbalancing:ModifyListener", "autoscaling:UpdateAutoScalingGroup",
            "cloudwatch:PutMetricAlarm", "s3:PutObject", "ec2:CreateLaunchTemplate"} <= set(changed)
    for action, resources in changed.items():
        for resource in resources:
            scoped = (
                cfg.name in resource
                or (cfg.state.bucket and cfg.state.bucket in resource)
                or (cfg.state.lock_table and resource.endswith(f"table/{cfg.state.lock_table}"))
                or resource.startswith(f"arn:aws:ec2:{cfg.aws.region}:")
                or ":role/aws-service-role/" in resource
            )
            assert scoped, f"{action} on {resource} is not scoped to {env}"
    listener = policy(env, cfg, "apply")
    statement = next(s for s in listener["Statement"] if "elasticloadbalancing:ModifyListener" in s["Action"])
    assert f"arn:aws:elasticloadbalancing:{cfg.aws.region}:*:listener/app/{cfg.name}/*" in statement["Resource"]


def test_ec2_writes_need_the_environment_tag() -> None:
    document = policy("prod", config("prod"), "apply")
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["CreateTaggedNetworkAndTemplates"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/bgtool:env": "prod"}}
    assert by_sid["ChangeOwnNetworkAndTemplates"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/bgtool:env": "prod"}}
    assert "ec2:DeleteVpc" in by_sid["ChangeOwnNetworkAndTemplates"]["Action"]


def test_state_and_locks_of_this_environment_only() -> None:
    cfg = config("prod")
    statements = {s["Sid"]: s for s in policy("prod", cfg, "apply")["Statement"]}
    assert statements["StateAndHistoryObjects"]["Resource"] == [f"arn:aws:s3:::{cfg.state.bucket}/bgtool/prod/*"]
    keys = statements["LockItems"]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert keys == [f"{cfg.state.bucket}/bgtool/prod/*", "bgtool-operation/bgtool/prod"]


def test_access_log_bucket_only_when_access_logs_are_on() -> None:
    assert "s3:PutBucketPolicy" in actions(policy("prod", config("prod"), "apply"))
    assert "s3:PutBucketPolicy" not in actions(policy("local", config("local"), "apply"))


def test_account_is_a_wildcard_unless_given() -> None:
    text = json.dumps(policy("prod", config("prod"), "apply"))
    assert "123456789012" not in text and ":*:" in text
    given = json.dumps(policy("prod", config("prod"), "apply", account="210987654321"))
    assert "arn:aws:dynamodb:eu-west-1:210987654321:table/acme-terraform-locks" in given


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        policy("prod", config("prod"), "admin")  # type: ignore[arg-type]


def test_cli_prints_one_role_as_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BGTOOL_ROOT", str(REPO))
    assert main(["iam", "prod", "--role", "drift", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["env"] == "prod" and list(document["roles"]) == ["drift"]
    assert document["roles"]["drift"]["policy"] == policy("prod", config("prod"), "drift")


def test_cli_refuses_an_unknown_role(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BGTOOL_ROOT", str(REPO))
    assert main(["iam", "prod", "--role", "admin", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and "admin" in json.dumps(document)


def test_iam_module_trusts_the_repository_per_role() -> None:
    main_tf = (Path(REPO) / "modules" / "iam" / "main.tf").read_text()
    assert 'plan  = ["repo:${var.github_repository}:pull_request"]' in main_tf
    assert "refs/heads/${b}" in main_tf and "environment:${e}" in main_tf
    assert "token.actions.githubusercontent.com" in main_tf
