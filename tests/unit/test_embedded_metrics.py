"""HAProxy `show stat` CSV to target group metrics, on real HAProxy 2.6 output (tests/data/haproxy)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bgtool.embedded.metrics import (
    HEALTHY,
    REQUEST_COUNT,
    RESPONSE_TIME,
    TARGET_5XX,
    UNHEALTHY,
    WINDOW,
    Sample,
    ServerInfo,
    ServerStats,
    StatsFormatError,
    estimate_response_time,
    parse_show_stat,
    samples_of,
    server_delta,
    statistic,
    statistic_values,
    target_group_samples,
    target_health,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "haproxy"
LB = "app/web/50dc6c495c0c9188"
BLUE, GREEN = "targetgroup/web-blue/73e2d6bc24d8a067", "targetgroup/web-green/2453ed029918f21f"


def stats(name: str) -> dict[str, ServerStats]:
    return parse_show_stat((DATA / f"show-stat-{name}.csv").read_text())


def info(tg: str, instance: str, color: str) -> ServerInfo:
    return ServerInfo(lb_arn_suffix=LB, tg_arn_suffix=tg, env="local", color=color, instance_id=instance)


SERVERS = {
    "l-80/i-blue1": info(BLUE, "i-blue1", "blue"),
    "l-80/i-green1": info(GREEN, "i-green1", "green"),
    "l-80/i-gone": info(BLUE, "i-gone", "blue"),
    "l-8080/i-green1": info(GREEN, "i-green1", "green"),
    "l-8080/i-blue1": info(BLUE, "i-blue1", "blue"),
}


def test_parses_server_rows_only() -> None:
    rows = stats("errors")
    assert sorted(rows) == ["l-80/i-blue1", "l-80/i-gone", "l-80/i-green1", "l-8080/i-blue1", "l-8080/i-green1"]
    green = rows["l-80/i-green1"]
    assert (green.requests, green.http_5xx, green.health) == (20, 5, "healthy")
    assert rows["l-8080/i-green1"].http_5xx == 2


def test_health_and_reasons_come_from_the_checks() -> None:
    rows = stats("errors")
    assert rows["l-80/i-gone"].health == "unhealthy"
    assert rows["l-80/i-gone"].reason == "Layer4 connection problem: Connection refused (L4CON)"
    assert rows["l-8080/i-blue1"].health == "unused"  # in maintenance: not a target of that listener
    down = stats("down")
    assert down["l-80/i-green1"].health == "unhealthy"
    assert down["l-80/i-green1"].reason == "Layer7 invalid response (L7RSP)"
    assert stats("warm")["l-8080/i-green1"].health == "healthy"  # "UP 1/2": failing, not failed yet


@pytest.mark.parametrize(("text", "message"), [
    ("Unknown command: 'show stats'\n", "not HAProxy `show stat` CSV"),
    ("", "not HAProxy `show stat` CSV"),
    ("# pxname,svname,type\nweb,s1,2\n", "lacks the columns req_tot, hrsp_5xx, rtime, status"),
])
def test_rejects_what_is_not_show_stat(text: str, message: str) -> None:
    with pytest.raises(StatsFormatError, match=message):
        parse_show_stat(text)


def test_response_time_of_real_requests_between_two_snapshots() -> None:
    # 20 requests at +0.2 s after 618 fast ones: rtime moved from 10 to 18 ms only, the estimate finds 0.2 s.
    before, after = stats("warm")["l-8080/i-green1"], stats("latency")["l-8080/i-green1"]
    assert (before.rtime_ms, after.rtime_ms) == (10, 18)
    delta = server_delta(before, after)
    assert delta.requests == 20
    assert delta.response_time == pytest.approx(0.21, abs=0.03)


def haproxy_window(latencies_ms: list[int], count: int = 0, total: int = 0) -> tuple[int, int, int]:
    """HAProxy 2.6's recurrence (stream.c swrate_add_dynamic, stats.c swrate_avg), in integers."""
    for v in latencies_ms:
        count += 1
        n = WINDOW if count > WINDOW else 0
        total = total + v - ((total + n - 1) // n if n else 0)
    window = count if 0 < count < WINDOW else WINDOW
    return count, total, (total + window - 1) // window


def server(count: int, avg: int, max_ms: int = 10_000) -> ServerStats:
    return ServerStats("b/s", requests=count, http_5xx=0, rtime_ms=avg, rtime_max_ms=max_ms, status="UP")


@pytest.mark.parametrize(("warm", "burst", "mean_ms", "tolerance_ms"), [
    (0, 10, 300, 1),  # plain average regime
    (200, 10, 800, 25),
    (500, 40, 1200, 20),  # crosses the 512 boundary
    (5000, 10, 2000, 60),  # decaying regime: error ~512 ms / requests
    (5000, 100, 150, 8),
])
def test_estimate_recovers_the_mean_of_haproxys_hidden_window(warm: int, burst: int, mean_ms: int,
                                                              tolerance_ms: float) -> None:
    rng = random.Random(warm + burst)
    count, total, avg = haproxy_window([rng.randint(1, 30) for _ in range(warm)])
    burst_ms = [max(0, mean_ms + rng.randint(-20, 20)) for _ in range(burst)]
    count2, _, avg2 = haproxy_window(burst_ms, count, total)
    got = estimate_response_time(server(count, avg), server(count2, avg2))
    assert got is not None
    assert got * 1000 == pytest.approx(sum(burst_ms) / burst, abs=tolerance_ms)


def test_estimate_is_clamped_and_none_without_requests() -> None:
    assert estimate_response_time(server(600, 5), server(600, 5)) is None
    assert estimate_response_time(server(600, 40), server(601, 1)) == 0.0  # rounding: never negative
    assert estimate_response_time(server(600, 1), server(601, 9, max_ms=30)) == pytest.approx(0.030)


def test_first_sight_counts_nothing_and_a_recreated_server_counts_from_zero() -> None:
    assert server_delta(None, server(900, 3)).requests == 0  # history before the monitor is not a burst
    recreated = server_delta(server(900, 3), ServerStats("b/s", 4, 1, 5, 5, "UP"))
    assert (recreated.requests, recreated.http_5xx) == (4, 1)


def test_target_groups_sum_listeners_and_count_each_target_once() -> None:
    before, after = stats("errors"), stats("down")
    groups = {g.tg_arn_suffix: g for g in target_group_samples(before, after, SERVERS)}
    green, blue = groups[GREEN], groups[BLUE]
    # Between the two snapshots green answered 10 requests through :28781 and none through :28780.
    assert (green.requests, green.http_5xx) == (10, 0)
    assert green.response_times and green.response_times[0][1] == 10
    assert green.response_times[0][0] == pytest.approx(0.3, abs=0.01)
    assert (blue.requests, blue.http_5xx) == (6, 0)
    assert green.healthy == set() and set(green.unhealthy) == {"i-green1"}  # down in both backends: once
    assert blue.healthy == {"i-blue1"} and set(blue.unhealthy) == {"i-gone"}
    assert green.dimensions == {"LoadBalancer": LB, "TargetGroup": GREEN}


def test_a_target_failing_in_any_backend_is_unhealthy_and_unknown_servers_are_ignored() -> None:
    rows = stats("errors")
    failing = {**rows, "l-8080/i-green1": ServerStats("l-8080/i-green1", 8, 2, 0, 0, "DOWN", "L7STS", "bad status")}
    servers = {**SERVERS, "l-9/other": info(BLUE, "i-x", "blue")}
    groups = {g.tg_arn_suffix: g for g in target_group_samples(rows, failing, servers)}
    assert groups[GREEN].unhealthy == {"i-green1": "bad status (L7STS)"} and not groups[GREEN].healthy


def test_target_health_as_describe_target_health_would_say_it() -> None:
    health = target_health(stats("down"), SERVERS)
    assert health[(GREEN, "i-green1")] == ("unhealthy", "Layer7 invalid response (L7RSP)")
    assert health[(BLUE, "i-blue1")][0] == "healthy"  # up in :80, in maintenance in :8080
    only_test_listener = {"l-8080/i-blue1": SERVERS["l-8080/i-blue1"], "l-80/nothing": info(BLUE, "i-new", "blue")}
    assert target_health(stats("down"), only_test_listener) == {(BLUE, "i-blue1"): ("unused", "MAINT")}


def test_samples_follow_what_an_alb_publishes() -> None:
    before, after = stats("warm"), stats("latency")
    groups = {g.tg_arn_suffix: g for g in target_group_samples(before, after, SERVERS)}
    green = samples_of(groups[GREEN], now=100.0)
    assert green[REQUEST_COUNT] == [Sample(100.0, 20)]
    assert TARGET_5XX not in green  # no 5xx in the interval: no datapoint, as on AWS
    assert statistic(green[RESPONSE_TIME], "Average") == pytest.approx(0.21, abs=0.03)
    assert green[HEALTHY] == [Sample(100.0, 1)] and green[UNHEALTHY] == [Sample(100.0, 0)]
    idle = samples_of(groups[BLUE], now=100.0)
    assert set(idle) == {HEALTHY, UNHEALTHY}


def test_statistic_values_aggregate_weighted_samples() -> None:
    values = statistic_values([Sample(1, 0.1, 9), Sample(2, 1.0, 1)])
    assert values == pytest.approx({"SampleCount": 10.0, "Sum": 1.9, "Minimum": 0.1, "Maximum": 1.0})
    assert statistic_values([]) is None
    assert statistic([Sample(1, 0.1, 9), Sample(2, 1.0, 1)], "p99") == 1.0
    with pytest.raises(ValueError, match="unknown statistic"):
        statistic([Sample(1, 1.0)], "Median")
