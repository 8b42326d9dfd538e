"""bench/timeline.py: the zero-downtime benchmark's samples bucketed per second, and the page drawn from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.timeline import Span, bucket, render_html

T0 = 5000.0  # a monotonic clock reading, as the benchmark takes them


@dataclass(frozen=True)
class Sample:
    sent: float
    outcome: str
    version: str


def stream() -> list[Sample]:
    """Two seconds of 1.0.0, a second with nothing sent, then 1.1.0 with an injected 500 and a timeout."""
    return [Sample(T0, "ok", "1.0.0"), Sample(T0 + 0.9, "ok", "1.0.0"), Sample(T0 + 1.5, "ok", "1.0.0"),
            Sample(T0 + 3.0, "ok", "1.1.0"), Sample(T0 + 3.2, "injected", "1.1.0"),
            Sample(T0 + 3.7, "ReadTimeout", ""), Sample(T0 + 4.99, "HTTP 503", "")]


def test_answers_are_counted_per_second_and_version_with_empty_seconds_as_zero() -> None:
    buckets = bucket(stream(), [])
    assert buckets.seconds == [0, 1, 2, 3, 4]
    assert buckets.versions == {"1.0.0": [2, 1, 0, 0, 0], "1.1.0": [0, 0, 0, 2, 0]}


def test_every_outcome_but_ok_is_a_failure_kind_of_its_own_answered_or_not() -> None:
    buckets = bucket(stream(), [])
    assert buckets.failures == {"HTTP 503": [0, 0, 0, 0, 1], "ReadTimeout": [0, 0, 0, 1, 0],
                                "injected": [0, 0, 0, 1, 0]}
    answered = sum(sum(c) for c in buckets.versions.values())
    assert answered == len([s for s in stream() if s.version])


def test_phases_and_marks_are_seconds_from_the_earliest_time_which_a_phase_may_set() -> None:
    phases = [("switch", T0 - 2.0, T0 + 1.25), ("rollback", T0 + 1.25, T0 + 6.5)]
    buckets = bucket(stream(), phases, [(T0 + 0.5, "blue 90% / green 10%"), (T0 - 9.0, "before the stream")])
    assert buckets.phases == [Span("switch", 0.0, 3.25), Span("rollback", 3.25, 8.5)]
    assert buckets.marks == [(2.5, "blue 90% / green 10%")]
    assert buckets.seconds == list(range(9))  # through the end of the last phase
    assert buckets.versions["1.0.0"][:4] == [0, 0, 2, 1]


def test_nothing_measured_is_an_empty_timeline() -> None:
    empty = bucket([], [])
    assert (empty.seconds, empty.versions, empty.failures, empty.phases) == ([], {}, {}, [])


def figure(page: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces and the layout plotly was given, read back from the page's Plotly.newPlot call."""
    call = page[page.rindex("Plotly.newPlot("):]
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(call, call.index("[{"))
    layout, _ = decoder.raw_decode(call, call.index("{", end))
    return data, layout


def test_the_page_draws_each_version_in_its_color_each_failure_kind_and_every_phase() -> None:
    phases = [("switch <10%>", T0, T0 + 2.0), ("restore", T0 + 2.0, T0 + 5.0)]
    table = [["phase", "requests"], ["switch <10%>", "3"], ["restore", "4"]]
    page = render_html("zero downtime", bucket(stream(), phases), {"1.0.0": "blue", "1.1.0": "green"}, table)
    assert page.startswith("<!DOCTYPE html>") and "switch <10%>" not in page  # names are escaped
    assert page.count("<td>switch &lt;10%&gt;</td>") == 1
    data, layout = figure(page)
    traces = {t["name"]: t for t in data}
    assert set(traces) == {"1.0.0 (blue)", "1.1.0 (green)", "injected 500 (by the application)", "ReadTimeout",
                           "HTTP 503"}
    assert traces["1.0.0 (blue)"]["line"]["color"] == "#1f6fd1" and traces["1.1.0 (green)"]["y"] == [0, 0, 0, 2, 0, 0]
    bands = [(shape["x0"], shape["x1"]) for shape in layout["shapes"] if shape["type"] == "rect"]
    assert bands == [(0.0, 2.0), (0.0, 2.0), (2.0, 5.0), (2.0, 5.0)]  # each band over both rows
    names = [a["text"] for a in layout["annotations"]]
    assert "switch &lt;10%&gt;" in names and "restore" in names
    assert "plotly.js" in page.lower()  # inlined: the page opens offline
