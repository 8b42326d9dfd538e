"""From HAProxy's `show stat` CSV to the load balancer metrics CloudWatch holds for a target group.

Pure functions: the monitor feeds them two consecutive snapshots and publishes what comes out. A
target group's metrics sum its targets' servers over every backend that forwards to it (one backend
per listener), the way an ALB's target group metrics sum every listener.

Response time: HAProxy 2.6 exposes no histogram and no cumulative time, only `rtime`, the average
server response time (ms, rounded up) over a sliding window: a plain average of all requests while a
server has served fewer than 512, then a decaying sum `S <- S - ceil(S/512) + v` (TIME_STATS_SAMPLES,
`swrate_add_dynamic` in HAProxy's stream.c). Reading `rtime` as it is would make an added second of
latency show up only after hundreds of requests, so `estimate_response_time` inverts that recurrence
between two snapshots and recovers the mean of the requests in between. Its error comes from the
rounding of `rtime` to whole milliseconds: about 512 ms divided by the requests in the interval once a
server is past 512 requests (about 50 ms at 10 requests per interval), less before.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SERVER_ROW = "2"  # show stat `type`: 0 frontend, 1 backend, 2 server, 3 listener
WINDOW = 512  # HAProxy's TIME_STATS_SAMPLES
REQUIRED = ("pxname", "svname", "type", "req_tot", "hrsp_5xx", "rtime", "status")

NAMESPACE = "AWS/ApplicationELB"
REQUEST_COUNT = "RequestCount"
TARGET_5XX = "HTTPCode_Target_5XX_Count"
RESPONSE_TIME = "TargetResponseTime"
HEALTHY = "HealthyHostCount"
UNHEALTHY = "UnHealthyHostCount"
UNITS = {REQUEST_COUNT: "Count", TARGET_5XX: "Count", RESPONSE_TIME: "Seconds", HEALTHY: "Count", UNHEALTHY: "Count"}


class StatsFormatError(ValueError):
    """The text is not `show stat` CSV (HAProxy answered an error, or a different version's format)."""


@dataclass(frozen=True)
class ServerInfo:
    """What a HAProxy server stands for in the embedded AWS: one registered target of a target group."""

    lb_arn_suffix: str
    tg_arn_suffix: str
    env: str
    color: str
    instance_id: str


@dataclass(frozen=True)
class ServerStats:
    """One server row of `show stat`; counters are cumulative since the server was created."""

    key: str  # "backend/server" (pxname/svname)
    requests: int
    http_5xx: int
    rtime_ms: int
    rtime_max_ms: int
    status: str
    check_status: str = ""
    check_desc: str = ""
    last_check: str = ""

    @property
    def health(self) -> str:
        """healthy / unhealthy as an ALB says of a target; "unused" for a server in maintenance."""
        state = self.status.split(" ", 1)[0].upper()
        if state in ("MAINT", "MAINT(VIA)", "MAINT(RESOLUTION)"):
            return "unused"
        return "unhealthy" if state == "DOWN" else "healthy"

    @property
    def reason(self) -> str:
        """Why a check failed, in HAProxy's words (e.g. "Layer4 connection problem: Connection refused")."""
        parts = [p for p in (self.check_desc, self.last_check) if p]
        text = ": ".join(parts) or self.status
        return f"{text} ({self.check_status})" if self.check_status else text


def parse_show_stat(text: str) -> dict[str, ServerStats]:
    """Server rows keyed "backend/server"; frontends and backends are left out."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# pxname,"):
        first = lines[0][:80] if lines else "(empty)"
        raise StatsFormatError(f"not HAProxy `show stat` CSV (first line: {first!r})")
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
    if missing:
        raise StatsFormatError(f"`show stat` CSV lacks the columns {', '.join(missing)}")
    servers = {}
    for row in reader:
        if row.get("type") != SERVER_ROW:
            continue
        key = f"{row['pxname']}/{row['svname']}"
        servers[key] = ServerStats(
            key=key,
            requests=_int(row.get("req_tot")),
            http_5xx=_int(row.get("hrsp_5xx")),
            rtime_ms=_int(row.get("rtime")),
            rtime_max_ms=_int(row.get("rtime_max")),
            status=row.get("status") or "",
            check_status=row.get("check_status") or "",
            check_desc=row.get("check_desc") or "",
            last_check=row.get("last_chk") or "",
        )
    return servers


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _window_sum(count: int, avg_ms: int) -> float:
    """The hidden sum behind a shown average: avg = ceil(S / w), so S lies in ((avg-1)*w, avg*w]."""
    if count <= 0 or avg_ms <= 0:
        return 0.0
    return (avg_ms - 0.5) * min(count, WINDOW)


def estimate_response_time(prev: ServerStats | None, cur: ServerStats) -> float | None:
    """Mean response time in seconds of the requests a server answered between two snapshots.

    None when it answered none. Assumes the requests in between had similar times (their mean is
    what comes out); clamped to [0, rtime_max] because rounding can push a small estimate negative.
    """
    prev_count, prev_avg = (prev.requests, prev.rtime_ms) if prev else (0, 0)
    if cur.requests < prev_count:  # the server was re-created: its counters started again
        prev_count, prev_avg = 0, 0
    added = cur.requests - prev_count
    if added <= 0:
        return None
    plain = max(0, min(cur.requests, WINDOW) - prev_count)  # added while the average was a plain one
    decayed = added - plain
    keep = (1 - 1 / WINDOW) ** decayed
    weight = plain * keep + (1 - keep) * WINDOW
    mean_ms = (_window_sum(cur.requests, cur.rtime_ms) - _window_sum(prev_count, prev_avg) * keep) / weight
    ceiling = cur.rtime_max_ms if cur.rtime_max_ms > 0 else math.inf
    return min(max(mean_ms, 0.0), ceiling) / 1000.0


@dataclass(frozen=True)
class ServerDelta:
    requests: int
    http_5xx: int
    response_time: float | None  # seconds, mean over `requests`


def server_delta(prev: ServerStats | None, cur: ServerStats) -> ServerDelta:
    """What a server did between two snapshots. A server seen for the first time did nothing yet: its
    history predates the monitor and must not arrive as one burst (a false 5xx spike after a restart)."""
    if prev is None:
        return ServerDelta(0, 0, None)
    if cur.requests < prev.requests or cur.http_5xx < prev.http_5xx:  # re-created: count from zero
        return ServerDelta(cur.requests, cur.http_5xx, estimate_response_time(None, cur))
    return ServerDelta(cur.requests - prev.requests, cur.http_5xx - prev.http_5xx,
                       estimate_response_time(prev, cur))


@dataclass
class TargetGroupSample:
    """One snapshot interval of one target group, behind one load balancer."""

    lb_arn_suffix: str
    tg_arn_suffix: str
    requests: int = 0
    http_5xx: int = 0
    response_times: list[tuple[float, int]] = field(default_factory=list)  # (seconds, requests) per server
    healthy: set[str] = field(default_factory=set)  # instance ids
    unhealthy: dict[str, str] = field(default_factory=dict)  # instance id -> reason

    @property
    def dimensions(self) -> dict[str, str]:
        return {"LoadBalancer": self.lb_arn_suffix, "TargetGroup": self.tg_arn_suffix}


def target_group_samples(prev: Mapping[str, ServerStats], cur: Mapping[str, ServerStats],
                         servers: Mapping[str, ServerInfo]) -> list[TargetGroupSample]:
    """Per target group: counter deltas summed over its servers, and its targets' health.

    A target listed in several backends (the production and the test listener) counts once for
    health (see target_health). Servers in maintenance are not counted; servers HAProxy does not
    report (yet) contribute nothing.
    """
    groups: dict[tuple[str, str], TargetGroupSample] = {}
    for key, info in servers.items():
        group = groups.setdefault((info.lb_arn_suffix, info.tg_arn_suffix),
                                  TargetGroupSample(info.lb_arn_suffix, info.tg_arn_suffix))
        stats = cur.get(key)
        if stats is None:
            continue
        delta = server_delta(prev.get(key), stats)
        group.requests += delta.requests
        group.http_5xx += delta.http_5xx
        if delta.response_time is not None and delta.requests > 0:
            group.response_times.append((delta.response_time, delta.requests))
    for (lb, tg, instance), (state, reason) in _health(cur, servers).items():
        if state == "unhealthy":
            groups[(lb, tg)].unhealthy[instance] = reason
        elif state == "healthy":
            groups[(lb, tg)].healthy.add(instance)
    return sorted(groups.values(), key=lambda g: (g.lb_arn_suffix, g.tg_arn_suffix))


Health = tuple[str, str]  # (healthy | unhealthy | unused, reason)


def target_health(cur: Mapping[str, ServerStats], servers: Mapping[str, ServerInfo]) -> dict[tuple[str, str], Health]:
    """(state, reason) per (target group ARN suffix, instance id), as describe_target_health would say it:
    "unhealthy" when any of the target's checks fails, "healthy" when one passes, "unused" when every
    backend holds it in maintenance. Targets HAProxy does not report (yet) are left out."""
    return {(tg, instance): verdict for (_, tg, instance), verdict in _health(cur, servers).items()}


def _health(cur: Mapping[str, ServerStats], servers: Mapping[str, ServerInfo]) -> dict[tuple[str, str, str], Health]:
    rank = {"unhealthy": 2, "healthy": 1, "unused": 0}
    found: dict[tuple[str, str, str], Health] = {}
    for key, info in servers.items():
        stats = cur.get(key)
        if stats is None:
            continue
        target = (info.lb_arn_suffix, info.tg_arn_suffix, info.instance_id)
        seen = found.get(target)
        if seen is None or rank[stats.health] > rank[seen[0]]:
            found[target] = (stats.health, stats.reason)
    return found


@dataclass(frozen=True)
class Sample:
    """A value seen `count` times at time `t` (epoch seconds): one request's worth, or one reading."""

    t: float
    value: float
    count: int = 1


def samples_of(group: TargetGroupSample, now: float) -> dict[str, list[Sample]]:
    """The datapoints an ALB would report for this interval: request and 5xx counts only when non-zero
    (ALBs publish no zero counts), response time only when requests were answered, host counts always."""
    out: dict[str, list[Sample]] = {HEALTHY: [Sample(now, len(group.healthy))],
                                    UNHEALTHY: [Sample(now, len(group.unhealthy))]}
    if group.requests:
        out[REQUEST_COUNT] = [Sample(now, group.requests)]
    if group.http_5xx:
        out[TARGET_5XX] = [Sample(now, group.http_5xx)]
    if group.response_times:
        out[RESPONSE_TIME] = [Sample(now, value, count) for value, count in group.response_times]
    return out


def statistic(samples: Iterable[Sample], name: str) -> float | None:
    """A CloudWatch statistic (Sum, Average, Minimum, Maximum, SampleCount, pNN) over samples; None if none."""
    items = [s for s in samples if s.count > 0]
    if not items:
        return None
    count = sum(s.count for s in items)
    total = float(sum(s.value * s.count for s in items))
    if name == "Sum":
        return total
    if name == "SampleCount":
        return float(count)
    if name == "Average":
        return total / count
    if name == "Minimum":
        return float(min(s.value for s in items))
    if name == "Maximum":
        return float(max(s.value for s in items))
    if name.startswith("p"):
        return _percentile(items, float(name[1:]), count)
    raise ValueError(f"unknown statistic {name!r}")


def _percentile(items: list[Sample], pct: float, count: int) -> float:
    """Nearest-rank percentile of the values, each repeated `count` times."""
    rank = max(1, math.ceil(pct / 100.0 * count))
    ordered = sorted(items, key=lambda s: s.value)
    seen = 0
    for s in ordered:
        seen += s.count
        if seen >= rank:
            return float(s.value)
    return float(ordered[-1].value)


def statistic_values(samples: Iterable[Sample]) -> dict[str, float] | None:
    """put_metric_data's StatisticValues for samples: one datapoint however many requests it stands for."""
    items = [s for s in samples if s.count > 0]
    if not items:
        return None
    return {"SampleCount": float(sum(s.count for s in items)),
            "Sum": float(sum(s.value * s.count for s in items)),
            "Minimum": float(min(s.value for s in items)),
            "Maximum": float(max(s.value for s in items))}
