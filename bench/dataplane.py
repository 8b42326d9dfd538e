"""Benchmark of the local data plane (embedded AWS + HAProxy + target processes).

Measures, on a throwaway embedded AWS with a two-color stack made by boto3 (no Terraform):
1. the delay from a listener weight change through the AWS API (boto3 ModifyListener) to the
   first answer of the new color at the production URL: the whole path, API call included
   (target <= 0.5 s; median of 20, alternating 100/0 and 0/100);
2. the latency HAProxy adds on loopback: GET /version straight to a target process and through
   the listener's local port, p50 and p99 over N requests each, interleaved.

Run: .venv/bin/python bench/dataplane.py [--changes 20] [--requests 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from bench.common import embedded_project  # noqa: E402
from bgtool.embedded.dataplane import listener_urls, read_state  # noqa: E402
from tests.integration.stack import clients, create_stack  # noqa: E402


def wait_served(root: Path, timeout: float = 60) -> tuple[str, list[int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = read_state(root) or {}
        urls = listener_urls(doc, "bench")
        targets = doc.get("targets", [])
        if len(urls) == 2 and len(targets) == 4 and all(t["ready"] for t in targets):
            url = urls[80]
            try:
                if requests.get(f"{url}/version", timeout=2).ok:
                    return url, [t["port"] for t in targets if t["color"] == "blue"]
            except requests.RequestException:
                pass
        time.sleep(0.2)
    raise SystemExit("the data plane did not serve the stack within 60 s")


def change_delays(endpoint: str, stack: object, url: str, count: int) -> list[float]:
    elb = clients(endpoint)["elbv2"]
    delays = []
    with requests.Session() as session:
        for i in range(count):
            to_green = i % 2 == 0
            want = "2.0.0" if to_green else "1.0.0"
            started = time.perf_counter()
            elb.modify_listener(ListenerArn=stack.production_arn,  # type: ignore[attr-defined]
                                DefaultActions=stack.forward(0, 100) if to_green else stack.forward(100, 0))  # type: ignore[attr-defined]
            while True:
                if session.get(f"{url}/version", timeout=5).text.strip() == want:
                    break
                if time.perf_counter() - started > 10:
                    raise SystemExit(f"change {i}: {want} never answered")
            delays.append(time.perf_counter() - started)
            time.sleep(0.3)
    return delays


def latencies(direct: str, proxied: str, count: int) -> tuple[list[float], list[float]]:
    a: list[float] = []
    b: list[float] = []
    with requests.Session() as session:
        for _ in range(20):  # warm-up
            session.get(f"{direct}/version", timeout=5)
            session.get(f"{proxied}/version", timeout=5)
        for _ in range(count):
            for url, sink in ((direct, a), (proxied, b)):
                started = time.perf_counter()
                session.get(f"{url}/version", timeout=5).raise_for_status()
                sink.append(time.perf_counter() - started)
    return a, b


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with embedded_project("bgtool-bench-dataplane-") as (root, endpoint):
        stack = create_stack(endpoint, "bench", "bench", {"blue": "1.0.0", "green": "2.0.0"})
        url, blue_ports = wait_served(root)
        delays = change_delays(endpoint, stack, url, args.changes)
        # Production back on blue: the proxied requests reach the same processes as the direct ones.
        direct, proxied = latencies(f"http://127.0.0.1:{blue_ports[0]}", url, args.requests)
    ms = 1000.0
    rows = [
        ("listener change -> new weights served", f"median {statistics.median(delays) * ms:.0f} ms",
         f"max {max(delays) * ms:.0f} ms", f"n={len(delays)}, target <= 500 ms"),
        ("GET /version direct to a target", f"p50 {pct(direct, 50) * ms:.2f} ms", f"p99 {pct(direct, 99) * ms:.2f} ms",
         f"n={len(direct)}"),
        ("GET /version through HAProxy", f"p50 {pct(proxied, 50) * ms:.2f} ms",
         f"p99 {pct(proxied, 99) * ms:.2f} ms", f"n={len(proxied)}"),
        ("added by the proxy", f"p50 {(pct(proxied, 50) - pct(direct, 50)) * ms:+.2f} ms",
         f"p99 {(pct(proxied, 99) - pct(direct, 99)) * ms:+.2f} ms", ""),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print("local data plane (loopback, this machine)")
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0 if statistics.median(delays) <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
