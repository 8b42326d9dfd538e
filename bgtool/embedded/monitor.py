"""Load balancer metrics and alarms from real traffic, for the embedded AWS.

Called about once a second with HAProxy's `show stat`, the monitor turns counter deltas into the
metrics an ALB publishes per target group (namespace AWS/ApplicationELB, dimensions LoadBalancer and
TargetGroup, exactly as on AWS), publishes them to the embedded CloudWatch once per period, and
evaluates the alarms moto holds there (Terraform created them) the way CloudWatch would, setting
their state only when it changes. moto stores alarms but never evaluates them; without this, no
alarm could fire from traffic and the gate and the bake would watch alarms that cannot move.

Evaluation reads the monitor's own per-tick samples rather than querying CloudWatch back: moto keeps
every datapoint forever and scans all of them on each query, aligns its periods to the first datapoint
instead of to the period, and computes no percentiles. What it publishes is one aggregated datapoint
(StatisticValues) per metric, target group and period, as an ALB does, so `get_metric_statistics`
shows the same numbers the alarms saw.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bgtool.embedded.alarms import AlarmDefinition, UnsupportedAlarm, evaluate, period_datapoints
from bgtool.embedded.metrics import (
    NAMESPACE,
    RESPONSE_TIME,
    UNITS,
    Sample,
    ServerInfo,
    ServerStats,
    parse_show_stat,
    samples_of,
    statistic_values,
    target_group_samples,
)

__all__ = ["AlarmChange", "Monitor", "ServerInfo"]

log = logging.getLogger(__name__)

ALB_PERIOD = 60.0  # an ALB publishes its metrics once a minute
MIN_RETENTION = 600.0  # seconds of samples kept even when no alarm needs them
MAX_PENDING = 5000  # unpublished datapoints kept while CloudWatch does not answer
REASON_LIMIT = 1023  # SetAlarmState's StateReason maximum
VALUES_PER_DATUM = 150  # PutMetricData's limit of Values (and Counts) in one datum

Dims = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AlarmChange:
    """An alarm the monitor moved from one state to another, and why."""

    name: str
    old: str
    new: str
    reason: str


class Monitor:
    def __init__(self, cloudwatch: Any, period_override: float | None = None,
                 on_change: Callable[[AlarmChange], None] | None = None) -> None:
        """`period_override` replaces every alarm's period (and the publishing period) so that tests
        and demos see alarms move in seconds; `on_change` hears of every state change it makes."""
        self.cloudwatch = cloudwatch
        self.period_override = period_override
        self.publish_period = float(period_override or ALB_PERIOD)
        self.on_change = on_change
        self._previous: dict[str, ServerStats] = {}
        self._series: dict[Dims, dict[str, list[Sample]]] = {}
        self._pending: dict[tuple[Dims, str, float], list[Sample]] = {}
        self._evaluated: dict[str, float] = {}
        self._retention = MIN_RETENTION
        self._reported: set[str] = set()

    def tick(self, now: float, stats_csv: str, servers: Mapping[str, ServerInfo]) -> None:
        """One snapshot: record, publish complete periods, evaluate alarms whose period just completed.

        A CloudWatch that does not answer (moto restarting) costs nothing but a log line: samples stay
        in memory and unpublished datapoints are sent on a later tick. Text that is not `show stat`
        CSV raises StatsFormatError (a ValueError).
        """
        current = parse_show_stat(stats_csv)
        for group in target_group_samples(self._previous, current, servers):
            dims = tuple(sorted(group.dimensions.items()))
            for metric, samples in samples_of(group, now).items():
                self._series.setdefault(dims, {}).setdefault(metric, []).extend(samples)
                start = math.floor(now / self.publish_period) * self.publish_period
                self._pending.setdefault((dims, metric, start), []).extend(samples)
        self._previous = current
        self._publish(now)
        self._evaluate(now)
        self._prune(now)

    def samples(self, dimensions: Mapping[str, str], metric: str) -> list[Sample]:
        """The samples recorded for one metric of every series whose dimensions include `dimensions`
        (both LoadBalancer and TargetGroup: one target group; one of them: the sum over the others)."""
        wanted = set(dimensions.items())
        if not wanted or any(name not in ("LoadBalancer", "TargetGroup") for name, _ in wanted):
            return []
        found: list[Sample] = []
        for dims, metrics in self._series.items():
            if wanted <= set(dims):
                found.extend(metrics.get(metric, []))
        return sorted(found, key=lambda s: s.t)

    # -- publishing ---------------------------------------------------------------------------------

    def _publish(self, now: float) -> None:
        due = sorted(k for k in self._pending if k[2] + self.publish_period <= now)
        if not due:
            return
        data = [datum for key in due for datum in self._data(key)]
        try:
            for i in range(0, len(data), 500):
                self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[i:i + 500])
        except (BotoCoreError, ClientError) as exc:
            self._report("publish", f"cannot publish metrics to the embedded CloudWatch yet: {exc}")
            self._trim_pending()
            return
        self._reported.discard("publish")
        for key in due:
            del self._pending[key]

    def _data(self, key: tuple[Dims, str, float]) -> list[dict[str, Any]]:
        """Counts as one aggregated datapoint; response times as values with counts (at most
        VALUES_PER_DATUM per datum, as PutMetricData allows), so that percentiles (p99) can be
        computed from them, as CloudWatch does from an ALB's TargetResponseTime."""
        dims, metric, start = key
        base: dict[str, Any] = {
            "MetricName": metric,
            "Dimensions": [{"Name": name, "Value": value} for name, value in dims],
            "Timestamp": datetime.fromtimestamp(start, UTC),
            "Unit": UNITS[metric],
        }
        if self.publish_period < 60:
            base["StorageResolution"] = 1
        samples = [s for s in self._pending[key] if s.count > 0]
        if metric != RESPONSE_TIME or not samples:
            return [{**base, "StatisticValues": statistic_values(self._pending[key])}]
        return [{**base, "Values": [s.value for s in chunk], "Counts": [float(s.count) for s in chunk]}
                for chunk in (samples[i:i + VALUES_PER_DATUM] for i in range(0, len(samples), VALUES_PER_DATUM))]

    def _trim_pending(self) -> None:
        for key in sorted(self._pending, key=lambda k: k[2])[:max(0, len(self._pending) - MAX_PENDING)]:
            del self._pending[key]

    # -- alarms -------------------------------------------------------------------------------------

    def _evaluate(self, now: float) -> None:
        try:
            alarms = self._alarms()
        except (BotoCoreError, ClientError) as exc:
            self._report("describe", f"cannot read alarms from the embedded CloudWatch yet: {exc}")
            return
        self._reported.discard("describe")
        longest = MIN_RETENTION
        for raw in alarms:
            try:
                alarm = AlarmDefinition.from_api(raw).with_period(self.period_override)
            except UnsupportedAlarm as exc:
                self._report(f"unsupported {raw.get('AlarmName')}", f"{exc}; its state is left as it is")
                continue
            longest = max(longest, alarm.period * (alarm.evaluation_range + 1))
            period_end = math.floor(now / alarm.period) * alarm.period
            if self._evaluated.get(alarm.name) == period_end:
                continue  # CloudWatch evaluates once per period, so a SetAlarmState holds until the next
            self._evaluated[alarm.name] = period_end
            self._judge(alarm, now)
        self._retention = longest

    def _alarms(self) -> list[dict[str, Any]]:
        found = []
        for page in self.cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            found += [a for a in page.get("MetricAlarms", []) if a.get("Namespace") == NAMESPACE]
        return found

    def _judge(self, alarm: AlarmDefinition, now: float) -> None:
        samples = self.samples(dict(alarm.dimensions), alarm.metric_name)
        verdict = evaluate(alarm, period_datapoints(alarm, samples, now), now)
        if verdict.state is None or verdict.state == alarm.state:
            return
        try:
            self.cloudwatch.set_alarm_state(AlarmName=alarm.name, StateValue=verdict.state,
                                            StateReason=verdict.reason[:REASON_LIMIT],
                                            StateReasonData=json.dumps(verdict.data, sort_keys=True))
        except (BotoCoreError, ClientError) as exc:
            self._evaluated.pop(alarm.name, None)  # try again on the next tick
            self._report(f"set {alarm.name}", f"cannot set alarm {alarm.name} to {verdict.state}: {exc}")
            return
        self._reported.discard(f"set {alarm.name}")
        log.info("alarm %s: %s -> %s: %s", alarm.name, alarm.state, verdict.state, verdict.reason)
        if self.on_change:
            self.on_change(AlarmChange(alarm.name, alarm.state, verdict.state, verdict.reason))

    # -- housekeeping -------------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        oldest = now - self._retention
        for metrics in self._series.values():
            for metric, samples in metrics.items():
                if samples and samples[0].t < oldest:
                    metrics[metric] = [s for s in samples if s.t >= oldest]
        self._series = {dims: m for dims, m in self._series.items() if any(m.values())}

    def _report(self, topic: str, message: str) -> None:
        """Log a problem once, not once a second, until it clears."""
        if topic not in self._reported:
            self._reported.add(topic)
            log.warning("%s", message)
