"""DNS mode without AWS: the schema's refusals, the TTL guard's arithmetic, the drain watch, the data
plane's plan for a weighted name, and a switch through a DNS-like router (guard, longer bakes, drain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bgtool.config.schema import Color, DnsSettings, load_environment
from bgtool.embedded.layout import Files as ConfigFiles
from bgtool.embedded.layout import dns_key, plan, render_config, runtime_commands
from bgtool.embedded.model import Forward, HealthCheck, Listener, Snapshot, TargetGroup, WeightedRecord
from bgtool.errors import BgtoolError, ConfigError
from bgtool.events import Note
from bgtool.release.switch import Switch, SwitchPlan
from bgtool.traffic.dns import (
    DrainSample,
    bake_for,
    drained,
    effective_ttl,
    flipped_record,
    propagation,
    record_ttl,
    record_weights,
    ttl_refusal,
    watch_drain,
)
from bgtool.traffic.weights import Weights
from tests.helpers import copy_project, edit_yaml
from tests.unit.test_switch_driver import FakeIO, FakeRouter


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


def problems(project: Path, env: str = "local-dns") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_environment(project, env)
    return info.value.problems


def line_of(project: Path, text: str, env: str = "local-dns") -> int:
    return next(i for i, t in enumerate((project / f"environments/{env}.yaml").read_text().splitlines(), 1)
                if text in t)


# -- the schema ---------------------------------------------------------------------------------


def test_the_example_dns_environment_is_valid(project: Path) -> None:
    config = load_environment(project, "local-dns").config
    assert config.traffic.mode == "dns" and config.dns is not None
    assert config.dns.record == "app.bgtool.test" and config.dns.effective_ttl == 1


def test_a_ttl_of_a_day_is_refused_with_how_to_lower_it(project: Path) -> None:
    edit_yaml(project / "environments/local-dns.yaml", "ttl: 1 #", "ttl: 86400 #")
    (msg,) = problems(project)
    assert msg.startswith(f"line {line_of(project, 'ttl: 86400')}: dns.ttl: 86400 s is above the TTL guard")
    assert "dns.max_ttl (60 s)" in msg and "Lower it first" in msg and "set dns.ttl to 60 or less" in msg


def test_the_guard_itself_cannot_be_raised_to_a_day(project: Path) -> None:
    edit_yaml(project / "environments/local-dns.yaml", "max_ttl: 60 #", "max_ttl: 86400 #")
    msgs = problems(project)
    assert any(m.startswith(f"line {line_of(project, 'max_ttl: 86400')}: dns.max_ttl") and "3600" in m
               for m in msgs), msgs


def test_a_record_outside_the_zone_is_refused(project: Path) -> None:
    edit_yaml(project / "environments/local-dns.yaml", "record: app.bgtool.test", "record: app.example.com")
    (msg,) = problems(project)
    assert msg.startswith(f"line {line_of(project, 'record: app.example.com')}: dns.record:")
    assert "outside the zone 'bgtool.test'" in msg and "ending in .bgtool.test" in msg


def test_a_name_that_only_ends_like_the_zone_is_outside_it() -> None:
    with pytest.raises(ValueError, match="outside the zone"):
        DnsSettings(zone="bgtool.test", record="appbgtool.test")
    assert DnsSettings(zone="bgtool.test", record="App.Bgtool.Test.").record == "app.bgtool.test"


def test_dns_mode_without_the_dns_section_is_refused(project: Path) -> None:
    text = (project / "environments/local-dns.yaml").read_text()
    start, end = text.index("dns:\n  zone:"), text.index("traffic:\n")
    (project / "environments/local-dns.yaml").write_text(text[:start] + text[end:])
    (msg,) = problems(project)
    assert msg.startswith(f"line {line_of(project, 'traffic:')}: traffic: mode dns needs a 'dns' section")
    assert "'zone' and 'record'" in msg


def test_a_dns_section_in_listener_mode_is_refused(project: Path) -> None:
    edit_yaml(project / "environments/local-dns.yaml", "  mode: dns\n", "")
    (msg,) = problems(project)
    assert "traffic: mode listener does not use the 'dns' section" in msg


WORKERS = "workers:\n  command: python3 -m worker --queue {queue_url}\n  queue: orders\n  size: 2\n  max_size: 4\n"


def test_workers_need_a_queue_and_a_size_within_max_size(project: Path) -> None:
    path = project / "environments/local-dns.yaml"
    edit_yaml(path, "retention_hours: 24\n", "retention_hours: 24\n" + WORKERS)
    config = load_environment(project, "local-dns").config
    assert config.workers is not None and config.workers.handover == "overlap" and config.workers.size == 2
    edit_yaml(path, "  queue: orders\n", "")
    edit_yaml(path, "  size: 2\n", "  size: 5\n")
    msgs = problems(project)
    assert any(m.startswith(f"line {line_of(project, 'workers:')}: workers.queue: required key is missing")
               for m in msgs), msgs
    edit_yaml(path, "  command:", "  queue: orders\n  command:")
    (msg,) = problems(project)
    assert "workers: size 5 is above max_size 4" in msg


def test_a_worker_command_with_an_unknown_placeholder_is_refused(project: Path) -> None:
    edit_yaml(project / "environments/local-dns.yaml", "retention_hours: 24\n",
              "retention_hours: 24\n" + WORKERS.replace("{queue_url}", "{queue}"))
    (msg,) = problems(project)
    assert "workers.command: unknown placeholder {queue}" in msg and "{queue_url}" in msg


# -- the TTL guard ------------------------------------------------------------------------------

SETTINGS = DnsSettings(zone="example.com", record="app.example.com", ttl=30, max_ttl=60, bake_ttl_multiple=2)


def test_an_alias_answers_with_sixty_seconds_and_a_cname_with_its_ttl() -> None:
    alias = {"Name": "app.example.com.", "AliasTarget": {"DNSName": "lb"}, "SetIdentifier": "blue"}
    cname = {"Name": "app.example.com.", "TTL": 300, "SetIdentifier": "green"}
    assert record_ttl(alias) == 60 and record_ttl(cname) == 300
    assert effective_ttl([alias, cname], SETTINGS) == 300  # caches hold the longest
    assert effective_ttl([], SETTINGS) == 30


def test_a_live_ttl_above_the_guard_is_refused_until_lowered_and_waited_out() -> None:
    assert ttl_refusal("prod", SETTINGS, 60) is None
    refusal = ttl_refusal("prod", SETTINGS, 86400)
    assert refusal is not None and "TTL of 86400 s" in refusal and "dns.max_ttl (60 s)" in refusal
    assert "the file's dns.ttl is already lower: apply it with 'bgtool apply prod --layer traffic'" in refusal
    assert "wait 86400 s (24 h) (the old TTL)" in refusal
    alias = DnsSettings(zone="example.com", record="app.example.com", max_ttl=30)
    refusal = ttl_refusal("prod", alias, 60)
    assert refusal is not None and "set dns.ttl to 30 or less in environments/prod.yaml" in refusal


def test_each_step_bakes_at_least_the_multiple_of_the_ttl() -> None:
    assert bake_for(2, ttl=60, multiple=2) == 120
    assert bake_for(300, ttl=60, multiple=2) == 300
    assert bake_for(0, ttl=1, multiple=2.5) == 2.5


def test_the_old_color_is_quiet_at_a_small_share_or_after_a_silent_window() -> None:
    assert drained(DrainSample(5, old_requests=1, new_requests=199), percent=1, window=20)
    assert not drained(DrainSample(5, old_requests=3, new_requests=97), percent=1, window=20)
    assert not drained(DrainSample(5, 0, 0), percent=1, window=20)
    assert drained(DrainSample(20, 0, 0), percent=1, window=20)


def test_the_drain_is_watched_until_quiet_and_its_time_reported() -> None:
    now = [100.0]
    shares = iter([(40, 60), (10, 90), (0, 100)])

    def read(elapsed: float) -> DrainSample:
        old, new = next(shares)
        return DrainSample(elapsed, old, new)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    settings = DnsSettings(zone="example.com", record="app.example.com", drain_timeout_seconds=600)
    report = watch_drain(read, settings, window=20, poll=5, sleep=sleep, clock=lambda: now[0], started=97.0)
    assert report.quiet and report.polls == 3 and report.seconds == 13
    assert report.describe("blue") == "blue drained: 0.0% of requests 13s after the last step"


def test_a_drain_that_never_ends_is_reported_at_the_timeout() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    settings = DnsSettings(zone="example.com", record="app.example.com", drain_timeout_seconds=30)
    report = watch_drain(lambda e: DrainSample(e, 5, 95), settings, 20, 10, sleep, lambda: now[0], 0.0)
    assert not report.quiet and report.seconds == 30 and report.to_dict()["old_share_percent"] == 5.0
    assert "still had 5.0% of requests 30s after the last step" in report.describe("blue")


def test_status_expects_propagation_one_ttl_after_route53() -> None:
    changed = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    doc = propagation(60, changed.isoformat(), changed + timedelta(seconds=30), route53_seconds=60)
    assert doc["expected_seconds"] == 120 and doc["complete"] is False and doc["seconds_left"] == 90
    assert doc["complete_at"] == "2026-01-01T12:02:00+00:00"
    assert propagation(60, changed.isoformat(), changed + timedelta(seconds=121))["complete"] is True
    assert propagation(60, None, changed)["complete"] is True


def test_record_weights_and_the_break_glass_record() -> None:
    sets = [{"Name": "a.", "SetIdentifier": "blue", "Weight": 90, "TTL": 1, "ResourceRecords": [{"Value": "x"}]},
            {"Name": "a.", "SetIdentifier": "green", "Weight": 10, "TTL": 1, "ResourceRecords": [{"Value": "y"}]}]
    assert record_weights(sets) == Weights(90, 10)
    assert record_weights(sets[:1]) is None
    flipped = [flipped_record(r, Color.BLUE) for r in sets]
    assert [r["Weight"] for r in flipped] == [100, 0] and flipped[1]["ResourceRecords"] == [{"Value": "y"}]


# -- the data plane serves the weighted name per connection -------------------------------------


def snapshot(blue: int, green: int) -> Snapshot:
    def listener(color: str) -> Listener:
        return Listener(f"env-{color}", f"arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/env-{color}/1",
                        f"env-{color}-1.us-east-1.elb.amazonaws.com", 80, "HTTP",
                        Forward(((f"arn:tg/{color}", 1),)))
    groups = {f"arn:tg/{c}": TargetGroup(f"arn:tg/{c}", f"env-{c}", HealthCheck()) for c in ("blue", "green")}
    records = (WeightedRecord("app.example.com", "blue", blue, "env-blue-1.us-east-1.elb.amazonaws.com"),
               WeightedRecord("app.example.com", "green", green, "env-green-1.us-east-1.elb.amazonaws.com"))
    return Snapshot((listener("blue"), listener("green")), groups, {}, records)


PORTS = {"env-blue:80": 10080, "env-green:80": 10081, dns_key("app.example.com", 80): 10090}


def test_the_weighted_name_is_a_tcp_frontend_over_the_colors_load_balancers() -> None:
    wanted = plan(snapshot(90, 10), PORTS, {}, {}, {})
    fe = next(f for f in wanted.layout.frontends if f.listener_key == dns_key("app.example.com", 80))
    assert fe.local_port == 10090 and fe.tcp
    backend = fe.backend
    assert wanted.servers[f"{backend}/r.blue"].port == 10080 and wanted.servers[f"{backend}/r.blue"].weight == 90
    assert wanted.servers[f"{backend}/r.green"].port == 10081 and wanted.servers[f"{backend}/r.green"].weight == 10
    text = render_config(wanted.layout, wanted.servers, ConfigFiles("/tmp/s", "/tmp/st"))
    block = text[text.index(f"backend {backend}"):]
    assert "mode tcp" in block and "server r.green 127.0.0.1:10081 weight 10" in block


def test_a_weight_change_is_a_runtime_command_not_a_reload() -> None:
    before = plan(snapshot(90, 10), PORTS, {}, {}, {})
    after = plan(snapshot(0, 100), PORTS, {}, {}, {}, before.layout)
    assert after.layout == before.layout
    commands = runtime_commands(before.servers, after.servers)
    backend = next(f.backend for f in after.layout.frontends if f.tcp)
    assert commands == [f"set server {backend}/r.blue weight 0", f"set server {backend}/r.green weight 100"]


# -- a switch through a router whose changes reach clients as caches expire ---------------------


class FakeDnsRouter(FakeRouter):
    mode = "dns"

    def __init__(self, start: Weights, ttl: int) -> None:
        super().__init__(start)
        self.ttl = ttl
        self.drained_since: object = None

    def guard(self) -> str:
        refusal = ttl_refusal("local", SETTINGS, self.ttl)
        if refusal:
            raise BgtoolError(refusal)
        return f"TTL guard: TTL {self.ttl} s"

    def bake_seconds(self, requested: float) -> float:
        return bake_for(requested, self.ttl, 2)

    def drain(self, old: Color, since: object, poll: float, sleep: object, clock: object) -> object:
        from bgtool.traffic.dns import DrainReport

        self.drained_since = since
        return DrainReport(True, 42.0, DrainSample(42.0, 0, 50), 3)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = copy_project(tmp_path_factory.mktemp("project"))
    return load_environment(Path(root), "local").config


def drive(io: FakeIO, bake: float) -> tuple[object, list[float]]:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    plan_ = SwitchPlan(to=Color.GREEN, steps=[10, 100], bake_seconds=bake, monitor_seconds=0, poll_seconds=5)
    outcome = Switch(None, plan_, lambda q: True, io=io, sleep=sleep, clock=lambda: now[0]).run()
    return outcome, slept


def test_a_switch_bakes_each_step_for_two_ttls_and_reports_the_drain(config) -> None:  # type: ignore[no-untyped-def]
    router = FakeDnsRouter(Weights(100, 0), ttl=30)
    io = FakeIO(config, router)
    outcome, slept = drive(io, bake=2)
    assert outcome.result == "succeeded", outcome.reason
    assert sum(slept) == 60 + 60  # bake of step 1 and the monitor at 100%: 2 x TTL each, not 2 s and 0 s
    assert outcome.drain == {"quiet": True, "seconds": 42.0, "polls": 3, "old_requests": 0, "new_requests": 50,
                             "old_share_percent": 0.0}
    assert io.records[-1].details["drain"]["seconds"] == 42.0
    notes = [e.text for e in io.events.of(Note)]
    assert "TTL guard: TTL 30 s" in notes and "blue drained: 0.0% of requests 42s after the last step" in notes
    assert any("bake 60s instead of 2s" in n for n in notes)


def test_a_switch_above_the_guard_is_refused_before_traffic_moves(config) -> None:  # type: ignore[no-untyped-def]
    router = FakeDnsRouter(Weights(100, 0), ttl=86400)
    io = FakeIO(config, router)
    outcome, _ = drive(io, bake=2)
    assert outcome.result == "failed" and "TTL of 86400 s" in outcome.reason
    assert router.applied == [] and router.flips == [] and io.written == []
    assert outcome.drain == {}
