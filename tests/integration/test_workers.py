"""Workers follow the live color, for real: an SQS queue of the embedded AWS, worker groups in both
color layers, the sample worker as processes of the local data plane, `exclusive` and `overlap` handover.

A steady stream of messages goes through a switch and a rollback; the sample worker records which
version processed each message: nothing is lost, and no two versions ever process at the same time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bgtool.embedded.dataplane import read_state
from tests.integration.conftest import Project, add_environment
from tests.integration.traffic import Sender

ENV = "wrk62"
RECORD = f".bgtool/worker-record-{ENV}.jsonl"
WORKERS = f"""
workers:
  command: "{{python}} -m bgtool.embedded.sampleworker --queue-url {{queue_url}} --version {{version}} --color {{color}} --worker {{worker}} --record {RECORD} --work-seconds 0.05"
  queue: orders
  size: 1
  max_size: 2
  handover: exclusive
  visibility_timeout_seconds: 10
"""  # noqa: E501 (one YAML line)


def workers_of(project: Project, color: str) -> list[dict[str, Any]]:
    doc = read_state(project.root) or {}
    return [w for w in doc.get("workers", []) if w.get("env") == ENV and w.get("color") == color and w.get("alive")]


def processed(project: Project) -> list[dict[str, Any]]:
    path = project.root / RECORD
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def wrk(project: Project) -> Iterator[Project]:
    add_environment(project, ENV, 62, backend="local")
    path = project.root / f"environments/{ENV}.yaml"
    text = path.read_text()
    # No load test and no database here: this module is about the workers.
    start, end = text.index("  load: #"), text.index("local:\n")
    text = text[:start] + text[end:]
    text = text[:text.index("# Migrations ship")] + text[text.index("tags:\n"):]
    path.write_text(text + WORKERS)
    project.ok("apply", ENV, "--yes", timeout=1500)
    project.ok("deploy", ENV, "1.1.0", "--yes", timeout=900)
    yield project


def test_only_the_live_colors_workers_run_and_deploy_starts_none_on_the_idle_color(wrk: Project) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(workers_of(wrk, "blue")) < 1:
        time.sleep(0.5)
    assert len(workers_of(wrk, "blue")) == 1 and workers_of(wrk, "green") == []
    status = json.loads(wrk.ok("status", ENV, "--json").stdout)
    assert status["colors"]["blue"]["workers"] == 1 and status["colors"]["green"]["workers"] == 0, status


def test_no_message_is_lost_and_two_versions_never_process_at_once(wrk: Project) -> None:
    sqs = wrk.aws(ENV).client("sqs")
    url = sqs.get_queue_url(QueueName=f"bgtool-{ENV}-orders")["QueueUrl"]
    with Sender(sqs, url) as sender:
        time.sleep(2)
        switched = wrk.ok("switch", ENV, "--yes", "--steps", "100", "--json", "--accept-inconclusive", timeout=900)
        outcome = json.loads(switched.stdout)
        assert outcome["result"] == "succeeded", outcome
        steps = [(s["action"], s["color"]) for s in outcome["workers"]["steps"]]
        assert steps == [("stop", "blue"), ("start", "green")], outcome["workers"]
        assert "workers (exclusive): stop the blue workers" in switched.stderr
        assert workers_of(wrk, "blue") == [] and len(workers_of(wrk, "green")) == 1
        time.sleep(3)
        back = json.loads(wrk.ok("rollback", ENV, "--yes", "--json", timeout=900).stdout)
        assert [(s["action"], s["color"]) for s in back["workers"]["steps"]] == [("stop", "green"), ("start", "blue")]
        time.sleep(2)
    deadline = time.monotonic() + 300  # the backlog of the handover (and of a loaded machine) drains
    while time.monotonic() < deadline and not set(sender.sent) <= {p["body"] for p in processed(wrk)}:
        time.sleep(0.5)
    done = processed(wrk)
    lost = sorted(set(sender.sent) - {p["body"] for p in done})
    assert not lost, f"{len(lost)} of {len(sender.sent)} messages never processed: {lost[:10]}"
    versions = {p["version"] for p in done}
    assert versions == {"1.0.0", "1.1.0"}, versions
    by_version: dict[str, list[tuple[float, float]]] = {}
    for p in done:
        by_version.setdefault(p["version"], []).append((p["started"], p["ended"]))
    overlaps = [(a, b) for a in by_version["1.0.0"] for b in by_version["1.1.0"] if a[0] < b[1] and b[0] < a[1]]
    assert not overlaps, f"two versions processed at once: {overlaps[:5]}"
    drift = wrk.run("drift", ENV, "--json", timeout=900)
    assert drift.returncode in (0, 2) and '"kind": "idle_workers"' not in drift.stdout, drift.stdout[-2000:]


def test_overlap_starts_the_new_workers_before_the_old_stop_and_loses_nothing(wrk: Project) -> None:
    """The default handover: the new color's workers consume before the old color's stop, so the queue
    never waits; a message is processed once, by either version."""
    path = wrk.root / f"environments/{ENV}.yaml"
    path.write_text(path.read_text().replace("handover: exclusive", "handover: overlap"))
    sqs = wrk.aws(ENV).client("sqs")
    url = sqs.get_queue_url(QueueName=f"bgtool-{ENV}-orders")["QueueUrl"]
    with Sender(sqs, url, prefix="overlap") as sender:
        time.sleep(2)
        switched = wrk.ok("switch", ENV, "--yes", "--steps", "100", "--json", "--accept-inconclusive", timeout=900)
        outcome = json.loads(switched.stdout)
        assert outcome["result"] == "succeeded", outcome
        assert [(s["action"], s["color"]) for s in outcome["workers"]["steps"]] == [
            ("start", "green"), ("stop", "blue")], outcome["workers"]
        assert workers_of(wrk, "blue") == [] and len(workers_of(wrk, "green")) == 1
        time.sleep(2)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not set(sender.sent) <= {p["body"] for p in processed(wrk)}:
        time.sleep(0.5)
    done = [p for p in processed(wrk) if p["body"].startswith("overlap-")]
    lost = sorted(set(sender.sent) - {p["body"] for p in done})
    assert not lost, f"{len(lost)} of {len(sender.sent)} messages never processed: {lost[:10]}"
    bodies = [p["body"] for p in done]
    assert len(bodies) == len(set(bodies)), "a message was processed twice"
    assert {p["version"] for p in done} == {"1.0.0", "1.1.0"}  # both versions consumed around the handover
