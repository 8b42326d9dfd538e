"""A color's serving groups: every page of the answer, and never its worker group."""

from __future__ import annotations

from typing import Any

from bgtool.aws.live import ColorLive, _read_asgs, color_groups
from bgtool.config.schema import Color


def group(name: str, role: str | None = None, desired: int = 2) -> dict[str, Any]:
    tags = [{"Key": "bgtool:version", "Value": "1.0.0"}] + ([{"Key": "bgtool:role", "Value": role}] if role else [])
    instances = [{"InstanceId": f"{name}-{i}", "LifecycleState": "InService"} for i in range(desired)]
    return {"AutoScalingGroupName": name, "DesiredCapacity": desired, "Tags": tags, "Instances": instances}


class FakeAutoScaling:
    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.filters: list[Any] = []

    def get_paginator(self, name: str) -> FakeAutoScaling:
        assert name == "describe_auto_scaling_groups"
        return self

    def paginate(self, Filters: list[Any]) -> list[dict[str, Any]]:
        self.filters = Filters
        return [{"AutoScalingGroups": page} for page in self.pages]


class FakeAws:
    def __init__(self, client: FakeAutoScaling) -> None:
        self._client = client

    def client(self, service: str) -> FakeAutoScaling:
        assert service == "autoscaling"
        return self._client


def test_every_page_is_read_and_worker_groups_are_left_out() -> None:
    client = FakeAutoScaling([[group("web-a")], [group("workers", role="worker", desired=3), group("web-b")]])
    names = [g["AutoScalingGroupName"] for g in color_groups(FakeAws(client), "prod", Color.GREEN)]  # type: ignore[arg-type]
    assert names == ["web-a", "web-b"]
    assert {f["Name"]: f["Values"] for f in client.filters} == {"tag:bgtool:env": ["prod"],
                                                               "tag:bgtool:color": ["green"]}


def test_capacity_counts_only_the_serving_instances() -> None:
    client = FakeAutoScaling([[group("web", desired=2), group("workers", role="worker", desired=5)]])
    live = ColorLive("green")
    _read_asgs(FakeAws(client), "prod", Color.GREEN, live)  # type: ignore[arg-type]
    assert (live.desired, live.in_service, live.asg_names) == (2, 2, ["web"])
