"""Pure decisions of deploy, retire and status: readiness, retention, lock staleness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bgtool.aws.live import ColorLive, TargetHealth
from bgtool.config.schema import load_environment
from bgtool.records.history import Record
from bgtool.records.lock import LockInfo
from bgtool.release.deploy import ready
from bgtool.release.retire import retention_left, retire_allowed_at
from bgtool.release.status import lock_doc, retention_doc

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def live(in_service: int, healthy: int, versions: list[str], desired: int = 2) -> ColorLive:
    ids = [f"i-{n}" for n in range(in_service)]
    targets = [TargetHealth(i, "healthy" if n < healthy else "initial") for n, i in enumerate(ids)]
    return ColorLive("green", ["g"], versions, desired, in_service, ids, targets)


def test_ready_only_when_all_in_service_healthy_and_on_the_version() -> None:
    assert ready(live(2, 2, ["1.1.0"]), 2, "1.1.0")[0]
    assert not ready(live(1, 1, ["1.1.0"]), 2, "1.1.0")[0]
    assert not ready(live(2, 1, ["1.1.0"]), 2, "1.1.0")[0]
    assert not ready(live(2, 2, ["1.0.0", "1.1.0"]), 2, "1.1.0")[0]  # old group still around
    _, text = ready(live(2, 1, ["1.1.0"]), 2, "1.1.0")
    assert text == "2/2 in service, 1/2 healthy in the target group, version 1.1.0"


def test_ready_for_zero_ignores_version() -> None:
    assert ready(live(0, 0, ["1.1.0"], desired=0), 0, None)[0]
    assert not ready(live(1, 1, ["1.1.0"], desired=0), 0, None)[0]


def test_retention_window() -> None:
    assert retire_allowed_at(None, 24) is None and retention_left(None, NOW) == timedelta(0)
    allowed = retire_allowed_at("2025-03-01T10:00:00+00:00", 24)
    assert allowed == datetime(2025, 3, 2, 10, 0, tzinfo=UTC)
    assert retention_left(allowed, NOW) == timedelta(hours=22)
    assert retention_left(allowed, NOW + timedelta(days=2)) == timedelta(0)


def test_status_retention_and_lock(shipped: Path) -> None:
    config = load_environment(shipped, "local").config
    switch = Record("switch", "succeeded", "green", "blue", at="2025-03-01T11:00:00+00:00")
    doc = retention_doc(config, switch, NOW)
    assert doc["seconds_left"] == 23 * 3600 and doc["retire_allowed_from"] == "2025-03-02T11:00:00+00:00"
    assert lock_doc(config, None, NOW) == {"held": False}
    fresh = LockInfo("ann", "switch", "2025-03-01T11:50:00+00:00", "h", 1)
    old = LockInfo("bob", "deploy", "2025-03-01T08:00:00+00:00", "h", 2)
    assert lock_doc(config, fresh, NOW)["stale"] is False and lock_doc(config, fresh, NOW)["age_minutes"] == 10
    assert lock_doc(config, old, NOW)["stale"] is True  # 240 min > stale_after_minutes 120
    unreadable = LockInfo.parse("")  # a lock item whose content is lost: shown as stale, never a crash
    shown = lock_doc(config, unreadable, NOW)
    assert shown["stale"] is True and shown["age_minutes"] is None
