"""`bgtool report` for real: a switch under a steady request stream on the embedded AWS, its page
written from the history and the data plane's metrics, then opened in a real headless Chromium with
no network: plotly must have drawn every series, and the screenshot must show a picture.

Chromium is a requirement of this module (scripts/ensure-chromium, `make chromium`): without it the
tests fail, they are not skipped.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Project
from tests.integration.traffic import Traffic

ENV = "local"
CHROMIUM = Path("/usr/bin/chromium")
SERIES = 8  # per color: the weight, requests/s, 5xx share and p99


@pytest.fixture(scope="module")
def reported(applied: Project) -> tuple[Project, dict[str, Any]]:
    """A judged 50/100 switch to green (deployed with a new version first) under steady traffic, reported."""
    applied.ok("deploy", ENV, "1.1.0", "--yes", timeout=900)
    url = json.loads(applied.ok("local", "status", "--env", ENV, "--json").stdout)["listeners"]["80"]
    with Traffic(url) as traffic:
        time.sleep(2)
        applied.ok("switch", ENV, "--steps", "50,100", "--yes", "--json", timeout=900)
        time.sleep(1)
    assert traffic.answers and not [a for a in traffic.answers if a[0] != 200]
    time.sleep(12)  # the last period of the monitor reaches the embedded CloudWatch
    return applied, json.loads(applied.ok("report", ENV, "--json").stdout)


def chromium(*args: str, tmp: Path) -> str:
    assert CHROMIUM.exists(), "Chromium is missing: run scripts/ensure-chromium (make chromium)"
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp / 'profile'}", "--window-size=1400,1600", *args],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def test_the_report_is_of_the_switch_and_holds_its_moments(reported: tuple[Project, dict[str, Any]]) -> None:
    project, doc = reported
    assert doc["ok"] and doc["record"]["operation"] == "switch" and doc["record"]["result"] == "succeeded"
    path = Path(doc["path"])
    assert path.parent == project.root / "build" / "reports" and path.name.startswith(f"{ENV}-")
    assert doc["periods"]["blue"] > 0 and doc["periods"]["green"] > 0, doc
    page = path.read_text().replace("\\u002f", "/")  # plotly's JSON escapes the slash
    assert "step 1: blue 50% / green 50%" in page and "step 2: blue 0% / green 100%" in page
    assert "bake 1: pass" in page and "1.1.0" in page
    history = json.loads(project.ok("history", ENV, "--json").stdout)["records"]
    switch = [r for r in history if r["operation"] == "switch"][-1]
    assert all(step["at"] for step in switch["details"]["applied"])


def test_an_unknown_record_is_refused_with_the_recent_ones(reported: tuple[Project, dict[str, Any]]) -> None:
    project, doc = reported
    out = project.root / "build" / "nowhere.html"
    done = project.run("report", ENV, "1999-01-01", "--out", str(out), "--json")
    assert done.returncode == 1 and not out.exists()
    error = json.loads(done.stdout)["error"]
    assert "1999-01-01" in error["message"] and doc["record"]["at"] in error["hint"]
    assert "Traceback" not in done.stderr
    again = json.loads(project.ok("report", ENV, doc["record"]["at"][:19], "--out", str(out), "--json").stdout)
    assert again["record"] == doc["record"] and out.exists()


def test_chromium_draws_every_series_offline(reported: tuple[Project, dict[str, Any]], tmp_path: Path) -> None:
    url = Path(reported[1]["path"]).as_uri()
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", url, tmp=tmp_path)
    assert "main-svg" in dom, "plotly drew no chart"
    assert len(re.findall(r'class="trace scatter', dom)) == SERIES
    assert re.findall(r'class="legendtext"[^>]*>([^<]*)<', dom) == ["blue", "green"]
    shown = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    assert "Error" not in shown
    png = tmp_path / "report.png"
    chromium(f"--screenshot={png}", url, tmp=tmp_path)
    assert distinct_colors(png.read_bytes()) > 10, "the screenshot is (nearly) blank"


def distinct_colors(png: bytes) -> int:
    """How many different pixel colors an 8-bit RGB(A) PNG has (no dependency on an image library)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(png):
        length, kind = struct.unpack(">I4s", png[offset:offset + 8])
        chunks.setdefault(kind, []).append(png[offset + 8:offset + 8 + length])
        offset += length + 12
    width, height, depth, color_type = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and color_type in (2, 6), (depth, color_type)
    channels = 3 if color_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride = width * channels
    colors: set[bytes] = set()
    previous = bytearray(stride)
    for row in range(height):
        line = raw[row * (stride + 1):(row + 1) * (stride + 1)]
        current = unfilter(line[0], bytearray(line[1:]), previous, channels)
        colors.update(bytes(current[i:i + channels]) for i in range(0, stride, channels * 7))
        previous = current
    return len(colors)


def unfilter(kind: int, line: bytearray, above: bytearray, bpp: int) -> bytearray:
    """Undo one PNG scanline filter (None, Sub, Up, Average, Paeth)."""
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = above[i]
        c = above[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + a) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + b) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 0xFF
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return line
