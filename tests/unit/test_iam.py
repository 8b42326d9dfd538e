"""Pipeline role policies: writes only on the environment's own resources, no wildcard writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from bgtool.cli.app import main
from bgtool.config.dashboard import dashboard_name
from bgtool.config.schema import Environment, WorkerSettings, load_environment
from bgtool.drift.collect import Checker
from bgtool.iam.policy import ROLES, UNSCOPED_ECS_WRITES, policy, wildcard_writes
from bgtool.terraform.events import StreamSummary
from bgtool.terraform.layers import apply_layers, plan_layers
from bgtool.terraform.runner import RunResult, Terraform
from tests.helpers import REPO

EXAMPLES = ("local", "local-dns", "local-ecs", "staging", "prod")
WRITE_VERBS = ("Create", "Delete", "Modify", "Put", "Update", "Set", "Add", "Remove", "Attach", "Detach",
               "Authorize", "Revoke", "Run", "Allocate", "Release", "Associate", "Disassociate", "Replace",
               "Tag", "Untag", "Register", "Deregister", "Change")


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
def test_plan_and_drift_change_nothing(env: str, role: str) -> None:
    cfg = config(env)
    changed = writes(policy(env, cfg, role))
    assert changed == {}, "plan/drift write nothing, not even a lock"
    assert "elasticloadbalancing:ModifyListener" not in actions(policy(env, cfg, role))
    assert "autoscaling:UpdateAutoScalingGroup" not in actions(policy(env, cfg, role))
    objects = next(s for s in policy(env, cfg, role)["Statement"] if s["Sid"] == "StateAndHistoryObjects")
    assert objects["Action"] == ["s3:GetObject"]


def route53_scoped(zone_id: str | None, action: str, resource: str) -> bool:
    """A given zone by its ARN; a zone the base layer creates has no id to name (records: see below)."""
    if zone_id:
        return resource in (f"arn:aws:route53:::hostedzone/{zone_id}", "arn:aws:route53:::change/*")
    return resource == "*" if action == "route53:CreateHostedZone" else resource.startswith("arn:aws:route53:::")


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
                # ECS task definitions and scalable targets are tagged, not named (bgtool.iam.policy)
                or (resource == "*" and action in UNSCOPED_ECS_WRITES)
                or resource.startswith(f"arn:aws:application-autoscaling:{cfg.aws.region}:*:scalable-target/")
                or ":role/aws-service-role/" in resource
                or (cfg.dns is not None and route53_scoped(cfg.dns.zone_id, action, resource))
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


def with_workers(cfg: Environment) -> Environment:
    return cfg.model_copy(update={"workers": WorkerSettings(command="{python} -m worker {queue_url}", queue="orders")})


def with_zone_id(cfg: Environment, zone_id: str) -> Environment:
    assert cfg.dns is not None
    return cfg.model_copy(update={"dns": cfg.dns.model_copy(update={"zone_id": zone_id})})


def statements(document: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in document["Statement"]}


def test_dns_mode_changes_only_its_weighted_records() -> None:
    cfg = config("local-dns")
    by_sid = statements(policy("local-dns", cfg, "apply", account="210987654321"))
    records = by_sid["WeightedRecords"]
    assert records["Action"] == ["route53:ChangeResourceRecordSets"]
    assert records["Resource"] == ["arn:aws:route53:::hostedzone/*"]  # the zone is created by the base layer
    assert records["Condition"] == {"ForAllValues:StringEquals": {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["app.bgtool.test"],
        "route53:ChangeResourceRecordSetsRecordTypes": ["A", "CNAME"]}}
    assert by_sid["WaitForRecordChanges"]["Action"] == ["route53:GetChange"]
    assert by_sid["WaitForRecordChanges"]["Resource"] == ["arn:aws:route53:::change/*"]
    assert by_sid["CreateHostedZone"]["Action"] == ["route53:CreateHostedZone"]
    assert {"route53:DeleteHostedZone", "route53:ChangeTagsForResource"} <= set(by_sid["OwnHostedZone"]["Action"])
    assert by_sid["ReadHostedZone"]["Action"] == [
        "route53:GetHostedZone", "route53:ListResourceRecordSets", "route53:ListTagsForResource"]
    assert by_sid["FindHostedZoneByName"]["Action"] == ["route53:ListHostedZonesByName"]


def test_dns_mode_writes_each_colors_own_load_balancer() -> None:
    elb = statements(policy("local-dns", config("local-dns"), "apply"))["LoadBalancerTargetGroupsListeners"]
    for color in ("blue", "green"):
        assert f"arn:aws:elasticloadbalancing:us-east-1:*:loadbalancer/app/bgtool-ldns-{color}/*" in elb["Resource"]
        assert f"arn:aws:elasticloadbalancing:us-east-1:*:listener/app/bgtool-ldns-{color}/*" in elb["Resource"]
    local = statements(policy("local", config("local"), "apply"))["LoadBalancerTargetGroupsListeners"]
    assert not any("bgtool-local-blue" in r for r in local["Resource"])


def test_an_existing_zone_is_named_and_never_created_or_deleted() -> None:
    cfg = with_zone_id(config("local-dns"), "Z0123456789ABC")
    zone = "arn:aws:route53:::hostedzone/Z0123456789ABC"
    by_sid = statements(policy("local-dns", cfg, "apply"))
    assert by_sid["WeightedRecords"]["Resource"] == [zone]
    assert by_sid["ReadHostedZone"]["Resource"] == [zone]
    assert not {"CreateHostedZone", "OwnHostedZone", "FindHostedZoneByName"} & set(by_sid)
    assert not {"route53:CreateHostedZone", "route53:DeleteHostedZone"} & actions(policy("local-dns", cfg, "apply"))


def test_workers_queue_is_scoped_by_the_name_prefix() -> None:
    cfg = with_workers(config("local"))
    by_sid = statements(policy("local", cfg, "apply"))
    queues = ["arn:aws:sqs:us-east-1:*:bgtool-local-*"]
    assert by_sid["WorkerQueue"]["Resource"] == queues
    assert by_sid["WorkerQueue"]["Action"] == [
        "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"]
    assert by_sid["ReadWorkerQueue"] == {"Sid": "ReadWorkerQueue", "Effect": "Allow", "Resource": queues,
                                         "Action": ["sqs:GetQueueAttributes", "sqs:ListQueueTags"]}
    # The worker groups are Auto Scaling groups named <name>-<color>-workers-…: the application's statement.
    groups = by_sid["AutoScalingGroups"]["Resource"]
    assert groups == ["arn:aws:autoscaling:us-east-1:*:autoScalingGroup:*:autoScalingGroupName/bgtool-local-*"]


@pytest.mark.parametrize("role", ROLES)
def test_route53_and_sqs_only_for_environments_that_use_them(role: str) -> None:
    plain = actions(policy("local", config("local"), role))
    assert not any(a.startswith(("route53:", "sqs:")) for a in plain)
    assert any(a.startswith("route53:") for a in actions(policy("local-dns", config("local-dns"), role)))
    assert any(a.startswith("sqs:") for a in actions(policy("local", with_workers(config("local")), role)))


@pytest.mark.parametrize("role", ["plan", "drift"])
@pytest.mark.parametrize("variant", ["created zone", "existing zone", "workers"])
def test_plan_and_drift_read_dns_and_queues_without_writing(role: str, variant: str) -> None:
    cfg = {"created zone": config("local-dns"), "existing zone": with_zone_id(config("local-dns"), "Z0123"),
           "workers": with_workers(config("local-dns"))}[variant]
    document = policy("local-dns", cfg, role)
    assert writes(document) == {}
    assert not {"route53:ChangeResourceRecordSets", "route53:GetChange", "route53:GetDNSSEC"} & actions(document)
    assert wildcard_writes(document) == []
    assert {"route53:GetHostedZone", "route53:ListResourceRecordSets"} <= actions(document)
    if variant == "workers":
        assert {"sqs:GetQueueAttributes", "sqs:ListQueueTags"} == {a for a in actions(document) if a.startswith("sqs:")}


def test_session_table_and_app_role_are_scoped_to_the_store() -> None:
    cfg = config("local")  # state_store: dynamodb
    by_sid = statements(policy("local", cfg, "apply", account="210987654321"))
    assert by_sid["SessionTable"]["Resource"] == ["arn:aws:dynamodb:us-east-1:210987654321:table/bgtool-local-sessions"]
    assert {"dynamodb:CreateTable", "dynamodb:UpdateTimeToLive", "dynamodb:UpdateContinuousBackups"} <= set(
        by_sid["SessionTable"]["Action"])
    assert by_sid["SessionStoreRole"]["Resource"] == [
        "arn:aws:iam::210987654321:role/bgtool-local-sessions-app-*",
        "arn:aws:iam::210987654321:instance-profile/bgtool-local-sessions-app-*"]
    assert "iam:PassRole" in by_sid["SessionStoreRole"]["Action"]
    reads = statements(policy("local", cfg, "drift"))
    assert reads["ReadSessionTable"]["Action"] == sorted(
        ["dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive",
         "dynamodb:ListTagsOfResource"])
    assert not {"SessionTable", "SessionStoreRole"} & set(reads)


def test_a_cache_store_writes_only_its_own_cache_objects() -> None:
    cfg = config("prod")  # state_store: elasticache
    by_sid = statements(policy("prod", cfg, "apply"))
    cache = by_sid["SessionCache"]
    assert all(":elasticache:" in r and "shop-prod-sessions" in r for r in cache["Resource"]), cache
    assert "elasticache:CreateReplicationGroup" in cache["Action"]
    assert "SessionTable" not in by_sid
    for role in ("plan", "drift"):
        document = policy("prod", cfg, role)
        assert not any(a.startswith("elasticache:") for a in writes(document))
        assert "elasticache:Describe*" in actions(document)


def test_no_session_store_permissions_without_a_store() -> None:
    cfg = config("local").model_copy(update={"state_store": None})
    for role in ROLES:
        assert not [a for a in actions(policy("local", cfg, role)) if a.startswith(("elasticache:", "iam:Get"))]
        assert not any("sessions" in r for s in policy("local", cfg, role)["Statement"] for r in s["Resource"])


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_history_records_and_only_apply_adds_them(role: str) -> None:
    """The history is one object per record under <key_prefix>/ENV/history/, listed then read."""
    from fnmatch import fnmatchcase

    from bgtool.records.store import RemoteStore, record_name

    cfg = config("prod")
    store = RemoteStore("prod", cfg, aws=None)  # type: ignore[arg-type]
    key = store.records + record_name()
    statements = {s["Sid"]: s for s in policy("prod", cfg, role)["Statement"]}
    objects, listing = statements["StateAndHistoryObjects"], statements["ListStatePrefix"]
    arn = f"arn:aws:s3:::{cfg.state.bucket}/{key}"
    assert any(fnmatchcase(arn, resource) for resource in objects["Resource"])
    assert "s3:GetObject" in objects["Action"]
    assert ("s3:PutObject" in objects["Action"]) is (role == "apply")
    prefixes = listing["Condition"]["StringLike"]["s3:prefix"]
    assert any(fnmatchcase(store.records, prefix) for prefix in prefixes)
    assert any(fnmatchcase(store.key, resource.split(":::", 1)[1].split("/", 1)[1])
               for resource in objects["Resource"]), "the history of earlier versions stays readable"


# -- the read-only roles hold no lock: plans and drift run without Terraform's state lock ----------

LOCK_ITEM_WRITES = {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"}


@pytest.mark.parametrize("env", EXAMPLES)
def test_plan_and_drift_cannot_take_or_clear_a_lock(env: str) -> None:
    """Neither Terraform's lock items nor bgtool's operation lock: only the apply role writes them."""
    cfg = config(env)
    for role in ("plan", "drift"):
        document = policy(env, cfg, role)
        assert not LOCK_ITEM_WRITES & actions(document), role
        locks = statements(document)["LockItems"]
        assert locks["Action"] == ["dynamodb:BatchGetItem", "dynamodb:GetItem"]  # status, the state's checksum
        assert locks["Resource"] == [f"arn:aws:dynamodb:{cfg.aws.region}:*:table/{cfg.state.lock_table}"]
    apply = statements(policy(env, cfg, "apply"))["LockItems"]
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem"} <= set(apply["Action"])


@pytest.mark.parametrize("env", EXAMPLES)
def test_the_drift_role_is_the_plan_role(env: str) -> None:
    """Identical documents, so the IAM-enforcing integration test runs plan and drift under one of them."""
    for cfg in (config(env), with_workers(config(env))):
        assert policy(env, cfg, "plan") == policy(env, cfg, "drift")
    dns = with_zone_id(config("local-dns"), "Z0123")
    assert policy("local-dns", dns, "plan") == policy("local-dns", dns, "drift")


class RecordingWorkspace(SimpleNamespace):
    """Real runners whose terraform invocations are recorded instead of run."""

    def prepare(self) -> list[str]:
        return []

    def terraform(self, layer: str) -> Terraform:
        tf = Terraform(self.root, layer=layer, cli_config=Path(os.devnull))

        def run(args: list[str], command: str, ok: tuple[int, ...] = (0,)) -> RunResult:
            self.calls.append(args)
            return RunResult(2 if command == "plan" else 0, StreamSummary())

        tf._run = run  # type: ignore[method-assign]
        tf._capture = lambda args, command: "{}"  # type: ignore[method-assign]
        return tf


def recording(tmp_path: Path) -> RecordingWorkspace:
    return RecordingWorkspace(root=tmp_path, env="prod", calls=[])


def lock_flags(args: list[str]) -> list[str]:
    return [a for a in args if a.startswith("-lock")]


def test_bgtool_plan_runs_terraform_without_the_state_lock(tmp_path: Path) -> None:
    ws = recording(tmp_path)
    plan_layers(ws, ["base", "traffic"])  # type: ignore[arg-type]
    assert [a[0] for a in ws.calls] == ["plan", "plan"]
    assert all(lock_flags(a) == ["-lock=false"] for a in ws.calls)


def test_drift_runs_terraform_without_the_state_lock(tmp_path: Path) -> None:
    ws = recording(tmp_path)
    _items, check, _doc = Checker(tmp_path, jobs=1)._layer_once(ws, "base")  # type: ignore[arg-type]
    assert check.error is None
    plans = [a for a in ws.calls if a[0] == "plan"]
    assert len(plans) == 1 and lock_flags(plans[0]) == ["-lock=false"]


def test_apply_plans_and_applies_under_the_state_lock(tmp_path: Path) -> None:
    """The plan that is applied keeps the lock: nothing may change the state between plan and apply."""
    ws = recording(tmp_path)
    apply_layers(ws, ["base"], lambda plan: True)  # type: ignore[arg-type]
    assert [a[0] for a in ws.calls] == ["plan", "apply"]
    assert all(lock_flags(a) == ["-lock-timeout=0s"] for a in ws.calls)


@pytest.mark.parametrize("env", EXAMPLES)
def test_dashboard_calls_are_scoped_to_the_environments_dashboard(env: str) -> None:
    """The base layer's dashboard: Terraform reads it back on every refresh, and only apply writes it."""
    cfg = config(env)
    arn = f"arn:aws:cloudwatch::*:dashboard/{dashboard_name(cfg)}"
    for role in ROLES:
        document = policy(env, cfg, role)
        dashboard = [s for s in document["Statement"] if any("Dashboard" in a for a in s["Action"])]
        granted = {a: s["Resource"] for s in dashboard for a in s["Action"]}
        wanted = {"cloudwatch:GetDashboard"} | (
            {"cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"} if role == "apply" else set())
        assert set(granted) == wanted, role
        assert all(resources == [arn] for resources in granted.values()), role
    given = policy(env, cfg, "apply", account="210987654321")
    assert f"arn:aws:cloudwatch::210987654321:dashboard/{cfg.name}" in json.dumps(given)
