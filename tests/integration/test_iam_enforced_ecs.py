"""app.compute ecs applied from nothing by the generated apply role, on an embedded AWS that enforces IAM.

The embedded AWS (moto with the local data plane acting as the ECS agent) starts with moto's
INITIAL_NO_AUTH_ACTION_COUNT, so once the administrator is made every request is authorized
against the caller's policy; the data plane reads and writes moto's backends in its own process and
is not a caller. An administrator makes the state bucket and lock table (what bgtool creates by
itself only on the embedded AWS); the apply role creates the network, the load balancer, the
cluster, both services and their task definitions, scalable targets, log groups and task roles;
the plan role reads them all for `status` and cannot change a service's size.
See tests/integration/test_iam_enforced.py for how policies are made what moto understands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from bgtool.aws.session import Aws
from bgtool.config.schema import load_environment
from bgtool.embedded import server as embedded
from bgtool.terraform.backend import ensure_backend
from tests.helpers import copy_project, edit_yaml
from tests.integration.conftest import free_port
from tests.integration.test_iam_enforced import PROFILE, READ_ONLY, Enforcing

pytestmark = pytest.mark.integration

ENV = "iamecs"
NAME = f"bgtool-{ENV}"


@pytest.fixture(scope="module")
def enforcing_ecs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enforcing]:
    root = copy_project(tmp_path_factory.mktemp("iamecs"))
    text = (root / "environments/local-ecs.yaml").read_text()
    text = text.replace("name: bgtool-ecs", f"name: {NAME}").replace("10.30.", "10.62.")
    path = root / f"environments/{ENV}.yaml"
    path.write_text(text)
    edit_yaml(path, "  region: us-east-1\n", f"  region: us-east-1\n  profile: {PROFILE}\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")  # read by moto in the daemon as it starts
        info, _ = embedded.up(root, free_port())
    try:
        world = Enforcing(root, info.endpoint)
        world.make_admin()
        world.add_role_users(ENV)
        world.become("admin")
        with pytest.MonkeyPatch.context() as patch:  # the state bucket and lock table: an administrator's bootstrap
            patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(world.credentials))
            patch.setenv("AWS_CONFIG_FILE", str(root / "none"))
            config = load_environment(root, ENV, endpoint_override=info.endpoint).config
            assert ensure_backend(config, Aws(config))
        yield world
    finally:
        embedded.down(root)


def test_the_apply_role_applies_the_ecs_environment_from_nothing(enforcing_ecs: Enforcing) -> None:
    world = enforcing_ecs
    with pytest.raises(ClientError):  # enforcement is on: the plan role may not create a cluster
        world.client("ecs", READ_ONLY).create_cluster(clusterName="not-allowed")
    world.become("apply")
    applied = world.run("apply", ENV, "--yes", timeout=1500)
    if applied.returncode != 0 and "AccessDenied" not in applied.stderr + applied.stdout:
        applied = world.run("apply", ENV, "--yes", timeout=1500)  # a dropped connection: once more
    assert applied.returncode == 0, f"apply as apply:\n{applied.stderr}"

    world.become(READ_ONLY)
    deadline = time.monotonic() + 180
    while True:  # the data plane starts each service's tasks: status, as the plan role, sees them run
        done = world.run("status", ENV, "--json")
        assert done.returncode == 0, f"status as {READ_ONLY}:\n{done.stderr}"
        colors = json.loads(done.stdout)["colors"]
        if all(colors[c]["in_service"] == colors[c]["desired"] == 2 for c in ("blue", "green")):
            break
        assert time.monotonic() < deadline, colors
        time.sleep(2)
    assert {c: colors[c]["task_definition"] for c in colors} == {"blue": f"{NAME}-blue:1", "green": f"{NAME}-green:1"}


def test_the_plan_role_cannot_change_a_service(enforcing_ecs: Enforcing) -> None:
    ecs = enforcing_ecs.client("ecs", READ_ONLY)
    assert ecs.describe_services(cluster=NAME, services=[f"{NAME}-green"])["services"]  # reads are allowed
    with pytest.raises(ClientError) as denied:
        ecs.update_service(cluster=NAME, service=f"{NAME}-green", desiredCount=0)
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403  # moto: code "403" for ECS
