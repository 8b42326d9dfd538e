"""Traffic as two weighted Route 53 records (`traffic.mode: dns`), guarded by the records' TTL.

A listener weight takes effect on the next request; a DNS weight takes effect only as resolvers'
cached answers expire, and clients that cache past the TTL keep the old color longer still. So a
DNS switch is guarded at three points, all decided by pure functions here (unit-tested without
AWS) and driven by `bgtool.release.switch`:

* preflight: the TTL resolvers may hold NOW (read from Route 53, not from the file: a lowered TTL
  in the file does not shorten what was cached under the old one) must not exceed `dns.max_ttl`;
* each canary step bakes at least `dns.bake_ttl_multiple` times that TTL, so a step is judged on
  traffic that actually moved;
* after the last step, the old color's share of requests (its own load balancer's metrics) is
  watched until it falls to `dns.drain_percent`, and the report says how long that took.

Weights move through the traffic layer's Terraform like the listener's; `flip` (break glass)
UPSERTs the two records by API and the following apply reconciles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bgtool.config.schema import ALIAS_TTL, Color, DnsSettings, Environment
from bgtool.errors import BgtoolError
from bgtool.events import Note
from bgtool.terraform.workspace import Workspace
from bgtool.traffic.weights import Weights

ROUTE53_PROPAGATION_SECONDS = 60
"""How long Route 53 takes to bring a change to all its name servers (INSYNC), at most, on AWS."""

# --------------------------------------------------------------------------------------------
# Pure: TTLs, bakes, drains, propagation
# --------------------------------------------------------------------------------------------


def record_ttl(record_set: dict[str, Any]) -> int:
    """What a resolver may cache an answer for: AWS fixes an alias record's TTL at 60 s."""
    if record_set.get("AliasTarget"):
        return ALIAS_TTL
    return int(record_set.get("TTL", 0))


def effective_ttl(record_sets: list[dict[str, Any]], settings: DnsSettings) -> int:
    """The longest TTL among the live records (what caches hold now), or the file's when none are live."""
    live = [record_ttl(r) for r in record_sets]
    return max(live) if live else settings.effective_ttl


def ttl_refusal(env: str, settings: DnsSettings, live_ttl: int) -> str | None:
    """Why a switch must not start with this TTL, with how to lower it first; None when guarded."""
    if live_ttl <= settings.max_ttl:
        return None
    lowered = settings.ttl is not None and settings.ttl <= settings.max_ttl
    first = ("the file's dns.ttl is already lower: apply it with 'bgtool apply "
             f"{env} --layer traffic'" if lowered else f"set dns.ttl to {settings.max_ttl} or less in "
             f"environments/{env}.yaml and apply it with 'bgtool apply {env} --layer traffic'")
    return (f"record {settings.record} is served with a TTL of {live_ttl} s, above the TTL guard dns.max_ttl "
            f"({settings.max_ttl} s): resolvers may keep answering the old color for {_human(live_ttl)} after each "
            f"step. Lower it first: {first}, then wait {_human(live_ttl)} (the old TTL) for caches to expire, "
            "then switch")


def min_bake_seconds(ttl: int, multiple: float) -> float:
    """A canary step must outlive the caches that still point at the old answer, several times over."""
    return float(ttl) * multiple


def bake_for(requested: float, ttl: int, multiple: float) -> float:
    """The bake of a DNS-mode step: what was asked, but never shorter than the TTL guard's minimum."""
    return max(float(requested), min_bake_seconds(ttl, multiple))


@dataclass(frozen=True)
class DrainSample:
    """Requests each color's load balancer served in one window after the last step."""

    elapsed: float
    old_requests: int
    new_requests: int

    @property
    def old_share(self) -> float | None:
        total = self.old_requests + self.new_requests
        return 100.0 * self.old_requests / total if total else None


def drained(sample: DrainSample, percent: float, window: float) -> bool:
    """The old color is quiet: its share is at most PERCENT, or nobody sent anything for a whole window."""
    share = sample.old_share
    if share is None:
        return sample.elapsed >= window
    return share <= percent


def drain_window(ttl: int, resolution: int) -> float:
    """How far back each drain poll looks: a TTL, and at least two metric periods (one is still filling)."""
    return float(max(ttl, 2 * resolution))


@dataclass(frozen=True)
class DrainReport:
    quiet: bool
    seconds: float
    """From the last step (100% on the new color) to the first quiet window, or to the timeout."""
    last: DrainSample | None
    polls: int

    def to_dict(self) -> dict[str, Any]:
        last = self.last
        return {"quiet": self.quiet, "seconds": round(self.seconds, 1), "polls": self.polls,
                "old_requests": last.old_requests if last else None,
                "new_requests": last.new_requests if last else None,
                "old_share_percent": None if last is None or last.old_share is None else round(last.old_share, 2)}

    def describe(self, old: str) -> str:
        share = self.last.old_share if self.last else None
        shown = "no requests" if share is None else f"{share:.1f}% of requests"
        if self.quiet:
            return f"{old} drained: {shown} {self.seconds:.0f}s after the last step"
        return f"{old} still had {shown} {self.seconds:.0f}s after the last step (dns.drain_timeout_seconds)"


def watch_drain(read: Callable[[float], DrainSample], settings: DnsSettings, window: float, poll: float,
                sleep: Callable[[float], None], clock: Callable[[], float], started: float) -> DrainReport:
    """Poll READ (elapsed seconds → sample) until the old color is quiet or the timeout passes."""
    polls, last = 0, None
    while True:
        elapsed = clock() - started
        last = read(elapsed)
        polls += 1
        if drained(last, settings.drain_percent, window):
            return DrainReport(True, elapsed, last, polls)
        if elapsed >= settings.drain_timeout_seconds:
            return DrainReport(False, elapsed, last, polls)
        sleep(max(0.0, min(poll, settings.drain_timeout_seconds - elapsed)))


def propagation(ttl: int, changed_at: str | None, now: datetime, *, route53_seconds: float
                = ROUTE53_PROPAGATION_SECONDS) -> dict[str, Any]:
    """When the last weight change has reached every client that honours the TTL: Route 53's own
    propagation plus one TTL after the change."""
    expected = route53_seconds + ttl
    doc: dict[str, Any] = {"ttl_seconds": ttl, "expected_seconds": expected, "changed_at": changed_at}
    if changed_at is None:
        return {**doc, "complete_at": None, "complete": True}
    try:
        at = datetime.fromisoformat(changed_at)
    except ValueError:
        return {**doc, "complete_at": None, "complete": None}
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    done = at + timedelta(seconds=expected)
    return {**doc, "complete_at": done.isoformat(timespec="seconds"), "complete": now >= done,
            "seconds_left": max(0, math.ceil((done - now).total_seconds()))}


def record_weights(record_sets: list[dict[str, Any]]) -> Weights | None:
    """The two colors' weights as Route 53 serves them; None unless both records exist."""
    found = {r.get("SetIdentifier"): int(r.get("Weight", 0)) for r in record_sets}
    if not {"blue", "green"} <= set(found):
        return None
    try:
        return Weights(found["blue"], found["green"])
    except ValueError:
        return None


def flipped_record(record_set: dict[str, Any], color: Color) -> dict[str, Any]:
    """A record set as Route 53 lists it, with the weight of 100% on COLOR; everything else kept."""
    return {**record_set, "Weight": Weights.all_on(color).of(Color(record_set["SetIdentifier"]))}


def _human(seconds: int) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds} s ({seconds // 3600} h)"
    return f"{seconds} s"


# --------------------------------------------------------------------------------------------
# I/O: Route 53 reads and break-glass writes, the traffic layer, CloudWatch for the drain
# --------------------------------------------------------------------------------------------


def dns_settings(config: Environment) -> DnsSettings:
    if config.dns is None:
        raise BgtoolError("traffic.mode dns needs a 'dns' section")
    return config.dns


def zone_id(ws: Workspace) -> str | None:
    """The hosted zone: dns.zone_id, else the zone the base layer created for dns.zone."""
    settings = dns_settings(ws.config)
    if settings.zone_id:
        return settings.zone_id
    route53 = ws.aws.client("route53")
    for zone in route53.list_hosted_zones_by_name(DNSName=settings.zone).get("HostedZones", []):
        if zone["Name"].rstrip(".") == settings.zone:
            return str(zone["Id"]).split("/")[-1]
    return None


def live_record_sets(ws: Workspace) -> list[dict[str, Any]]:
    """The weighted record sets of dns.record, one per color, as Route 53 serves them."""
    settings = dns_settings(ws.config)
    zone = zone_id(ws)
    if zone is None:
        return []
    answer = ws.aws.client("route53").list_resource_record_sets(
        HostedZoneId=zone, StartRecordName=settings.record, MaxItems="20")
    name = settings.record + "."
    return [r for r in answer.get("ResourceRecordSets", [])
            if r["Name"].rstrip(".").lower() + "." == name and r.get("SetIdentifier") in ("blue", "green")]


@dataclass(frozen=True)
class DnsFlip:
    color: str
    record: str
    change_id: str
    lookup_seconds: float
    flip_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DnsRouter:
    """Traffic as the weights of two Route 53 records, one per color's own load balancer (modules/dns)."""

    mode = "dns"

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.ttl: int | None = None
        """The effective TTL read at the last guard()."""

    @property
    def settings(self) -> DnsSettings:
        return dns_settings(self.ws.config)

    def live_weights(self) -> Weights | None:
        return record_weights(live_record_sets(self.ws))

    def apply(self, weights: Weights, test_color: Color) -> dict[str, int]:
        from bgtool.traffic.listener import apply_weights

        s = apply_weights(self.ws, weights, test_color).summary
        return {"add": s.add, "change": s.change, "destroy": s.destroy}

    def flip(self, color: Color) -> DnsFlip:
        started = time.perf_counter()
        records = live_record_sets(self.ws)
        zone = zone_id(self.ws)
        if zone is None or record_weights(records) is None:
            raise BgtoolError(f"break glass: the weighted records of {self.settings.record} were not found")
        changes = [{"Action": "UPSERT", "ResourceRecordSet": flipped_record(r, color)} for r in records]
        looked_up = time.perf_counter()
        answer = self.ws.aws.client("route53").change_resource_record_sets(
            HostedZoneId=zone, ChangeBatch={"Comment": f"bgtool break glass: 100% on {Color(color).value}",
                                            "Changes": changes})
        return DnsFlip(Color(color).value, self.settings.record, str(answer["ChangeInfo"]["Id"]),
                       looked_up - started, time.perf_counter() - looked_up)

    def describe(self) -> str:
        try:
            records = live_record_sets(self.ws)
        except Exception as exc:  # this runs while reporting another failure: never mask it
            return f"could not be read ({exc})"
        if not records:
            return f"unknown: no weighted records for {self.settings.record}"
        shown = ", ".join(f"{r['SetIdentifier']} {r.get('Weight', 0)}" for r in sorted(
            records, key=lambda r: r["SetIdentifier"]))
        return f"record {self.settings.record}: {shown} (TTL {effective_ttl(records, self.settings)} s)"

    # -- the TTL guard ------------------------------------------------------------------------
    def guard(self) -> str:
        """Refuse (BgtoolError) when caches may hold answers longer than dns.max_ttl; else say what holds."""
        settings = self.settings
        self.ttl = effective_ttl(live_record_sets(self.ws), settings)
        refusal = ttl_refusal(self.ws.env, settings, self.ttl)
        if refusal:
            raise BgtoolError(refusal)
        return (f"TTL guard: {settings.record} TTL {self.ttl} s <= dns.max_ttl {settings.max_ttl} s; each step "
                f"bakes at least {min_bake_seconds(self.ttl, settings.bake_ttl_multiple):g} s "
                f"({settings.bake_ttl_multiple:g} x TTL)")

    def bake_seconds(self, requested: float) -> float:
        ttl = self.ttl if self.ttl is not None else self.settings.effective_ttl
        return bake_for(requested, ttl, self.settings.bake_ttl_multiple)

    def drain(self, old: Color, since: datetime, poll: float, sleep: Callable[[float], None],
              clock: Callable[[], float]) -> DrainReport:
        """Watch the old color's own load balancer until its share of requests is near zero."""
        from bgtool.aws.live import color_alb, target_group_arns
        from bgtool.aws.metrics import MetricsReader, metrics_resolution

        config = self.ws.config
        resolution = metrics_resolution(config)
        ttl = self.ttl if self.ttl is not None else self.settings.effective_ttl
        window = drain_window(ttl, resolution)
        tg_arns = target_group_arns(self.ws.aws, config)
        readers: dict[Color, tuple[MetricsReader, str] | None] = {}
        for color in Color:
            alb = color_alb(self.ws.aws, config, color)
            arn = tg_arns.get(color.value)
            readers[color] = (MetricsReader(self.ws.aws, alb["LoadBalancerArn"], resolution), arn) \
                if alb and arn else None

        def requests(color: Color, start: datetime, end: datetime) -> int:
            reader = readers[color]
            return reader[0].window(reader[1], start, end).requests if reader else 0

        def read(elapsed: float) -> DrainSample:
            now = datetime.now(UTC)
            start = max(since, now - timedelta(seconds=window))
            sample = DrainSample(elapsed, requests(old, start, now), requests(old.other, start, now))
            self.ws.emit(Note(f"drain: {old.value} {sample.old_requests} / {old.other.value} {sample.new_requests} "
                              f"requests in the last {window:g}s ({elapsed:.0f}s after the last step)", "detail"))
            return sample

        started = clock() - max(0.0, (datetime.now(UTC) - since).total_seconds())
        return watch_drain(read, self.settings, window, poll, sleep, clock, started)


def dns_status(ws: Workspace, last_change_at: str | None, now: datetime | None = None) -> dict[str, Any]:
    """What `status` shows in DNS mode: the records' weights and TTL as Route 53 serves them, and when
    the last change (the last recorded switch) has reached every client that honours the TTL."""
    settings = dns_settings(ws.config)
    records = live_record_sets(ws)
    weights = record_weights(records)
    ttl = effective_ttl(records, settings)
    return {"record": settings.record, "found": weights is not None,
            "weights": weights.as_dict() if weights else {},
            "live_color": weights.live_color.value if weights and weights.live_color else None,
            "ttl_seconds": ttl, "max_ttl_seconds": settings.max_ttl,
            "propagation": propagation(ttl, last_change_at, now or datetime.now(UTC))}
