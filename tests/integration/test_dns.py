"""DNS mode for real: per-color load balancers, two weighted Route 53 records, the TTL guard.

One environment of its own (`dns61`, from environments/local-dns.yaml), applied once: the local data
plane serves the record's name with the record weights per connection, so a steady stream of new
connections shows traffic moving 10 → 50 → 100 and back, as resolvers would spread clients.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bgtool.embedded.dataplane import name_urls, read_state
from tests.helpers import edit_yaml
from tests.integration.conftest import Project

ENV = "dns61"
ZONE = "dns61.test"
RECORD = f"app.{ZONE}"


def add_dns_environment(project: Project, env: str, octet: int) -> str:
    text = (project.root / "environments/local-dns.yaml").read_text()
    text = (text.replace("name: bgtool-ldns", f"name: bgtool-{env}").replace("10.60.", f"10.{octet}.")
            .replace("bgtool.test", f"{env}.test").replace("backend: s3", "backend: local", 1))
    (project.root / f"environments/{env}.yaml").write_text(text)
    return env


def record_url(project: Project, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = name_urls(read_state(project.root) or {}, RECORD).get(80)
        if url:
            return url
        time.sleep(0.5)
    raise AssertionError(f"the data plane does not serve {RECORD}: {read_state(project.root)}")


def record_sets(project: Project) -> list[dict[str, Any]]:
    route53 = project.aws(ENV).client("route53")
    zone = next(z for z in route53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"]
                if z["Name"].rstrip(".") == ZONE)
    sets = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    return [r for r in sets if r.get("SetIdentifier")]


def weights(project: Project) -> dict[str, int]:
    return {r["SetIdentifier"]: int(r["Weight"]) for r in record_sets(project)}


class Clients:
    """New connections to the record's name, one per request, as fresh resolvers would make."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[float, int | None, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                resp = requests.get(f"{self.url}/version", timeout=5, headers={"Connection": "close"})
                self.seen.append((time.monotonic(), resp.status_code, resp.text.strip()))
            except requests.RequestException as exc:
                self.seen.append((time.monotonic(), None, type(exc).__name__))
            time.sleep(0.02)

    def __enter__(self) -> Clients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def versions(self, since: float = 0.0) -> Counter[str]:
        return Counter(v for t, code, v in self.seen if t >= since and code == 200)

    def failures(self) -> list[tuple[float, int | None, str]]:
        return [s for s in self.seen if s[1] != 200]


@pytest.fixture(scope="module")
def dns(project: Project) -> Iterator[Project]:
    add_dns_environment(project, ENV, 61)
    project.ok("apply", ENV, "--yes", timeout=1500)
    project.ok("deploy", ENV, "1.1.0", "--yes", timeout=900)
    yield project


def test_each_color_has_its_own_load_balancer_and_weighted_records(dns: Project) -> None:
    elbv2 = dns.aws(ENV).client("elbv2")
    names = {lb["LoadBalancerName"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]}
    assert {f"bgtool-{ENV}-blue", f"bgtool-{ENV}-green"} <= names and f"bgtool-{ENV}" not in names
    sets = record_sets(dns)
    assert {(r["Type"], r["TTL"], r["SetIdentifier"], r["Weight"]) for r in sets} == {
        ("CNAME", 1, "blue", 100), ("CNAME", 1, "green", 0)}
    url = record_url(dns)
    assert requests.get(f"{url}/version", timeout=5).text.strip() == "1.0.0"
    status = json.loads(dns.ok("status", ENV, "--json").stdout)
    assert status["live_color"] == "blue" and status["file_matches_live"], status
    assert status["dns"]["weights"] == {"blue": 100, "green": 0} and status["dns"]["ttl_seconds"] == 1
    # The idle color's test endpoint is its own load balancer: the gate's smoke reaches green there.
    verify = json.loads(dns.ok("verify", ENV, "--json").stdout)
    smoke = {c["name"]: c for c in verify["checks"]}["smoke /version"]
    assert smoke["passed"] and "1.1.0" in smoke["evidence"], smoke


def test_switch_moves_the_record_weights_with_the_ttl_guard_and_rollback_moves_them_back(dns: Project) -> None:
    url = record_url(dns)
    with Clients(url) as clients:
        started = time.monotonic()
        done = dns.ok("switch", ENV, "--yes", "--steps", "10,50,100", "--bake", "3", "--monitor", "1", "--json",
                      "--accept-inconclusive")
        time.sleep(2)
        after_switch = time.monotonic()
        time.sleep(2)
        outcome = json.loads(done.stdout)
        assert outcome["result"] == "succeeded", outcome
        assert [s["weights"] for s in outcome["steps"]] == [
            {"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 0, "green": 100}]
        assert "TTL guard" in done.stderr and "dns.max_ttl 60" in done.stderr, done.stderr
        assert outcome["drain"]["quiet"] is True, outcome["drain"]
        assert "blue drained" in done.stderr
        assert weights(dns) == {"blue": 0, "green": 100}
        assert clients.versions(started)["1.0.0"] and clients.versions(started)["1.1.0"], clients.versions()
        assert set(clients.versions(after_switch)) == {"1.1.0"}, clients.versions(after_switch)
        status = json.loads(dns.ok("status", ENV, "--json").stdout)
        assert status["live_color"] == "green" and status["file_matches_live"], status
        assert status["dns"]["propagation"]["expected_seconds"] == 61, status["dns"]

        dns.ok("rollback", ENV, "--yes", timeout=600)
        back = time.monotonic()
        time.sleep(3)
        assert weights(dns) == {"blue": 100, "green": 0}
        assert set(clients.versions(back + 1)) == {"1.0.0"}, clients.versions(back + 1)
    assert not clients.failures(), clients.failures()[:5]
    history = dns.ok("history", ENV).stderr + dns.ok("history", ENV).stdout
    assert "switch" in history and "rollback" in history


def test_a_live_ttl_above_the_guard_is_refused_with_how_to_lower_it(dns: Project) -> None:
    route53 = dns.aws(ENV).client("route53")
    zone = next(z for z in route53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"]
                if z["Name"].rstrip(".") == ZONE)
    before = record_sets(dns)
    long = [{"Action": "UPSERT", "ResourceRecordSet": {**r, "TTL": 86400}} for r in before]
    route53.change_resource_record_sets(HostedZoneId=zone["Id"], ChangeBatch={"Changes": long})
    try:
        done = dns.run("switch", ENV, "--yes", "--steps", "100")
        assert done.returncode == 1, done.stderr
        assert "86400 s" in done.stderr and "dns.max_ttl (60 s)" in done.stderr, done.stderr
        assert "Lower it first" in done.stderr and f"bgtool apply {ENV} --layer traffic" in done.stderr, done.stderr
        assert weights(dns) == {"blue": 100, "green": 0}  # nothing moved
    finally:
        dns.ok("apply", ENV, "--layer", "traffic", "--yes")
    assert {r["TTL"] for r in record_sets(dns)} == {1}


def test_a_ttl_above_the_guard_in_the_file_is_refused_before_anything_renders(dns: Project) -> None:
    path = dns.root / f"environments/{ENV}.yaml"
    original = path.read_text()
    edit_yaml(path, "ttl: 1 #", "ttl: 86400 #")
    try:
        main_tf = dns.root / f"build/{ENV}/traffic/main.tf"
        rendered = main_tf.read_text()
        done = dns.run("render", ENV)
        assert done.returncode == 1
        line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "ttl: 86400" in t)
        assert f"line {line}: dns.ttl: 86400 s is above the TTL guard" in done.stderr, done.stderr
        assert main_tf.read_text() == rendered
    finally:
        path.write_text(original)


def test_break_glass_moves_the_record_weights_by_api_and_terraform_leaves_no_drift(dns: Project) -> None:
    dns.ok("switch", ENV, "--yes", "--steps", "100", "--monitor", "0", "--accept-inconclusive", timeout=900)
    assert weights(dns) == {"blue": 0, "green": 100}
    done = dns.ok("rollback", ENV, "--yes", "--break-glass", "--json", timeout=900)
    doc = json.loads(done.stdout)
    assert doc["result"] == "succeeded" and doc["flip"] and doc["reconcile"]["ok"] is True, doc
    assert "break glass" in done.stderr
    assert weights(dns) == {"blue": 100, "green": 0}
    assert "active_color: blue" in (dns.root / f"environments/{ENV}.yaml").read_text()
    drift = dns.run("drift", ENV, "--json", timeout=900)
    assert drift.returncode == 0, drift.stdout[-3000:] + drift.stderr[-2000:]
