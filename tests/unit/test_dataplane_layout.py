"""The local data plane's pure decisions: weights, slots, ports, HAProxy configuration, health verdicts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bgtool.config.schema import LocalSettings
from bgtool.embedded.layout import (
    Files,
    Plan,
    ProcessView,
    ServerState,
    assign_slots,
    matcher_regex,
    plan,
    redirect_rule,
    render_config,
    runtime_commands,
    slot_count,
    spread,
)
from bgtool.embedded.model import (
    FixedResponse,
    Forward,
    HealthCheck,
    Instance,
    Listener,
    Redirect,
    Snapshot,
    Target,
    TargetGroup,
    TargetSpec,
    target_specs,
)
from bgtool.embedded.ports import PortClaims, allocate, candidates
from bgtool.embedded.targets import TargetProcess, command_for, health_verdict

LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/0123456789abcdef"
BLUE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-blue/1111111111111111"
GREEN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-green/2222222222222222"


def _snapshot(weights: tuple[int, int] = (100, 0), sticky: int = 0) -> Snapshot:
    health = HealthCheck(path="/health", interval=10, timeout=5, healthy=2, unhealthy=2, matcher="200")
    groups = {
        BLUE: TargetGroup(BLUE, "demo-blue", health, (Target("i-b1", 8000), Target("i-b2", 8000))),
        GREEN: TargetGroup(GREEN, "demo-green", health, (Target("i-g1", 8000), Target("i-g2", 8000))),
    }
    instances = {
        i: Instance(i, True, {"bgtool:env": "local", "bgtool:color": c, "bgtool:version": v})
        for i, c, v in (("i-b1", "blue", "1.0.0"), ("i-b2", "blue", "1.0.0"),
                        ("i-g1", "green", "1.1.0"), ("i-g2", "green", "1.1.0"))
    }
    forward = Forward(((BLUE, weights[0]), (GREEN, weights[1])), sticky)
    production = Listener("demo", LB, "demo.elb", 80, "HTTP", forward)
    test = Listener("demo", LB, "demo.elb", 8080, "HTTP", Forward(((GREEN, 1),)))
    return Snapshot((production, test), groups, instances)


PORTS = {"demo:80": 10080, "demo:8080": 18080}
PROCS = {"i-b1": ProcessView(40001, True), "i-b2": ProcessView(40002, True),
         "i-g1": ProcessView(40003, True), "i-g2": ProcessView(40004, True)}


def _weights(servers: dict[str, ServerState], backend_suffix: str, group: str) -> list[int]:
    return [s.weight for name, s in servers.items()
            if name.startswith("lb.") and name.split("/")[0].endswith(backend_suffix) and f"/{group}" in name]


def test_spread_gives_each_group_its_listener_share() -> None:
    weights = spread([(10, ["b1", "b2"]), (90, ["g1", "g2", "g3"])])
    blue = weights["b1"] + weights["b2"]
    total = sum(weights.values())
    assert abs(blue / total - 0.10) < 0.01
    assert max(weights.values()) == 256
    assert weights["b1"] == weights["b2"] and weights["g1"] == weights["g3"]


def test_spread_zero_weight_and_empty_groups_get_nothing() -> None:
    weights = spread([(0, ["b1"]), (100, ["g1"]), (50, [])])
    assert weights == {"b1": 0, "g1": 256}
    assert spread([(0, ["b1"])]) == {"b1": 0}


def test_spread_keeps_a_tiny_share_above_zero() -> None:
    weights = spread([(1, ["b1", "b2", "b3", "b4"]), (999, ["g1"])])
    assert weights["b1"] == 1 and weights["g1"] == 256


def test_slots_stay_put_and_newcomers_take_free_ones() -> None:
    first = assign_slots({}, {"tg": ["a", "b"]})
    assert first == {"tg": {"a": 0, "b": 1}}
    second = assign_slots(first, {"tg": ["b", "c", "d"]})
    assert second["tg"]["b"] == 1 and {second["tg"]["c"], second["tg"]["d"]} == {0, 2}


def test_slot_count_grows_in_powers_of_two_and_never_shrinks() -> None:
    assert slot_count(0, 1) == 4
    assert slot_count(4, 4) == 8
    assert slot_count(8, 0) == 8


def test_plan_weights_follow_the_listener() -> None:
    p = plan(_snapshot((10, 90)), PORTS, PROCS, {}, {})
    blue, green = _weights(p.servers, ".80", "demo-blue"), _weights(p.servers, ".80", "demo-green")
    assert abs(sum(blue) / (sum(blue) + sum(green)) - 0.10) < 0.01
    assert sorted(blue) == [0, 0, 28, 28]  # two targets, two empty slots
    test_blue = _weights(p.servers, ".8080", "demo-blue")
    assert test_blue == [] and sum(_weights(p.servers, ".8080", "demo-green")) > 0


def test_plan_moves_a_down_targets_share_to_its_healthy_sibling() -> None:
    p = plan(_snapshot((50, 50)), PORTS, PROCS, {(BLUE, "i-b1"): False}, {})
    slots = p.slots[BLUE]
    blue_servers = {name: s.weight for name, s in p.servers.items() if name.startswith("lb.")
                    and name.endswith((f"demo-blue.{_hash(BLUE)}.{slots['i-b1']}", f".{slots['i-b2']}"))
                    and ".80/" in name}
    weights = list(blue_servers.values())
    assert 0 in weights and 256 in weights  # i-b1 gets nothing, i-b2 the whole blue half


def _hash(arn: str) -> str:
    import hashlib

    return hashlib.sha1(arn.encode()).hexdigest()[:6]


def test_plan_without_a_running_process_points_the_slot_nowhere() -> None:
    procs = {k: v for k, v in PROCS.items() if k != "i-g2"}
    p = plan(_snapshot(), PORTS, procs, {}, {})
    assert "i-g2" not in p.slots[GREEN]
    ready = [s for name, s in p.servers.items() if name.startswith("tg.demo-green") and s.ready]
    assert len(ready) == 1


def test_plan_keeps_a_draining_instance_in_its_slot_without_weight() -> None:
    first = plan(_snapshot(), PORTS, PROCS, {}, {})
    snap = _snapshot()
    groups = dict(snap.target_groups)
    groups[BLUE] = TargetGroup(BLUE, "demo-blue", groups[BLUE].health, (Target("i-b2", 8000),))
    draining = {**PROCS, "i-b1": ProcessView(40001, True, draining=True)}
    second = plan(Snapshot(snap.listeners, groups, snap.instances), PORTS, draining, {}, first.slots, first.layout)
    assert second.slots[BLUE]["i-b1"] == first.slots[BLUE]["i-b1"]
    owner = next(name for name, o in second.owners.items() if o.instance_id == "i-b1" and ".80/" in name)
    assert second.servers[owner].weight == 0
    assert second.layout == first.layout  # no reload for a deregistration


def test_plan_shape_changes_only_with_listeners_or_groups() -> None:
    first = plan(_snapshot((100, 0)), PORTS, PROCS, {}, {})
    second = plan(_snapshot((0, 100)), PORTS, PROCS, {}, first.slots, first.layout)
    assert first.layout == second.layout
    commands = runtime_commands(first.servers, second.servers)
    assert commands and all(c.startswith("set server lb.") and " weight " in c for c in commands)
    sticky = plan(_snapshot((0, 100), sticky=600), PORTS, PROCS, {}, first.slots, first.layout)
    assert sticky.layout != first.layout


def test_runtime_commands_point_then_weigh_then_enable() -> None:
    before = {"tg.x/s0": ServerState(1), "lb.y/x.0": ServerState(1)}
    after = {"tg.x/s0": ServerState(4000, ready=True), "lb.y/x.0": ServerState(4000, weight=256)}
    assert runtime_commands(before, after) == [
        "set server tg.x/s0 addr 127.0.0.1 port 4000",
        "set server lb.y/x.0 addr 127.0.0.1 port 4000",
        "set server lb.y/x.0 weight 256",
        "set server tg.x/s0 state ready",
    ]
    assert runtime_commands(after, after) == []


def test_matcher_regex() -> None:
    assert matcher_regex("200") == "^(200)$"
    assert matcher_regex("200,204") == "^(200|204)$"
    assert matcher_regex("200-202") == "^(200|201|202)$"


def test_redirect_to_a_sibling_listener_stays_on_loopback() -> None:
    listener = Listener("demo", LB, "demo.elb", 80, "HTTP", Redirect(protocol="HTTPS", port="443"))
    assert redirect_rule(Redirect(protocol="HTTPS", port="443"), listener, {"demo:443": 10443}) == \
        "prefix http://127.0.0.1:10443 code 301"
    assert redirect_rule(Redirect(protocol="HTTPS", host="example.com", port="443", status=302), listener, {}) == \
        "prefix https://example.com:443 code 302"


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")
def test_rendered_configuration_is_valid_for_haproxy(tmp_path: Path) -> None:
    snap = _snapshot((10, 90), sticky=300)
    redirect = Listener("demo", LB, "demo.elb", 81, "HTTP", Redirect(protocol="HTTPS", port="80"))
    fixed = Listener("demo", LB, "demo.elb", 82, "HTTP", FixedResponse(503, "text/plain", 'down "for" now'))
    snap = Snapshot((*snap.listeners, redirect, fixed), snap.target_groups, snap.instances)
    p = plan(snap, {**PORTS, "demo:81": 10081, "demo:82": 10082}, PROCS, {}, {})
    text = render_config(p.layout, p.servers, Files(str(tmp_path / "admin.sock"), str(tmp_path / "state")))
    (tmp_path / "haproxy.cfg").write_text(text)
    done = subprocess.run([HAPROXY, "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "bind 127.0.0.1:10080" in text and "bind 127.0.0.1:18080" in text
    assert "cookie AWSALB insert" in text and "http-check send meth GET uri /health" in text
    assert "inter 10s fastinter 1s fall 2 rise 2" in text
    assert "http-request redirect prefix http://127.0.0.1:10080 code 301" in text
    assert 'http-request return status 503 content-type "text/plain" string "down \\"for\\" now"' in text


def test_port_allocation_prefers_the_derived_port_and_keeps_known_ones() -> None:
    assert next(candidates(80, "x")) == 10080
    free = {10080: False}
    got = allocate([("a:80", 80), ("a:8080", 8080)], {"a:8080": 23456}, "seed", free=lambda p: free.get(p, True))
    assert got["a:8080"] == 23456
    assert got["a:80"] != 10080 and 10000 <= got["a:80"] < 60000
    held = allocate([("a:80", 80)], {"a:80": 10080}, "seed", free=lambda p: False, held=frozenset({10080}))
    assert held == {"a:80": 10080}


def test_port_allocation_never_hands_out_one_port_twice() -> None:
    got = allocate([("a:80", 80), ("b:80", 80)], {}, "seed", free=lambda p: True)
    assert got["a:80"] == 10080 and got["b:80"] != 10080


def test_target_specs_come_from_instance_tags() -> None:
    specs = target_specs(_snapshot())
    assert specs["i-g1"] == TargetSpec("i-g1", "local", "green", "1.1.0", "/health")
    snap = _snapshot()
    stopped = {**snap.instances, "i-b1": Instance("i-b1", False, snap.instances["i-b1"].tags)}
    assert "i-b1" not in target_specs(Snapshot(snap.listeners, snap.target_groups, stopped))


def test_app_command_placeholders_cannot_inject_arguments() -> None:
    spec = TargetSpec("i-1", "local", "blue", "1.0.0;rm -rf x", "/health")
    argv = command_for("my-app --port {port} --tag 'v {version}'", spec, 4000, None)
    assert argv == ["my-app", "--port", "4000", "--tag", "v 1.0.0;rm -rf x"]
    default = command_for(None, spec, 4000, Path("/f.json"))
    assert default[1:3] == ["-m", "bgtool.embedded.sampleapp"] and default[-2:] == ["--fault-file", "/f.json"]


def test_app_command_is_validated() -> None:
    with pytest.raises(ValueError, match="needs the \\{port\\} placeholder"):
        LocalSettings(app_command="my-app --version {version}")
    with pytest.raises(ValueError, match="unknown placeholder \\{host\\}"):
        LocalSettings(app_command="my-app {port} {host}")
    with pytest.raises(ValueError, match="cannot be split"):
        LocalSettings(app_command="my-app '{port}")


def _target(ready: bool = True, problem: str = "", alive: bool = True, seen_up: bool = True) -> TargetProcess:
    t = TargetProcess(TargetSpec("i-1", "local", "blue", "1", "/health"), 4000, Path("/l.log"), Path("/p.json"), [],
                      ready=ready, problem=problem, ready_at=100.0, seen_up=seen_up)

    class _Proc:
        pid = 1

        def poll(self) -> int | None:
            return None if alive else 1

    t.proc = _Proc()  # type: ignore[assignment]
    return t


def test_health_verdicts_use_aws_reasons() -> None:
    assert health_verdict(None, "UP", "L7OK", "200", "") is None
    assert health_verdict(_target(ready=False), "MAINT", "", "", "")[:2] == ("initial", "Elb.RegistrationInProgress")
    assert health_verdict(_target(), "UP", "L7OK", "200", "") == ("healthy", "", "")
    assert health_verdict(_target(), "UP 1/2", "INI", "", "")[0] == "initial"
    assert health_verdict(_target(), "DOWN", "L7STS", "500", "")[:3] == (
        "unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]")
    dead = health_verdict(_target(problem="exited with code 1; see /l.log", alive=False), "DOWN", "L4CON", "", "")
    assert dead[:2] == ("unhealthy", "Target.FailedHealthChecks") and "/l.log" in dead[2]
    assert health_verdict(_target(), "DOWN", "L4TOUT", "", "")[1] == "Target.Timeout"


def test_a_new_target_is_initial_until_checked_then_judged() -> None:
    new = _target(seen_up=False)
    assert health_verdict(new, "UP", "INI", "", "", now=101)[0] == "initial"
    new.first_check_ok = True  # the supervisor's own first request answered
    assert health_verdict(new, "UP", "INI", "", "", now=101)[0] == "healthy"
    assert health_verdict(new, "DOWN", "L4CON", "", "", now=101)[0] == "initial"  # a leftover result, fresh
    assert health_verdict(new, "DOWN", "L7OK", "200", "", now=200)[0] == "initial"  # rising
    assert health_verdict(new, "DOWN", "L7STS", "500", "", now=200)[:2] == ("unhealthy", "Target.ResponseCodeMismatch")


def test_missing_haproxy_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from bgtool.embedded import haproxy
    from bgtool.errors import BgtoolError

    monkeypatch.setattr(haproxy, "find_haproxy", lambda: None)
    monkeypatch.setattr(haproxy.shutil, "which", lambda name: None)
    with pytest.raises(BgtoolError) as err:
        haproxy.ensure_haproxy(install=True)
    assert "HAProxy is not installed" in err.value.message and "'haproxy' package" in (err.value.hint or "")


def test_parse_stat_reads_server_rows() -> None:
    from bgtool.embedded.haproxy import parse_stat

    header = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,check_status,check_code,check_desc,last_chk\n"
    rows = ("tg.a,s0,0,0,2,3,,10,UP,L7OK,200,Layer7 check passed,OK\n"
            "tg.a,s1,0,0,0,0,,0,DOWN,L7STS,500,Layer7 wrong status,Internal\n"
            "tg.a,BACKEND,0,0,2,3,,10,UP,,,,\n")
    stats = parse_stat(header + rows)
    assert set(stats) == {"tg.a/s0", "tg.a/s1"}
    assert stats["tg.a/s1"].status == "DOWN" and stats["tg.a/s1"].check_code == "500"
    assert stats["tg.a/s0"].scur == 2


def test_supervisor_reports_a_command_that_exits_at_once(tmp_path: Path) -> None:
    import sys
    import time

    from bgtool.embedded.targets import Supervisor

    spec = TargetSpec("i-x", "local", "blue", "1.0.0", "/health")
    sup = Supervisor(tmp_path, lambda s, port: [sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path)
    sup.sync({"i-x": spec}, time.monotonic())
    deadline = time.monotonic() + 10
    while not sup.targets["i-x"].problem and time.monotonic() < deadline:
        sup.sync({"i-x": spec}, time.monotonic())
        time.sleep(0.05)
    target = sup.targets["i-x"]
    assert "exited at start with code 3" in target.problem and str(tmp_path / "i-x.log") in target.problem
    assert health_verdict(target, "MAINT", "", "", "")[:2] == ("unhealthy", "Target.FailedHealthChecks")
    sup.stop_all()
    assert not (tmp_path / "i-x.json").exists()


def test_two_processes_started_in_one_tick_never_get_the_same_port(tmp_path: Path) -> None:
    """The kernel may give the same free port to two calls in a row; the second process would not bind."""
    import sys

    from bgtool.embedded.targets import Supervisor, free_port

    first = free_port()
    assert all(free_port({first}) != first for _ in range(50))
    sup = Supervisor(tmp_path, lambda s, port: [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path)
    specs = {f"i-{n}": TargetSpec(f"i-{n}", "local", "green", "1.0.0", "/health") for n in range(12)}
    try:
        sup.sync(specs, 0.0)
        ports = [t.port for t in sup.targets.values()]
        assert len(ports) == 12 and len(set(ports)) == 12
    finally:
        sup.stop_all()


INJECTED = "\n    server evil 10.0.0.1:80\n#"


def _rendered(p: Plan, tmp_path: Path) -> str:
    return render_config(p.layout, p.servers, Files(str(tmp_path / "admin.sock"), str(tmp_path / "state")))


def test_a_target_group_aws_could_not_hold_is_left_out_with_the_reason(tmp_path: Path) -> None:
    snap = _snapshot()
    bad = TargetGroup(GREEN, "demo-green" + INJECTED, snap.target_groups[GREEN].health,
                      snap.target_groups[GREEN].targets)
    p = plan(Snapshot(snap.listeners, {BLUE: snap.target_groups[BLUE], GREEN: bad}, snap.instances), PORTS, PROCS,
             {}, {})
    text = _rendered(p, tmp_path)
    assert "evil" not in text and "tg.demo-blue" in text
    assert len(p.problems) == 1 and "target group 'demo-green\\n" in p.problems[0]
    assert "1-32 letters, digits and '-'" in p.problems[0]


@pytest.mark.parametrize("path", ["/health check", "/health\n    server evil 10.0.0.1:80", '/x"', "/x#y"])
def test_a_health_check_path_with_space_newline_quote_or_hash_is_refused(path: str, tmp_path: Path) -> None:
    snap = _snapshot()
    group = snap.target_groups[BLUE]
    bad = TargetGroup(BLUE, group.name, HealthCheck(path=path), group.targets)
    p = plan(Snapshot(snap.listeners, {**snap.target_groups, BLUE: bad}, snap.instances), PORTS, PROCS, {}, {})
    assert "evil" not in _rendered(p, tmp_path) and "tg.demo-blue" not in _rendered(p, tmp_path)
    assert "health check path" in p.problems[0]


@pytest.mark.parametrize(("host", "protocol", "why"), [
    ("example.com" + INJECTED, "HTTPS", "redirect host"),
    ("example.com code 302", "HTTPS", "redirect host"),
    ("#{host}", "HTTPS code 302", "redirect protocol"),
    ("#{host}", "FTP", "redirect protocol"),
])
def test_a_redirect_aws_could_not_hold_is_left_out(host: str, protocol: str, why: str, tmp_path: Path) -> None:
    snap = _snapshot()
    redirect = Listener("demo", LB, "demo.elb", 81, "HTTP", Redirect(protocol=protocol, host=host, port="443"))
    p = plan(Snapshot((*snap.listeners, redirect), snap.target_groups, snap.instances), {**PORTS, "demo:81": 10081},
             PROCS, {}, {})
    text = _rendered(p, tmp_path)
    assert "evil" not in text and "code 302" not in text and "http-request redirect" not in text
    assert len(p.problems) == 1 and why in p.problems[0] and "listener 'demo':81" in p.problems[0]


def test_what_aws_allows_passes_unchanged() -> None:
    snap = _snapshot()
    redirect = Listener("demo", LB, "demo.elb", 81, "HTTP", Redirect(protocol="HTTPS", host="www.example.com"))
    p = plan(Snapshot((*snap.listeners, redirect), snap.target_groups, snap.instances), {**PORTS, "demo:81": 10081},
             PROCS, {}, {})
    assert p.problems == [] and len(p.layout.frontends) == 3


def test_a_port_claimed_by_one_data_plane_is_not_free_for_another(tmp_path: Path) -> None:
    """Two data planes starting at once both find 10080 free (HAProxy's SO_REUSEPORT would even let
    both bind it): only the first claim holds, the second data plane walks on to another port."""
    first, second = PortClaims(tmp_path), PortClaims(tmp_path)
    assert first.claim(10080) and first.claim(10080)
    assert not second.claim(10080)
    ours = allocate([("lb:80", 80)], {}, "project-b", free=second.claim)
    assert ours["lb:80"] != 10080 and ours["lb:80"] in second.held
    for fd in first.held.values():  # the first daemon exits: its claims go with it
        os.close(fd)
    assert second.claim(10080)
