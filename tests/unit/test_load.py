"""The bounded load generator: what it counts, that it keeps its rate, and that it always stops."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx

from bgtool.release.load import CONNECTION_ERROR, TIMEOUT, LoadPlan, path_sequence, percentile, run_load


def plan(rate: float = 100, seconds: float = 0.5, *, concurrency: int = 10, cap: int = 10_000,
         timeout: float = 1.0, paths: list[tuple[str, int]] | None = None) -> LoadPlan:
    return LoadPlan("http://color.test", rate, seconds, concurrency, cap, timeout, paths or [("/", 1)])


def test_every_outcome_is_counted_statuses_connection_errors_and_timeouts() -> None:
    calls = Counter[str]()

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls[path] += 1
        if path == "/refused":
            raise httpx.ConnectError("connection refused", request=request)
        if path == "/slow":
            raise httpx.ReadTimeout("read timed out", request=request)
        return httpx.Response(404 if path == "/missing" else 200, text="ok")

    paths = [("/", 4), ("/missing", 2), ("/refused", 1), ("/slow", 1)]
    result = run_load(plan(paths=paths, seconds=0.4), transport=httpx.MockTransport(handler))
    assert result.sent == result.planned == 40
    assert result.statuses == Counter({"200": 20, "404": 10, CONNECTION_ERROR: 5, TIMEOUT: 5})
    assert result.failures == 20 and result.error_rate == 0.5
    assert result.errors_by_kind == {"HTTP 4xx": 10, CONNECTION_ERROR: 5, TIMEOUT: 5}
    assert result.by_path["/missing 404"] == 10
    assert result.answered == 30  # statuses, of any kind, have a latency; failures without an answer do not


def test_it_keeps_a_fixed_rate_and_the_request_cap() -> None:
    started = time.monotonic()
    result = run_load(plan(rate=40, seconds=0.5), transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    took = time.monotonic() - started
    assert result.sent == 20 and 0.45 <= took < 5, took  # paced, never a burst; a loaded machine may lag
    assert result.achieved_rate <= 50
    capped = run_load(plan(rate=100, seconds=1.0, cap=7), transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert capped.sent == 7


def test_a_color_that_never_answers_stops_at_the_hard_deadline_counted_as_timeouts() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        return httpx.Response(200)

    started = time.monotonic()
    result = run_load(plan(rate=20, seconds=0.5, concurrency=2, timeout=0.5), transport=httpx.MockTransport(hang))
    took = time.monotonic() - started
    assert took < 3, f"ran {took:.1f}s: the load must stop at seconds + timeout"
    assert result.sent == 10 and result.statuses[TIMEOUT] == 10 and result.answered == 0


def test_paths_get_their_weighted_share_spread_evenly() -> None:
    seq = path_sequence([("/a", 3), ("/b", 1)], 8)
    assert Counter(seq) == {"/a": 6, "/b": 2}
    assert seq[:4].count("/b") == 1  # not all /b at the end


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([], 99) is None
