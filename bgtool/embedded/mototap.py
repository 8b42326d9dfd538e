"""The one place that touches moto's internals (tested with moto 5.2; pinned in the `local` extra).

The data plane runs moto in its own process, so it can read the load balancers, target groups
and instances straight from moto's in-memory backends (microseconds, not an API round trip per
resource every tenth of a second) and can make `describe_target_health` report what the real
health checks found. Both are done here and nowhere else, so a moto upgrade that moves these
internals breaks one small module, loudly.
"""

from __future__ import annotations

import importlib
import pickle
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bgtool.embedded.model import (
    Action,
    FixedResponse,
    Forward,
    HealthCheck,
    Instance,
    Listener,
    Redirect,
    Snapshot,
    Target,
    TargetGroup,
    WeightedRecord,
)

HealthOverride = tuple[str, str, str]
"""(state, reason, description) as describe_target_health reports it."""

NOT_SEEN_YET: HealthOverride = ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
"""A running instance registered since the data plane's last tick: no process, no check yet."""

_overrides: Mapping[tuple[str, str], HealthOverride] = {}
_following = False
_installed = threading.Lock()
_hooked = False


def set_health(overrides: Mapping[tuple[str, str], HealthOverride]) -> None:
    """Publish what the health checks found, keyed by (target group arn, instance id).

    Replaced as a whole (one assignment), so request threads never see a half-updated mapping.
    """
    global _overrides, _following
    _overrides = dict(overrides)
    _following = True


def install_health_hook() -> None:
    """Make moto's describe_target_health report the data plane's verdict for running instances.

    moto calls every running instance target `healthy`; a stopped one stays `unused`
    (Target.InvalidState) as moto says, since no health check runs against a stopped instance.
    """
    global _hooked
    from moto.elbv2.models import FakeTargetGroup

    with _installed:
        if _hooked:
            return
        original = FakeTargetGroup.health_for

        def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
            status = original(self, target, ec2_backend)
            found = _overrides.get((self.arn, target["Id"]))
            if found is None and _following and str(target["Id"]).startswith("i-"):
                found = NOT_SEEN_YET  # never "healthy" before a health check has seen it
            if found is not None and status.status == "healthy":
                status.status, status.reason, status.description = found
            return status

        FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]
        _hooked = True


_percentiles_hooked = False


def install_percentiles() -> None:
    """Make get_metric_statistics answer ExtendedStatistics (p99, p95.5, ...), which moto 5.2 accepts and
    ignores. Computed the way CloudWatch does for metrics published with Values/Counts (the monitor's
    TargetResponseTime): a percentile of the period's raw values; aggregated datapoints
    (StatisticValues) carry no distribution and do not contribute."""
    global _percentiles_hooked
    from moto.cloudwatch.models import MetricDatum
    from moto.cloudwatch.responses import CloudWatchResponse

    from bgtool.embedded.metrics import Sample, statistic

    with _installed:
        if _percentiles_hooked:
            return
        original = CloudWatchResponse.get_metric_statistics

        def get_metric_statistics(self: Any) -> Any:
            wanted = [p for p in (self._get_param("ExtendedStatistics") or []) if _is_percentile(p)]
            answer = original(self)
            for point in answer.result.get("Datapoints", []) if wanted else []:
                samples = [Sample(0.0, m.value) for m in point.metric_data if isinstance(m, MetricDatum)]
                if samples:
                    point.extended_statistics = {p: statistic(samples, p) for p in wanted}
            return answer

        CloudWatchResponse.get_metric_statistics = get_metric_statistics  # type: ignore[method-assign]
        _percentiles_hooked = True


def _is_percentile(name: str) -> bool:
    try:
        return name.startswith("p") and 0 <= float(name[1:]) <= 100
    except ValueError:
        return False


def read_snapshot() -> Snapshot:
    """Everything the data plane follows, copied out of moto's backends of every account and region.

    moto's request threads may change these dicts while they are read: the caller retries on
    RuntimeError ("changed size during iteration") at its next tick.
    """
    from moto.ec2.models import ec2_backends
    from moto.elbv2.models import elbv2_backends

    listeners: list[Listener] = []
    groups: dict[str, TargetGroup] = {}
    instances: dict[str, Instance] = {}
    for account, regions in list(dict.items(elbv2_backends)):
        for region, backend in list(dict.items(regions)):
            for arn, group in list(backend.target_groups.items()):
                groups[arn] = _target_group(arn, group)
            for lb in list(backend.load_balancers.values()):
                for listener in list(lb.listeners.values()):
                    listeners.append(_listener(lb, listener))
            ec2 = _ec2_backend(ec2_backends, account, region)
            if ec2 is not None:
                _instances(ec2, groups.values(), instances)
    workers: dict[str, Instance] = {}
    for account, regions in list(dict.items(ec2_backends)):
        for region in list(dict.keys(regions)):
            ec2 = _ec2_backend(ec2_backends, account, region)
            if ec2 is not None:
                _workers(ec2, workers)
    return Snapshot(tuple(sorted(listeners, key=lambda lst: (lst.lb_name, lst.port))), groups, instances,
                    _weighted_records(), workers)


def _workers(ec2: Any, out: dict[str, Instance]) -> None:
    """Running instances of worker groups (tagged bgtool:role = worker)."""
    for reservation in list(ec2.reservations.values()):
        for instance in list(reservation.instances):
            if instance.state != "running":
                continue
            tags = dict(ec2.tags.get(instance.id, {}))
            if tags.get("bgtool:role") == "worker":
                out[instance.id] = Instance(instance.id, True, tags)


def _weighted_records() -> tuple[WeightedRecord, ...]:
    """Weighted records of every hosted zone that answer with a name (CNAME or alias): the data
    plane serves such a name with the records' weights."""
    from moto.route53.models import route53_backends

    out: list[WeightedRecord] = []
    for _account, partitions in list(dict.items(route53_backends)):
        for backend in list(dict.values(partitions)):
            for zone in list(backend.zones.values()):
                for rrset in list(zone.rrsets):
                    record = _weighted(rrset)
                    if record is not None:
                        out.append(record)
    return tuple(sorted(out, key=lambda r: (r.name, r.set_identifier)))


def _weighted(rrset: Any) -> WeightedRecord | None:
    if rrset.set_identifier is None or rrset.weight is None:
        return None
    alias = rrset.alias_target or {}
    target = alias.get("DNSName") if alias else (rrset.records[0] if rrset.type == "CNAME" and rrset.records else None)
    if isinstance(target, dict):
        target = target.get("Value")
    if not target:
        return None
    target = str(target).lower().rstrip(".").removeprefix("dualstack.")
    return WeightedRecord(str(rrset.name).lower().rstrip("."), str(rrset.set_identifier), _int(rrset.weight, 0), target)


def _ec2_backend(ec2_backends: Any, account: str, region: str) -> Any:
    regions = dict.get(ec2_backends, account)
    return dict.get(regions, region) if regions is not None else None


def _instances(ec2: Any, groups: Any, out: dict[str, Instance]) -> None:
    wanted = {t.id for g in groups for t in g.targets if t.id.startswith("i-")} - set(out)
    if not wanted:
        return
    for reservation in list(ec2.reservations.values()):
        for instance in list(reservation.instances):
            if instance.id in wanted:
                tags = dict(ec2.tags.get(instance.id, {}))
                out[instance.id] = Instance(instance.id, instance.state == "running", tags, ec2.region_name)


def _target_group(arn: str, group: Any) -> TargetGroup:
    matcher = (getattr(group, "matcher", None) or {}).get("HttpCode", "200")
    health = HealthCheck(
        path=group.health_check_path or "/",
        interval=_int(group.health_check_interval_seconds, 30),
        timeout=_int(group.health_check_timeout_seconds, 5),
        healthy=_int(group.healthy_threshold_count, 5),
        unhealthy=_int(group.unhealthy_threshold_count, 2),
        matcher=str(matcher),
    )
    targets = tuple(Target(t["Id"], _int(t.get("Port"), _int(group.port, 80))) for t in list(group.targets.values()))
    return TargetGroup(arn, group.name, health, targets)


def _listener(lb: Any, listener: Any) -> Listener:
    actions = [a.data for a in listener.default_actions]
    return Listener(lb.name, lb.arn, lb.dns_name, _int(listener.port, 80), listener.protocol, _action(actions))


def _action(actions: list[dict[str, Any]]) -> Action:
    """The listener's terminal default action (ALB runs authentication actions first; none here)."""
    for data in sorted(actions, key=lambda a: _int(a.get("Order"), 0)):
        kind = data.get("Type")
        if kind == "forward":
            return _forward(data)
        if kind == "redirect":
            cfg = data.get("RedirectConfig") or {}
            return Redirect(
                protocol=cfg.get("Protocol", "#{protocol}"), host=cfg.get("Host", "#{host}"),
                port=str(cfg.get("Port", "#{port}")), path=cfg.get("Path", "/#{path}"),
                query=cfg.get("Query", "#{query}"), status=_int(str(cfg.get("StatusCode", "301"))[-3:], 301),
            )
        if kind == "fixed-response":
            cfg = data.get("FixedResponseConfig") or {}
            return FixedResponse(_int(cfg.get("StatusCode"), 503), cfg.get("ContentType", "text/plain"),
                                 cfg.get("MessageBody", ""))
    return FixedResponse(503, "text/plain", "no forward action")


def _forward(data: dict[str, Any]) -> Forward:
    cfg = data.get("ForwardConfig") or {}
    groups = cfg.get("TargetGroups") or []
    if groups:
        weights = tuple((g["TargetGroupArn"], _int(g.get("Weight"), 1)) for g in groups)
    elif data.get("TargetGroupArn"):
        weights = ((data["TargetGroupArn"], 1),)
    else:
        weights = ()
    sticky = cfg.get("TargetGroupStickinessConfig") or {}
    enabled = str(sticky.get("Enabled", "false")).lower() == "true"
    return Forward(weights, _int(sticky.get("DurationSeconds"), 3600) if enabled else 0)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def dump_backends(path: Path) -> None:
    """Write every moto backend that holds data to PATH (pickle), for `bgtool local save`.

    moto keeps each service's data in a module-level BackendDict; the ones in use are listed in
    `BackendDict._instances`. They are pickled together, so objects shared between services stay
    shared after a load. Locks are not data: they pickle as new, unlocked locks. moto's request
    threads may change a dict while it is read: the caller retries on RuntimeError.
    """
    from moto.core.base_backend import BackendDict, backend_lock

    with backend_lock:
        used = list(BackendDict._instances)  # type: ignore[misc]
    named = {_location(backend): dict(backend) for backend in used}
    with path.open("wb") as sink:
        _LockFreePickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(named)


def load_backends(path: Path) -> list[str]:
    """Put what `dump_backends` wrote back into moto's backends (before its server answers); returns
    the services loaded. Only for files this machine wrote: unpickling runs what the file says."""
    from moto.core.base_backend import BackendDict, backend_lock

    with path.open("rb") as source:
        named: dict[str, dict[str, Any]] = pickle.load(source)  # a file `local save` wrote
    with backend_lock:
        for location, accounts in named.items():
            module, _, attribute = location.partition(":")
            live = getattr(importlib.import_module(module), attribute)
            dict.clear(live)
            dict.update(live, accounts)
            if live not in BackendDict._instances:  # type: ignore[misc]
                BackendDict._instances.append(live)  # type: ignore[misc]
    return sorted(named)


def _location(backend: Any) -> str:
    """`module:attribute` of a module-level BackendDict, so a load finds the very object moto uses."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto.") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if value is backend:
                return f"{name}:{attribute}"
    raise RuntimeError(f"moto backend {backend.service_name!r} is not a module attribute")


_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class _LockFreePickler(pickle.Pickler):
    """Pickles moto's objects: locks as new locks, keys and certificates (Rust objects) as PEM."""

    def reducer_override(self, obj: Any) -> Any:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

        if isinstance(obj, PrivateKeyTypes):  # type: ignore[misc, arg-type]
            return _private_key, (obj.private_bytes(*_pem()[0]),)
        if isinstance(obj, PublicKeyTypes):  # type: ignore[misc, arg-type]
            return _public_key, (obj.public_bytes(*_pem()[1]),)
        if isinstance(obj, x509.Certificate):
            return _certificate, (obj.public_bytes(_pem()[1][0]),)
        if isinstance(obj, _LOCK_TYPES):
            return type(obj), ()
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, threading.Event):
            return threading.Event, ()
        return NotImplemented


def _pem() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    from cryptography.hazmat.primitives import serialization as ser

    return ((ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()),
            (ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))


def _private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


def _public_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem)


def _certificate(pem: bytes) -> Any:
    from cryptography.x509 import load_pem_x509_certificate

    return load_pem_x509_certificate(pem)
