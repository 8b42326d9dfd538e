"""The generated role policies against an embedded AWS that enforces IAM.

moto authorizes every request against the caller's attached policies once its first
INITIAL_NO_AUTH_ACTION_COUNT requests (used here to create an administrator) are spent. Each
pipeline role becomes an IAM user whose inline policy is `bgtool iam ENV --role ROLE`, and bgtool
runs with that user's keys through a named profile. What moto cannot judge is widened before the
policy is attached (see `as_moto_understands`): the action lists are exactly the generated ones.

Shown: plan and drift succeed with the plan/drift policy, which cannot modify a listener or an Auto
Scaling group, nor take or clear a lock (Terraform's state lock items, bgtool's operation lock);
apply and switch succeed with the apply policy.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bgtool.config.schema import load_environment
from bgtool.iam.policy import ROLES, policy
from bgtool.records.store import RemoteStore
from bgtool.terraform.statelocks import dynamodb_lock_id
from tests.helpers import copy_project, edit_yaml
from tests.integration.conftest import BGTOOL, Project, add_environment, free_port

pytestmark = pytest.mark.integration

ENV = "iamcheck"
PROFILE = "bgtool-iamcheck"
GATE_WITHOUT_DATA_PLANE = "gate:\n  min_healthy: 1\n  smoke: []\n  wait_seconds: 120\n\n"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# The drift role's policy is the plan role's (tests/unit/test_iam.py::test_the_drift_role_is_the_plan_role):
# what one of them can do, both can, so each command runs under one of them only.
READ_ONLY = "plan"


# moto names S3 permissions after the API operation, where IAM has one action for several.
MOTO_S3_NAMES = {"s3:ListBucket": ["s3:HeadBucket", "s3:ListObjects", "s3:ListObjectsV2"]}
# moto prefixes an action with the service's signing name, which for CloudWatch is "monitoring".
MOTO_PREFIXES = {"cloudwatch:": "monitoring:"}


def moto_names(action: str) -> list[str]:
    names = [action, *MOTO_S3_NAMES.get(action, [])]
    for iam_prefix, moto_prefix in MOTO_PREFIXES.items():
        if action.startswith(iam_prefix):
            names.append(moto_prefix + action.removeprefix(iam_prefix))
    return names


def as_moto_understands(document: dict[str, Any]) -> dict[str, Any]:
    """The same actions, on every resource and without conditions.

    moto 5 authorizes most services against the resource "*" (so an ARN-scoped statement never
    matches) and evaluates conditions without request context (so a conditioned Allow denies).
    Resource scoping and conditions are covered by tests/unit/test_iam.py instead.
    """
    statements = []
    for s in document["Statement"]:
        actions = [n for a in s["Action"] for n in moto_names(a)]
        statements.append({"Sid": s["Sid"], "Effect": s["Effect"], "Action": actions, "Resource": "*"})
    return {"Version": document["Version"], "Statement": statements}


class Enforcing:
    """A moto server that enforces IAM, and a project whose environment uses one profile."""

    def __init__(self, root: Path, endpoint: str) -> None:
        self.root, self.endpoint = root, endpoint
        self.keys: dict[str, tuple[str, str]] = {}
        self.credentials = root / "aws-credentials"

    def become(self, user: str) -> None:
        """From now on the environment's profile holds USER's keys."""
        key, secret = self.keys[user]
        self.credentials.write_text(f"[{PROFILE}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")

    @property
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return {**base, "BGTOOL_ROOT": str(self.root), "BGTOOL_AWS_ENDPOINT": self.endpoint,
                "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials), "AWS_CONFIG_FILE": str(self.root / "none")}

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BGTOOL, *args], cwd=self.root, env=self.env, text=True, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)

    def add_role_users(self, env: str) -> None:
        """One IAM user per pipeline role, whose inline policy is `bgtool iam ENV --role ROLE`."""
        config = load_environment(self.root, env, endpoint_override=self.endpoint).config
        admin = self.client("iam", "admin")
        for role in ROLES:
            admin.create_user(UserName=role)
            document = as_moto_understands(policy(env, config, role))
            admin.put_user_policy(UserName=role, PolicyName=f"bgtool-{role}", PolicyDocument=json.dumps(document))
            key = admin.create_access_key(UserName=role)["AccessKey"]
            self.keys[role] = (key["AccessKeyId"], key["SecretAccessKey"])

    def make_admin(self) -> None:
        """The requests moto lets through unauthenticated (INITIAL_NO_AUTH_ACTION_COUNT) make the administrator."""
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id="bgtool", aws_secret_access_key="bgtool")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(ADMIN_POLICY))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        self.keys["admin"] = (key["AccessKeyId"], key["SecretAccessKey"])

    def client(self, service: str, user: str) -> Any:
        key, secret = self.keys[user]
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=secret)


def wait_for(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("moto_server did not start")


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enforcing]:
    root = copy_project(tmp_path_factory.mktemp("iam"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (root / "moto.log").open("wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(port, server)
        world = Enforcing(root, endpoint)
        world.make_admin()

        add_environment(Project(root, endpoint), ENV, 61)
        path = root / f"environments/{ENV}.yaml"
        edit_yaml(path, "  region: us-east-1\n", f"  region: us-east-1\n  profile: {PROFILE}\n")
        # This server has no local data plane (smoke, load, host checks): the gate reads AWS only.
        path.write_text(re.sub(r"(?ms)^gate:\n.*?(?=^[a-z_]+:)", GATE_WITHOUT_DATA_PLANE, path.read_text()))
        world.add_role_users(ENV)

        world.become("admin")
        done = world.run("apply", ENV, "--yes")
        assert done.returncode == 0, f"apply as admin:\n{done.stderr}"
        yield world
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_enforcement_is_on(enforcing: Enforcing) -> None:
    """Without a policy for it, even a read is refused: the checks below mean something."""
    enforcing.client("iam", "admin").create_user(UserName="nobody")
    key = enforcing.client("iam", "admin").create_access_key(UserName="nobody")["AccessKey"]
    enforcing.keys["nobody"] = (key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as denied:
        enforcing.client("elbv2", "nobody").describe_load_balancers()
    assert denied.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")


def test_plan_and_drift_succeed_with_their_role(enforcing: Enforcing) -> None:
    """Without any write on the lock table: neither takes Terraform's state lock nor bgtool's operation lock."""
    role = READ_ONLY
    enforcing.become(role)
    planned = enforcing.run("plan", ENV)
    assert planned.returncode == 0, f"plan as {role}:\n{planned.stderr}"
    drift = enforcing.run("drift", ENV, "--json")
    assert drift.returncode == 0, f"drift as {role}:\n{drift.stderr}\n{drift.stdout}"
    assert json.loads(drift.stdout)["status"] == "clean"


def test_plan_and_drift_roles_cannot_take_or_clear_a_lock(enforcing: Enforcing) -> None:
    """Terraform's lock item of a layer and bgtool's operation lock: read, never written."""
    config = load_environment(enforcing.root, ENV, endpoint_override=enforcing.endpoint).config
    table = config.state.lock_table
    ddb = enforcing.client("dynamodb", READ_ONLY)
    lock_ids = [dynamodb_lock_id(config, ENV, "traffic"), RemoteStore(ENV, config, None).lock_id]  # type: ignore[arg-type]
    for lock_id in lock_ids:
        key = {"LockID": {"S": lock_id}}
        ddb.get_item(TableName=table, Key=key, ConsistentRead=True)  # status and drift read it
        for action, kwargs in (("put_item", {"Item": {**key, "Info": {"S": "x"}}}), ("delete_item", {"Key": key})):
            with pytest.raises(ClientError) as denied:
                getattr(ddb, action)(TableName=table, **kwargs)
            assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, (action, lock_id)
            assert "not authorized to perform: dynamodb:" in str(denied.value), (action, lock_id)
    admin = enforcing.client("dynamodb", "admin")
    assert not any(admin.get_item(TableName=table, Key={"LockID": {"S": i}}).get("Item") for i in lock_ids)


def test_plan_and_drift_roles_cannot_move_traffic_or_capacity(enforcing: Enforcing) -> None:
    role = READ_ONLY
    admin_elb = enforcing.client("elbv2", "admin")
    lb = admin_elb.describe_load_balancers(Names=[f"bgtool-{ENV}"])["LoadBalancers"][0]
    listener = admin_elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    groups = enforcing.client("autoscaling", "admin").describe_auto_scaling_groups()["AutoScalingGroups"]
    group = next(g for g in groups if g["AutoScalingGroupName"].startswith(f"bgtool-{ENV}-"))

    with pytest.raises(ClientError) as denied:
        enforcing.client("elbv2", role).modify_listener(
            ListenerArn=listener["ListenerArn"], DefaultActions=listener["DefaultActions"])
    assert "AccessDenied" in denied.value.response["Error"]["Code"]
    with pytest.raises(ClientError) as denied:
        enforcing.client("autoscaling", role).update_auto_scaling_group(
            AutoScalingGroupName=group["AutoScalingGroupName"], DesiredCapacity=0)
    assert "AccessDenied" in denied.value.response["Error"]["Code"]
    # Reads are allowed: the role is not simply locked out.
    assert enforcing.client("elbv2", role).describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]


def test_apply_and_switch_succeed_with_the_apply_role(enforcing: Enforcing) -> None:
    enforcing.become("apply")
    applied = enforcing.run("apply", ENV, "--yes")
    assert applied.returncode == 0, f"apply as apply:\n{applied.stderr}"
    switched = enforcing.run("switch", ENV, "--yes", "--steps", "100", "--bake", "0", "--monitor", "0",
                             "--accept-inconclusive")
    assert switched.returncode == 0, f"switch as apply:\n{switched.stderr}"
    assert "active_color: green" in (enforcing.root / f"environments/{ENV}.yaml").read_text()
