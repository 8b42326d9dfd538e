"""A bounded load generator: a fixed request rate for a fixed time, through one base URL.

It exists so that the gate can ask "can the idle color carry production's load?" before it takes
any. Bounded three ways, so it always stops by itself: a schedule of exactly `rate x seconds`
requests (capped by `max_requests`), at most `concurrency` in flight, and a hard deadline of
`seconds + timeout` after which whatever is still in flight is cancelled and counted as a timeout.
Open model: request i is due at i / rate whatever happened to the ones before, so a slow color
shows up as latency and as a rate it could not keep, not as a quietly lower load.

HTTP is httpx (async, per-request timeouts, connection limits); every outcome is counted: HTTP
statuses by class, and connection errors and timeouts as failures of their own.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

CONNECTION_ERROR = "connection error"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class LoadPlan:
    base_url: str
    rate: float
    """Requests per second."""
    seconds: float
    concurrency: int
    max_requests: int
    timeout: float
    paths: Sequence[tuple[str, int]]
    """(path, weight)."""

    @property
    def total(self) -> int:
        """Requests the schedule holds: rate x seconds, at least one, never above the cap."""
        return max(1, min(self.max_requests, math.floor(self.rate * self.seconds + 1e-9)))


@dataclass
class LoadResult:
    planned: int
    rate: float
    seconds: float
    concurrency: int
    started_at: datetime
    ended_at: datetime
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    """Outcome counts: "200", "503", "timeout", "connection error", per path as "PATH STATUS" in `by_path`."""
    by_path: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    """Of answered requests (any status)."""
    late: int = 0
    """Requests that started more than a second after they were due (all `concurrency` were busy)."""
    elapsed: float = 0.0

    @property
    def failures(self) -> int:
        return sum(n for outcome, n in self.statuses.items() if not _success(outcome))

    @property
    def errors_by_kind(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for outcome, n in self.statuses.items():
            if not _success(outcome):
                out[outcome if not outcome.isdigit() else f"HTTP {outcome[0]}xx"] += n
        return dict(out)

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.sent if self.sent else None

    @property
    def answered(self) -> int:
        return len(self.latencies_ms)

    @property
    def achieved_rate(self) -> float:
        """Answers per second over the run (a color that cannot keep up answers fewer than were sent)."""
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, pct: float) -> float | None:
        return percentile(self.latencies_ms, pct)

    def to_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "sent": self.sent, "answered": self.answered, "rate": round(self.rate, 2),
                "achieved_rate": round(self.achieved_rate, 2), "seconds": self.seconds,
                "concurrency": self.concurrency, "failures": self.failures, "errors": self.errors_by_kind,
                "error_rate": None if self.error_rate is None else round(self.error_rate, 5),
                "p50_ms": _round(self.percentile(50)), "p95_ms": _round(self.percentile(95)),
                "p99_ms": _round(self.percentile(99)), "late": self.late, "by_path": dict(self.by_path),
                "started_at": self.started_at.isoformat(), "ended_at": self.ended_at.isoformat()}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _success(outcome: str) -> bool:
    return outcome.isdigit() and 200 <= int(outcome) < 400


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (as CloudWatch computes them); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def path_sequence(paths: Sequence[tuple[str, int]], n: int) -> list[str]:
    """N paths in proportion to their weights, spread evenly (smooth weighted round robin), so that
    even a short run sends every path its share."""
    current = [0] * len(paths)
    total = sum(w for _, w in paths)
    out = []
    for _ in range(n):
        for i, (_, weight) in enumerate(paths):
            current[i] += weight
        best = max(range(len(paths)), key=lambda i: current[i])
        current[best] -= total
        out.append(paths[best][0])
    return out


def run_load(plan: LoadPlan, *, transport: httpx.AsyncBaseTransport | None = None,
             clock: Callable[[], float] = time.monotonic) -> LoadResult:
    """Send the plan's requests and return what came back; never raises for what the target does."""
    return asyncio.run(_run(plan, transport, clock))


async def _run(plan: LoadPlan, transport: httpx.AsyncBaseTransport | None, clock: Callable[[], float]) -> LoadResult:
    total = plan.total
    result = LoadResult(total, plan.rate, plan.seconds, plan.concurrency, datetime.now(UTC), datetime.now(UTC))
    limits = httpx.Limits(max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency)
    gate = asyncio.Semaphore(plan.concurrency)
    paths = path_sequence(plan.paths, total)
    tls = _tls() if plan.base_url.startswith("https:") else True
    async with httpx.AsyncClient(base_url=plan.base_url, timeout=plan.timeout, limits=limits,
                                 transport=transport, follow_redirects=False, verify=tls) as client:
        start = clock()  # after the client exists: its set-up is not the target's lateness

        async def one(i: int, path: str) -> None:
            async with gate:
                if clock() - (start + i / plan.rate) > 1.0:
                    result.late += 1
                outcome, took = await _request(client, path)
            result.statuses[outcome] += 1
            result.by_path[f"{path} {outcome}"] += 1
            if took is not None:
                result.latencies_ms.append(took)

        tasks: dict[asyncio.Task[None], str] = {}
        for i, path in enumerate(paths):
            delay = start + i / plan.rate - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            result.sent += 1
            tasks[asyncio.create_task(one(i, path))] = path
        hard_stop = start + plan.seconds + plan.timeout
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, hard_stop - clock())) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            result.statuses[TIMEOUT] += len(pending)
            for task in pending:
                result.by_path[f"{tasks[task]} {TIMEOUT}"] += 1
    result.elapsed = max(clock() - start, 1e-9)
    result.ended_at = datetime.now(UTC)
    return result


def _tls() -> ssl.SSLContext:
    """The ALB's certificate names the public host, not the ALB's DNS name: verify the chain only."""
    context = ssl.create_default_context()
    context.check_hostname = False
    return context


async def _request(client: httpx.AsyncClient, path: str) -> tuple[str, float | None]:
    began = time.perf_counter()
    try:
        response = await client.get(path)
        await response.aread()
    except httpx.TimeoutException:
        return TIMEOUT, None
    except (httpx.TransportError, OSError):
        return CONNECTION_ERROR, None
    return str(response.status_code), (time.perf_counter() - began) * 1000.0
