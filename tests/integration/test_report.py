"""What a person sees of a release, for real: the live panel of a switch under a steady request
stream on the embedded AWS (rendered to a recorded console at fixed moments), `bgtool watch`, and
`bgtool report`'s page written from the history and the data plane's metrics, then opened in a real
headless Chromium with no network: plotly must have drawn every series, and the screenshot must show
a picture.

Chromium is a requirement of this module (scripts/ensure-chromium, `make chromium`): without it the
tests fail, they are not skipped.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bgtool import events
from bgtool.cli.panel import LivePanel
from bgtool.release.switch import Switch, plan_from
from bgtool.terraform.workspace import ENDPOINT_ENV, Workspace
from tests.integration.conftest import BGTOOL, Project
from tests.integration.traffic import Traffic

ENV = "local"
CHROMIUM = Path("/usr/bin/chromium")
SERIES = 8  # per color: the weight, requests/s, 5xx share and p99


def text_of(renderable: object) -> str:
    console = Console(record=True, width=160, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def moment(event: object) -> str | None:
    """The fixed moments of a switch at which the panel is looked at."""
    if isinstance(event, events.StepApplied):
        return f"step {event.index} live"
    if isinstance(event, events.TrafficJudged):
        return f"{event.phase} judged"
    if isinstance(event, events.Countdown) and event.phase == "monitor":
        return "monitor"
    return None


def switch_watched(project: Project) -> dict[str, str]:
    """`bgtool switch --steps 50,100` as it runs at a terminal (the same Switch and the same panel sink),
    its panel read from AWS and rendered at each fixed moment and once more after the end."""
    frames: dict[str, str] = {}
    screen = Console(record=True, force_terminal=True, width=160, file=io.StringIO())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENDPOINT_ENV, project.endpoint)
        panel = LivePanel(project.root, ENV, console=screen, every=2.0)

        def sink(event: object) -> None:
            panel(event)
            name = moment(event)
            if name:
                panel.read_now()
                frames[name] = text_of(panel.renderable())

        ws = Workspace(project.root, ENV, emit=sink)
        outcome = Switch(ws, plan_from(ws, None, [50, 100], None, None), lambda question: True).run()
        panel.close()
        panel.read_now()
        frames["after"] = text_of(panel.renderable())
    assert outcome.ok, outcome.reason
    frames["screen"] = screen.export_text()
    return frames


@pytest.fixture(scope="module")
def switched(applied: Project) -> tuple[Project, dict[str, str]]:
    """A judged 50/100 switch to green (deployed with a new version first) under steady traffic."""
    applied.ok("deploy", ENV, "1.1.0", "--yes", timeout=900)
    url = json.loads(applied.ok("local", "status", "--env", ENV, "--json").stdout)["listeners"]["80"]
    with Traffic(url) as traffic:
        time.sleep(2)
        frames = switch_watched(applied)
        time.sleep(1)
    assert traffic.answers and not [a for a in traffic.answers if a[0] != 200]
    return applied, frames


@pytest.fixture(scope="module")
def reported(switched: tuple[Project, dict[str, str]]) -> tuple[Project, dict[str, Any]]:
    applied = switched[0]
    time.sleep(12)  # the last period of the monitor reaches the embedded CloudWatch
    return applied, json.loads(applied.ok("report", ENV, "--json").stdout)


def row(frame: str, color: str) -> str:
    return next(line for line in frame.splitlines() if re.match(rf"│ {color} +(active|idle) ", line))


def test_the_panel_follows_the_switch(switched: tuple[Project, dict[str, str]]) -> None:
    frames = switched[1]
    assert set(frames) >= {"step 1 live", "bake 1 judged", "monitor", "after", "screen"}, list(frames)
    step = frames["step 1 live"]
    assert "local · switch" in step and "phase: step 1/2" in step
    assert "weights: blue 50 ██████████░░░░░░░░░░ 50 green (listener)" in step
    assert "lock: switch blue -> green by" in step
    assert "1.1.0" in row(step, "green") and "2/2" in row(step, "green") and "50%" in row(step, "blue")
    judged = frames["bake 1 judged"]
    verdict = next(line for line in judged.splitlines() if line.startswith("│ 1/2 "))
    assert "blue 50 / green 50" in verdict and "pass" in verdict and "requests" in verdict
    for color in ("blue", "green"):  # both colors serve half: a rate, a 5xx share and a p99 each
        cells = row(judged, color).split()  # │ color role version weight req/s 5xx p99 ms healthy alarms
        assert re.fullmatch(r"\d+\.\d", cells[5]) and float(cells[5]) > 0, cells
        assert cells[6] == "0.0%" and cells[8] == "ms", cells
    monitor = frames["monitor"]
    left = re.search(r"phase: monitor  ⏱ (\d+)s left", monitor)
    assert left and int(left.group(1)) > 0, monitor
    assert "weights: blue 0 ░░░░░░░░░░░░░░░░░░░░ 100 green" in monitor
    after = frames["after"]
    assert "lock: none" in after and "active" in row(after, "green") and "idle" in row(after, "blue")
    assert re.search(r"│ monitor +pass ", after), after
    assert "phase: succeeded" in frames["screen"], "the terminal's last frame is the end of the switch"


def test_watch_shows_the_panel_until_interrupted(switched: tuple[Project, dict[str, str]]) -> None:
    project = switched[0]
    doc = json.loads(project.ok("watch", ENV, "--json").stdout)
    assert doc["weights"] == {"blue": 0, "green": 100} and doc["lock"] is None
    assert doc["colors"]["green"]["role"] == "active" and doc["colors"]["green"]["healthy_targets"] == 2
    once = project.ok("watch", ENV).stderr  # no terminal: one frame
    assert "weights: blue 0" in once and "phase: at rest" in once and row(once, "green")
    screen = watch_on_a_terminal(project, seconds=6)
    assert screen["exit"] == 0 and "Traceback" not in screen["text"], screen
    assert screen["text"].count("weights: blue 0") >= 2, "the panel was not redrawn"


def watch_on_a_terminal(project: Project, seconds: float) -> dict[str, Any]:
    """`bgtool watch` on a pseudo-terminal for SECONDS, then Ctrl-C."""
    leader, follower = pty.openpty()
    env = {**project.env, "COLUMNS": "150", "LINES": "40", "TERM": "xterm-256color"}
    proc = subprocess.Popen([BGTOOL, "watch", ENV, "--every", "1"], cwd=project.root, env=env,
                            stdin=follower, stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out += _drain(leader, 0.2)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    out += _drain(leader, 0.5)
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))
    return {"exit": code, "text": text}


def _drain(fd: int, wait: float) -> bytes:
    got = b""
    while select.select([fd], [], [], wait)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
        wait = 0.05
    return got


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
