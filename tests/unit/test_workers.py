"""Workers without AWS: the handover order, who runs at rest, what gets rendered, the data plane's
worker processes, and the sample worker against a fake queue (SIGTERM gives messages back)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bgtool.compute.workers import HandoverStep, handover_plan, step_done
from bgtool.config.schema import Color, WorkerSettings, load_environment
from bgtool.embedded.model import Instance, Snapshot, worker_specs
from bgtool.embedded.sampleworker import Worker
from bgtool.embedded.targets import worker_command_for
from bgtool.render.templates import color_vars, render_layer, workers_desired
from tests.helpers import copy_project, edit_yaml

SETTINGS = WorkerSettings(command="run {queue_url}", queue="orders", size=3, max_size=4)


def test_overlap_starts_the_new_workers_before_the_old_ones_stop() -> None:
    assert handover_plan("overlap", Color.BLUE, Color.GREEN) == [
        HandoverStep("start", Color.GREEN), HandoverStep("stop", Color.BLUE)]


def test_exclusive_stops_the_old_workers_before_the_new_ones_start() -> None:
    assert handover_plan("exclusive", Color.GREEN, Color.BLUE) == [
        HandoverStep("stop", Color.GREEN), HandoverStep("start", Color.BLUE)]


def test_a_handover_to_the_same_color_only_makes_sure_its_workers_run() -> None:
    assert handover_plan("exclusive", Color.BLUE, Color.BLUE) == [HandoverStep("start", Color.BLUE)]
    with pytest.raises(ValueError, match="allowed: overlap, exclusive"):
        handover_plan("both", Color.BLUE, Color.GREEN)


def test_a_start_waits_for_every_worker_and_a_stop_for_none_left() -> None:
    start, stop = HandoverStep("start", Color.GREEN), HandoverStep("stop", Color.BLUE)
    assert not step_done(start, SETTINGS, 2) and step_done(start, SETTINGS, 3)
    assert not step_done(stop, SETTINGS, 1) and step_done(stop, SETTINGS, 0)
    assert start.desired(SETTINGS) == 3 and stop.desired(SETTINGS) == 0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path)
    edit_yaml(root / "environments/local-dns.yaml", "retention_hours: 24\n",
              "retention_hours: 24\nworkers:\n  command: \"{python} -m w --queue {queue_url} --v {version}\"\n"
              "  queue: orders\n  size: 2\n  max_size: 3\n  handover: exclusive\n")
    return root


def test_only_the_live_color_runs_workers_at_rest(project: Path) -> None:
    config = load_environment(project, "local-dns").config
    assert color_vars(config, Color.BLUE)["workers_desired"] == 2  # blue is live
    assert color_vars(config, Color.GREEN)["workers_desired"] == 0  # a deploy to green starts none
    assert workers_desired(config, Color.GREEN, live=Color.GREEN) == 2
    assert "workers_desired" not in color_vars(load_environment(project, "local").config, Color.BLUE)


def test_the_layers_render_the_queue_the_worker_groups_and_the_dns_records(project: Path) -> None:
    loaded = load_environment(project, "local-dns")
    base = render_layer(project, loaded, "base")
    assert 'resource "aws_sqs_queue" "workers"' in base["main.tf"] and '"bgtool-ldns-orders"' in base["main.tf"]
    assert 'resource "aws_route53_zone" "dns"' in base["main.tf"] and "per_color_load_balancers = true" in base[
        "main.tf"]
    assert 'output "worker_queue_url"' in base["outputs.tf"] and 'output "dns_zone_id"' in base["outputs.tf"]
    blue, green = render_layer(project, loaded, "blue"), render_layer(project, loaded, "green")
    assert 'module "workers"' in blue["main.tf"] and "desired   = var.workers_desired" in blue["main.tf"]
    assert json.loads(blue["terraform.tfvars.json"])["workers_desired"] == 2
    assert json.loads(green["terraform.tfvars.json"])["workers_desired"] == 0
    assert 'local.base.color_load_balancers["blue"].arn_suffix' in blue["main.tf"]
    traffic = render_layer(project, loaded, "traffic")
    assert 'module "dns"' in traffic["main.tf"] and 'record         = "app.bgtool.test"' in traffic["main.tf"]
    assert 'module "traffic"' not in traffic["main.tf"]


def test_the_listener_mode_renders_no_dns_and_no_workers(project: Path) -> None:
    loaded = load_environment(project, "local")
    base = render_layer(project, loaded, "base")["main.tf"]
    assert "aws_route53_zone" not in base and "aws_sqs_queue" not in base and "per_color_load_balancers" not in base
    assert 'module "traffic"' in render_layer(project, loaded, "traffic")["main.tf"]


def test_worker_instances_become_processes_with_the_command_filled_in() -> None:
    tags = {"bgtool:role": "worker", "bgtool:env": "wrk", "bgtool:color": "green", "bgtool:version": "1.1.0",
            "bgtool:queue-url": "http://127.0.0.1:5000/123456789012/q"}
    specs = worker_specs(Snapshot(workers={"i-1": Instance("i-1", True, tags)}))
    spec = specs["i-1"]
    assert (spec.env, spec.color, spec.version, spec.queue_url) == ("wrk", "green", "1.1.0",
                                                                     "http://127.0.0.1:5000/123456789012/q")
    argv = worker_command_for("{python} -m w --queue {queue_url} --v {version} --id {worker}", spec)
    assert argv == [sys.executable, "-m", "w", "--queue", spec.queue_url, "--v", "1.1.0", "--id", "i-1"]
    assert worker_command_for(None, spec)[:3] == [sys.executable, "-m", "bgtool.embedded.sampleworker"]


class FakeSqs:
    def __init__(self, bodies: list[str]) -> None:
        self.queue = [{"Body": b, "MessageId": f"id-{b}", "ReceiptHandle": f"rh-{b}"} for b in bodies]
        self.deleted: list[str] = []
        self.returned: list[str] = []
        self.on_receive: Any = None

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        if self.on_receive:
            self.on_receive()
        taken, self.queue = self.queue[:kwargs["MaxNumberOfMessages"]], self.queue[kwargs["MaxNumberOfMessages"]:]
        return {"Messages": taken}

    def delete_message(self, **kwargs: Any) -> None:
        self.deleted.append(kwargs["ReceiptHandle"])

    def change_message_visibility(self, **kwargs: Any) -> None:
        assert kwargs["VisibilityTimeout"] == 0
        self.returned.append(kwargs["ReceiptHandle"])


def test_the_sample_worker_records_its_version_and_gives_back_what_it_holds_when_stopped(tmp_path: Path) -> None:
    sqs = FakeSqs(["a", "b", "c"])
    record = tmp_path / "record.jsonl"
    worker = Worker("http://q", "1.1.0", "green", "i-1", record, 0.0, client=sqs)
    original_delete = sqs.delete_message

    def stop_after_first(**kwargs: Any) -> None:
        original_delete(**kwargs)
        worker.stopping.set()  # SIGTERM arrives while the batch a, b, c is in hand

    sqs.delete_message = stop_after_first  # type: ignore[method-assign]
    worker.run()
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    assert [(x["body"], x["version"], x["color"], x["worker"]) for x in lines] == [("a", "1.1.0", "green", "i-1")]
    assert sqs.deleted == ["rh-a"] and sqs.returned == ["rh-b", "rh-c"]  # back on the queue, not lost
    assert sqs.queue == []
    assert lines[0]["started"] <= lines[0]["ended"]
