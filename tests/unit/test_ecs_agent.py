"""The embedded AWS's ECS agent: the rolling decisions (pure), and carrying them out in moto in-process.

The moto half runs the agent against moto's own backends (no server, no processes): the views of the
tasks' processes are given, as the controller would give them from its supervisor and health checks.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.base_backend import BackendDict

from bgtool.embedded import mototap
from bgtool.embedded.ecsagent import (
    ESSENTIAL_EXITED,
    SCALED_IN,
    AddressClaims,
    EcsAgent,
    Launch,
    TaskView,
    decide,
    deployments,
    loopback_addresses,
)
from bgtool.embedded.model import EcsService, EcsTask, Snapshot, task_specs

SERVICE = EcsService("svc", "c", "app-blue", 2, "td:2", "tg", 8000, {"bgtool:env": "e", "bgtool:color": "blue"})
UP = TaskView(listening=True, healthy=True, gone=False)
STARTING = TaskView(gone=False)


def task(n: int, definition: str = "td:2", status: str = "RUNNING", desired: str = "RUNNING") -> EcsTask:
    return EcsTask(f"t{n}", "svc", definition, definition[-1], f"127.0.0.{n}", 8000, status, desired)


def snap(*tasks: EcsTask, service: EcsService = SERVICE) -> Snapshot:
    return Snapshot(services=(service,), tasks={t.arn: t for t in tasks})


def test_a_new_service_starts_its_desired_count() -> None:
    assert decide(snap(), {}).launches == [Launch("svc", "td:2")] * 2


def test_a_new_task_definition_starts_the_new_tasks_beside_the_old_ones_first() -> None:
    old = [task(2, "td:1"), task(3, "td:1")]
    decisions = decide(snap(*old), {"127.0.0.2": UP, "127.0.0.3": UP})
    assert decisions.launches == [Launch("svc", "td:2")] * 2
    assert decisions.stops == []  # minimumHealthyPercent 100: nothing healthy goes before a new one is healthy


def test_old_tasks_stop_one_by_one_as_new_ones_become_healthy() -> None:
    tasks = [task(2, "td:1"), task(3, "td:1"), task(4), task(5)]
    views = {"127.0.0.2": UP, "127.0.0.3": UP, "127.0.0.4": UP, "127.0.0.5": STARTING}
    decisions = decide(snap(*tasks), views)
    assert [s.task_arn for s in decisions.stops] == ["t2"]
    assert decisions.launches == []  # maximumPercent 200: four tasks run already
    views["127.0.0.5"] = UP
    assert {s.task_arn for s in decide(snap(*tasks), views).stops} == {"t2", "t3"}


def test_scaling_in_stops_the_surplus_keeping_the_healthy_ones() -> None:
    tasks = [task(2), task(3), task(4)]
    views = {"127.0.0.2": UP, "127.0.0.3": STARTING, "127.0.0.4": UP}
    decisions = decide(snap(*tasks), views)
    assert [(s.task_arn, s.reason) for s in decisions.stops] == [("t3", SCALED_IN)]


def test_a_task_whose_process_exited_is_stopped_and_replaced_with_the_service_definition() -> None:
    tasks = [task(2), task(3)]
    views = {"127.0.0.2": UP, "127.0.0.3": TaskView(failed=True, gone=False)}
    decisions = decide(snap(*tasks), views)
    assert [(s.task_arn, s.reason) for s in decisions.stops] == [("t3", ESSENTIAL_EXITED)]
    assert decisions.launches == [Launch("svc", "td:2")]


def test_scaled_to_zero_stops_every_task_and_a_stopped_one_finishes_when_its_process_is_gone() -> None:
    zero = EcsService("svc", "c", "app-blue", 0, "td:2", "tg", 8000)
    assert {s.task_arn for s in decide(snap(task(2), service=zero), {"127.0.0.2": UP}).stops} == {"t2"}
    stopping = task(2, desired="STOPPED", status="DEACTIVATING")
    assert decide(snap(stopping, service=zero), {"127.0.0.2": UP}).finished == []
    assert decide(snap(stopping, service=zero), {}).finished == ["t2"]


def test_a_pending_task_runs_once_its_process_listens() -> None:
    pending = task(2, status="PENDING")
    assert decide(snap(pending), {"127.0.0.2": STARTING}).running == []
    assert decide(snap(pending), {"127.0.0.2": TaskView(listening=True, gone=False)}).running == ["t2"]


def test_a_restored_running_task_is_pending_until_its_process_listens_again() -> None:
    assert decide(snap(task(2)), {}).pending == ["t2"]
    assert decide(snap(task(2)), {"127.0.0.2": STARTING}).pending == []


def test_deployments_report_the_primary_and_the_old_definition_while_it_runs() -> None:
    now = datetime.datetime(2026, 1, 1)
    rolling = deployments(SERVICE, [task(2, "td:1"), task(3), task(4, status="PENDING")], [], now)
    assert [(d["status"], d["taskDefinition"], d["runningCount"], d["pendingCount"]) for d in rolling] == [
        ("PRIMARY", "td:2", 1, 1), ("ACTIVE", "td:1", 1, 0)]
    assert rolling[0]["rolloutState"] == "IN_PROGRESS"
    done = deployments(SERVICE, [task(3), task(4)], rolling, now)
    assert [(d["status"], d["rolloutState"]) for d in done] == [("PRIMARY", "COMPLETED")]
    assert done[0]["id"] == rolling[0]["id"]


def test_each_task_is_one_process_on_its_address_and_container_port() -> None:
    specs = task_specs(snap(task(2), task(3, desired="STOPPED")))
    assert list(specs) == ["127.0.0.2"]
    spec = specs["127.0.0.2"]
    assert (spec.address, spec.port, spec.color) == ("127.0.0.2", 8000, "blue")


def test_addresses_are_claimed_machine_wide(tmp_path: Path) -> None:
    assert list(loopback_addresses())[:2] == ["127.0.0.2", "127.0.0.3"]
    mine, theirs = AddressClaims(tmp_path), AddressClaims(tmp_path)
    assert theirs.claim("127.0.0.2")
    assert mine.next_free({"127.0.0.3"}) == "127.0.0.4"
    assert not mine.claim("127.0.0.2")
    theirs.release("127.0.0.2")
    assert mine.claim("127.0.0.2")


# --------------------------------------------------------------------------------------------
# In moto
# --------------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        mototap.install_ecs_agent()
        yield _service()


def _service() -> dict[str, Any]:
    ec2, elb, ecs = boto3.client("ec2"), boto3.client("elbv2"), boto3.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]
    tg = elb.create_target_group(Name="app-blue", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip",
                                 HealthCheckPath="/health")["TargetGroups"][0]["TargetGroupArn"]
    ecs.create_cluster(clusterName="app")
    definitions = [ecs.register_task_definition(
        family="app-blue", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": f"repo/app:{v}", "portMappings": [{"containerPort": 8000}]}],
    )["taskDefinition"]["taskDefinitionArn"] for v in ("1.0.0", "1.1.0")]
    ecs.create_service(cluster="app", serviceName="app-blue", taskDefinition=definitions[0], desiredCount=2,
                       launchType="FARGATE", loadBalancers=[{"targetGroupArn": tg, "containerName": "app",
                                                             "containerPort": 8000}],
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
                       tags=[{"key": "bgtool:color", "value": "blue"}], propagateTags="SERVICE")
    return {"tg": tg, "definitions": definitions, "ecs": ecs, "elb": elb}


def _views(s: Snapshot, healthy: bool = True) -> dict[str, TaskView]:
    return {t.address: TaskView(listening=True, healthy=healthy, gone=False) for t in s.tasks.values() if t.wanted}


def _tasks(ecs: Any) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster="app")["taskArns"]
    return ecs.describe_tasks(cluster="app", tasks=arns)["tasks"] if arns else []


def test_the_agent_runs_a_service_and_rolls_it_to_a_new_definition(aws: dict[str, Any], tmp_path: Path) -> None:
    agent, ecs, elb = EcsAgent(AddressClaims(tmp_path)), aws["ecs"], aws["elb"]
    agent.tick(mototap.read_snapshot(), {}, datetime.datetime.now())
    first = mototap.read_snapshot()
    addresses = sorted(t.address for t in first.tasks.values())
    assert addresses == ["127.0.0.2", "127.0.0.3"]
    assert {t.version for t in first.tasks.values()} == {"1.0.0"}
    registered = elb.describe_target_health(TargetGroupArn=aws["tg"])["TargetHealthDescriptions"]
    assert sorted((d["Target"]["Id"], d["Target"]["Port"]) for d in registered) == [(a, 8000) for a in addresses]

    agent.tick(first, _views(first), datetime.datetime.now())  # the processes listen: RUNNING
    agent.tick(mototap.read_snapshot(), _views(first), datetime.datetime.now())
    (service,) = ecs.describe_services(cluster="app", services=["app-blue"])["services"]
    assert service["runningCount"] == 2
    assert [d["rolloutState"] for d in service["deployments"]] == ["COMPLETED"]
    described = _tasks(ecs)
    assert {t["lastStatus"] for t in described} == {"RUNNING"}  # describe_tasks no longer moves them on
    assert {t["group"] for t in described} == {"service:app-blue"}

    ecs.update_service(cluster="app", service="app-blue", taskDefinition=aws["definitions"][1])
    rolling = mototap.read_snapshot()
    agent.tick(rolling, _views(rolling), datetime.datetime.now())
    both = mototap.read_snapshot()
    assert sorted(t.version for t in both.tasks.values()) == ["1.0.0", "1.0.0", "1.1.0", "1.1.0"]
    for _ in range(3):  # new ones healthy: the old ones are deregistered, asked to stop, then stopped
        now = mototap.read_snapshot()
        agent.tick(now, {a: v for a, v in _views(now).items() if a in {t.address for t in now.tasks.values()
                                                                      if t.version == "1.1.0"}},
                   datetime.datetime.now())
    final = mototap.read_snapshot()
    assert sorted(t.version for t in final.tasks.values()) == ["1.1.0", "1.1.0"]
    registered = elb.describe_target_health(TargetGroupArn=aws["tg"])["TargetHealthDescriptions"]
    assert sorted(d["Target"]["Id"] for d in registered) == sorted(t.address for t in final.tasks.values())
    stopped = [t for t in _tasks(ecs) if t["lastStatus"] == "STOPPED"]
    assert len(stopped) == 2 and {t["stoppedReason"] for t in stopped} == {SCALED_IN}


def test_ecs_tasks_survive_save_and_restore(aws: dict[str, Any], tmp_path: Path) -> None:
    agent = EcsAgent(AddressClaims(tmp_path / "claims"))
    agent.tick(mototap.read_snapshot(), {}, datetime.datetime.now())
    before = sorted((t.arn, t.address, t.version) for t in mototap.read_snapshot().tasks.values())
    saved = tmp_path / "backends.pickle"
    mototap.dump_backends(saved)
    BackendDict.reset()
    assert mototap.read_snapshot().tasks == {}
    mototap.load_backends(saved)
    after = mototap.read_snapshot()
    assert sorted((t.arn, t.address, t.version) for t in after.tasks.values()) == before
    assert json.dumps(aws["ecs"].describe_services(cluster="app", services=["app-blue"])["services"][0]["desiredCount"])


def test_haproxy_points_at_the_task_address() -> None:
    from bgtool.embedded.layout import Files, ProcessView, ServerState, render_config, runtime_commands
    from bgtool.embedded.layout import plan as plan_layout
    from bgtool.embedded.model import HealthCheck, Target, TargetGroup

    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app-blue/abc"
    group = TargetGroup(arn, "app-blue", HealthCheck("/health"), (Target("127.0.0.2", 8000),))
    wanted = plan_layout(Snapshot(target_groups={arn: group}), {}, {"127.0.0.2": ProcessView(8000, True, False,
                                                                                             "127.0.0.2")}, {}, {})
    assert "server s0 127.0.0.2:8000 check" in render_config(wanted.layout, wanted.servers, Files("s", "f"))
    moved = {"tg.x/s0": ServerState(8000, address="127.0.0.3")}
    assert runtime_commands({"tg.x/s0": ServerState(8000, address="127.0.0.2")}, moved) == [
        "set server tg.x/s0 addr 127.0.0.3 port 8000"]


def test_the_ecs_compute_reads_the_color_the_agent_runs(aws: dict[str, Any], tmp_path: Path) -> None:
    from types import SimpleNamespace

    from bgtool.compute.ecs import ecs_color_live
    from bgtool.config.schema import Color

    agent = EcsAgent(AddressClaims(tmp_path))
    agent.tick(mototap.read_snapshot(), {}, datetime.datetime.now())
    started = mototap.read_snapshot()
    agent.tick(started, _views(started), datetime.datetime.now())
    reader = SimpleNamespace(client=boto3.client)
    live = ecs_color_live(reader, SimpleNamespace(name="app"), Color("blue"), aws["tg"])  # type: ignore[arg-type]
    assert (live.asg_names, live.desired, live.in_service, live.versions) == (["app-blue"], 2, 2, ["1.0.0"])
    assert live.task_definition == "app-blue:1" and live.group_label == "ECS service"
    assert live.image == "repo/app:1.0.0", live.image
    agent.tick(mototap.read_snapshot(), _views(started), datetime.datetime.now())  # the counts catch up
    assert ecs_color_live(reader, SimpleNamespace(name="app"), Color("blue"), aws["tg"]).rollout == "COMPLETED"  # type: ignore[arg-type]
    assert sorted(live.instance_ids) == sorted(t.address for t in started.tasks.values())
    assert sorted(t.id for t in live.targets) == sorted(live.instance_ids)
    green = ecs_color_live(reader, SimpleNamespace(name="app"), Color("green"), None)  # type: ignore[arg-type]
    assert (green.asg_names, green.members) == ([], [])


def test_create_service_keeps_the_settings_terraform_reads_back(aws: dict[str, Any]) -> None:
    mototap.install_ecs_agent()
    ecs = aws["ecs"]
    ecs.create_service(cluster="app", serviceName="app-green", taskDefinition=aws["definitions"][0], desiredCount=0,
                       deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200},
                       healthCheckGracePeriodSeconds=60, enableECSManagedTags=True,
                       availabilityZoneRebalancing="DISABLED")
    (found,) = ecs.describe_services(cluster="app", services=["app-green"])["services"]
    assert (found["healthCheckGracePeriodSeconds"], found["enableECSManagedTags"]) == (60, True)
    assert found["availabilityZoneRebalancing"] == "DISABLED"
    assert found["deploymentConfiguration"] == {"minimumHealthyPercent": 100, "maximumPercent": 200}


def test_scalable_targets_keep_their_tags(aws: dict[str, Any]) -> None:
    mototap.install_scalable_target_tags()
    scaling = boto3.client("application-autoscaling")
    arn = scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId="service/app/app-blue", ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=0, MaxCapacity=4, Tags={"bgtool:env": "e"})["ScalableTargetARN"]
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"bgtool:env": "e"}
    scaling.tag_resource(ResourceARN=arn, Tags={"team": "platform"})
    scaling.untag_resource(ResourceARN=arn, TagKeys=["bgtool:env"])
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "platform"}
    with pytest.raises(scaling.exceptions.ResourceNotFoundException):
        scaling.list_tags_for_resource(ResourceARN=arn + "x")


def test_a_worker_service_runs_its_tasks_as_worker_processes_in_no_target_group(aws: dict[str, Any],
                                                                                tmp_path: Path) -> None:
    from bgtool.embedded.model import worker_specs

    ecs = aws["ecs"]
    ec2 = boto3.client("ec2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": ["10.9.1.0/24"]}])["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["tasks"]}])["SecurityGroups"][0]
    definition = ecs.register_task_definition(
        family="app-blue-workers", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[{"name": "worker", "image": "repo/app:1.0.0", "command": ["run"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    tags = {"bgtool:env": "e", "bgtool:color": "blue", "bgtool:role": "worker", "bgtool:queue-url": "http://q/orders"}
    ecs.create_service(cluster="app", serviceName="app-blue-workers", taskDefinition=definition, desiredCount=1,
                       launchType="FARGATE", tags=[{"key": k, "value": v} for k, v in tags.items()],
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet],
                                                                     "securityGroups": [group["GroupId"]]}},
                       propagateTags="SERVICE")
    agent = EcsAgent(AddressClaims(tmp_path))
    agent.tick(mototap.read_snapshot(), {}, datetime.datetime.now())
    started = mototap.read_snapshot()
    (workers,) = [s for s in started.services if s.name == "app-blue-workers"]
    assert workers.workers and not workers.target_group_arn
    (task,) = [t for t in started.tasks.values() if t.service_arn == workers.arn]
    specs = worker_specs(started)
    assert (specs[task.address].queue_url, specs[task.address].color, specs[task.address].version) == (
        "http://q/orders", "blue", "1.0.0")
    assert task.address not in task_specs(started)  # no application process, no target
    registered = aws["elb"].describe_target_health(TargetGroupArn=aws["tg"])["TargetHealthDescriptions"]
    assert task.address not in {d["Target"]["Id"] for d in registered}
    agent.tick(started, _views(started), datetime.datetime.now())  # its process is ready: RUNNING
    agent.tick(mototap.read_snapshot(), _views(started), datetime.datetime.now())
    (service,) = ecs.describe_services(cluster="app", services=["app-blue-workers"])["services"]
    assert (service["desiredCount"], service["runningCount"]) == (1, 1)
