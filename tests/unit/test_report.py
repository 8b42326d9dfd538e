"""bgtool report's model and page, from a fabricated history record and metrics series (no AWS)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bgtool.aws.metrics import SeriesPoint
from bgtool.records.history import Record
from bgtool.release.report import markers, render_html, timeline, weight_steps, window

T0 = datetime(2026, 12, 7, 15, 0, 0, tzinfo=UTC)
PERIOD = 10
HOSTILE = "<script>alert(1)</script>"


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def rolled_back(actor: str = "ana") -> Record:
    """A 50/100 switch to green whose second bake found a regression: restored by a direct flip."""
    steps = [{"weights": {"blue": 50, "green": 50}, "test_color": "blue", "apply_seconds": 3.0, "at": at(0),
              "traffic": {"verdict": "pass", "evidence": "green no worse"}},
             {"weights": {"blue": 0, "green": 100}, "test_color": "green", "apply_seconds": 3.0, "at": at(60),
              "traffic": {"verdict": "fail", "evidence": "green 5xx 20%"}}]
    details = {"applied": steps, "gate": {"passed": True, "checks": [
        {"name": "health", "passed": True, "evidence": "2/2 healthy"},
        {"name": "smoke", "passed": True, "evidence": f"GET / 200 {HOSTILE}"}]},
               "restore": {"to": {"blue": 100, "green": 0}, "detected_at": at(90), "flip_seconds": 0.4,
                           "reconcile_seconds": 20.0}}
    return Record("switch", "rolled-back", from_color="blue", to_color="green",
                  versions={"blue": "1.0.0", "green": "1.1.0"}, reason="bake 2: green traffic worse than blue",
                  details=details, at=at(115), actor=actor, source={"commit": "abc1234", "dirty": False})


def series() -> dict[str, list[SeriesPoint]]:
    return {c: [SeriesPoint(T0 + timedelta(seconds=s), 100, 20 if c == "green" and s >= 60 else 0, 12.5)
                for s in range(-20, 130, PERIOD)] for c in ("blue", "green")}


def test_the_window_has_two_periods_either_side() -> None:
    start, end = window(rolled_back(), PERIOD)
    assert (start, end) == (T0 - timedelta(seconds=20), T0 + timedelta(seconds=135))


def test_weights_are_a_step_function_from_the_start_through_the_steps_to_the_restore() -> None:
    start = T0 - timedelta(seconds=20)
    steps = weight_steps(rolled_back(), start)
    flipped = T0 + timedelta(seconds=90.4)
    assert steps["green"] == [(start, 0), (T0, 50), (T0 + timedelta(seconds=60), 100), (flipped, 0),
                              (T0 + timedelta(seconds=115), 0)]
    assert [w for _, w in steps["blue"]] == [100, 50, 0, 100, 100]


def test_a_succeeded_rollback_without_steps_moves_at_its_own_time() -> None:
    record = Record("rollback", "succeeded", from_color="green", to_color="blue", at=at(0))
    steps = weight_steps(record, T0 - timedelta(seconds=100))
    assert steps["blue"] == [(T0 - timedelta(seconds=100), 0), (T0, 100), (T0, 100)]
    assert [m.label for m in markers(record)] == ["rollback succeeded"]


def test_markers_name_each_step_each_verdict_the_detection_and_the_restore() -> None:
    found = [(m.kind, m.label, m.at - T0) for m in markers(rolled_back())]
    assert found == [
        ("step", "step 1: blue 50% / green 50%", timedelta(0)),
        ("bake", "bake 1: pass", timedelta(seconds=60)),
        ("step", "step 2: blue 0% / green 100%", timedelta(seconds=60)),
        ("bake", "bake 2: fail", timedelta(seconds=90)),
        ("detected", "problem detected", timedelta(seconds=90)),
        ("restored", "production restored", timedelta(seconds=90.4)),
    ]


def test_rates_are_per_second_and_errors_a_share_of_requests() -> None:
    line = timeline(rolled_back(), series(), PERIOD)
    green = {t: (rps, errors) for t, rps, errors, _ in line.rates["green"]}
    assert green[T0] == (10.0, 0.0) and green[T0 + timedelta(seconds=60)] == (10.0, 20.0)


def test_a_period_without_a_datapoint_served_nothing() -> None:
    quiet = {"blue": [p for p in series()["blue"] if p.start != T0 + timedelta(seconds=30)]}
    blue = {t: (rps, errors, p99) for t, rps, errors, p99 in timeline(rolled_back(), quiet, PERIOD).rates["blue"]}
    assert blue[T0 + timedelta(seconds=30)] == (0.0, None, None) and blue[T0 + timedelta(seconds=40)][0] == 10.0
    green = timeline(rolled_back(), quiet, PERIOD).rates["green"]
    assert green[0][0] == T0 - timedelta(seconds=20) and {rps for _, rps, _, _ in green} == {0.0}


def test_every_record_string_is_escaped() -> None:
    page = render_html(f"prod{HOSTILE}", rolled_back(actor=HOSTILE), series(), PERIOD)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "abc1234" in page and "smoke" in page and "green traffic worse than blue" in page


def test_the_page_is_self_contained() -> None:
    page = render_html("prod", rolled_back(), series(), PERIOD)
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js itself is inlined
    sources = re.findall(r"<script[^>]*\bsrc=", page)
    assert sources == [], "no script is loaded from elsewhere"
    assert not re.search(r"<(?:link|img|iframe)[^>]+(?:href|src)=[\"']https?://", page)


def test_a_record_is_chosen_by_a_unique_start_of_its_time() -> None:
    from bgtool.cli.report import choose
    from bgtool.errors import BgtoolError

    deploy = Record("deploy", "succeeded", at=at(-600))
    first, second = Record("switch", "succeeded", at=at(0)), rolled_back()
    records = [deploy, first, second, Record("retire", "succeeded", at=at(900))]
    assert choose(records, None, "prod") is second
    assert choose(records, at(0)[:18], "prod") is first
    for wanted, problem in ((at(0)[:10], "matches several records"), (at(-600), "is not the time of"),
                            ("yesterday", "is not the time of")):
        try:
            choose(records, wanted, "prod")
        except BgtoolError as exc:
            assert problem in exc.message and at(0) in (exc.hint or "") and at(115) in (exc.hint or "")
        else:
            raise AssertionError(f"{wanted!r} was accepted")
    try:
        choose([deploy], None, "prod")
    except BgtoolError as exc:
        assert "nothing to report" in exc.message
    else:
        raise AssertionError("a history without a switch was accepted")


def test_a_time_without_an_offset_is_utc() -> None:
    record = Record("rollback", "succeeded", from_color="green", to_color="blue", at="2026-12-07T15:00:00")
    assert window(record, PERIOD)[1] == T0 + timedelta(seconds=2 * PERIOD)

