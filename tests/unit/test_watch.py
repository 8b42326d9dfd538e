"""The live panel without AWS: readings and an operation's events in, the text a person sees out."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from bgtool import events
from bgtool.aws.metrics import TrafficStats
from bgtool.cli import common, ui
from bgtool.cli.panel import LivePanel, render_panel
from bgtool.release.watch import ColorReading, PanelState, Reading, metrics_window

AT = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def screen(renderable: object, width: int = 150) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def reading(blue: int = 90, green: int = 10, lock: str | None = "switch blue -> green by ops on h (pid 7)") -> Reading:
    colors = {
        "blue": ColorReading("blue", "active", "1.0.0", blue, TrafficStats(900, 9, 41.7), 30.0, 2, 2),
        "green": ColorReading("green", "idle", "1.1.0", green, TrafficStats(100, 0, None), 30.0, 1, 2,
                              ("local-green-5xx",)),
    }
    return Reading("local", AT, "listener", colors, lock, (AT, AT))


def test_the_metrics_window_is_whole_published_periods() -> None:
    lo, hi = metrics_window(datetime(2026, 12, 7, 12, 0, 17, tzinfo=UTC), resolution=5, delay=6)
    assert (lo.second, hi.second) == (55, 10)  # 12:00:11 floored to 10, three 5 s periods back
    assert (hi - lo).total_seconds() == 15 and lo.minute == 59
    lo, hi = metrics_window(datetime(2026, 12, 7, 12, 3, 30, tzinfo=UTC), resolution=60, delay=90)
    assert (lo.minute, hi.minute, hi.second) == (59, 2, 0)


def test_rates_come_from_the_window() -> None:
    r = reading()
    assert r.colors["blue"].rate == 30.0 and r.weights == {"blue": 90, "green": 10}
    doc = r.to_dict()
    assert doc["colors"]["blue"]["requests_per_second"] == 30.0 and doc["colors"]["blue"]["error_rate"] == 0.01
    assert doc["colors"]["green"]["alarms_firing"] == ["local-green-5xx"] and doc["lock"].startswith("switch")
    empty = ColorReading("blue", "idle", "1", None, None, 30.0, 0, 0)
    assert empty.rate is None and empty.to_dict()["requests"] is None


def test_a_switch_as_its_events_arrive() -> None:
    state = PanelState()
    state.apply(events.PhaseEntered("switch", "step 1/2"), now=100.0)
    state.apply(events.StepApplied(1, 2, {"blue": 50, "green": 50}, 3.2), now=103.0)
    state.apply(events.PhaseEntered("switch", "bake 1/2"), now=103.0)
    state.apply(events.Countdown("bake 1", 30), now=103.0)
    assert state.seconds_left(now=113.0) == 20.0 and state.activity() == "bake 1/2"
    state.apply(events.TrafficJudged("bake 1", "pass", "green 10 requests | blue 11 requests"), now=133.0)
    state.apply(events.PhaseEntered("switch", "step 2/2"), now=134.0)
    assert state.seconds_left(now=135.0) is None
    assert [(s.label, s.weights, s.verdict) for s in state.steps] == [("1/2", "blue 50 / green 50", "pass")]
    state.apply(events.TrafficJudged("monitor", "fail", "green 5xx"), now=140.0)
    assert state.steps[-1].label == "monitor" and state.steps[-1].verdict == "fail"


def test_a_deploy_without_phases_shows_what_runs() -> None:
    state = PanelState()
    state.apply(events.TerraformActivity("green", "apply_start", "aws_launch_template.app", "update", None, ""), 1.0)
    assert state.activity() == "terraform apply: green (1 resource(s) in flight)"
    state.apply(events.TerraformActivity("green", "apply_complete", "aws_launch_template.app", "update", 2.0, ""), 3.0)
    state.apply(events.Waiting("green", "1/2 in service", 4.0), 5.0)
    assert state.activity() == "waiting: green: 1/2 in service (4s)"
    state.apply(events.WaitOver("green"), 6.0)
    assert state.activity() == ""


def test_the_panel_shows_phase_countdown_weights_colors_verdicts_and_lock() -> None:
    state = PanelState()
    for event in (events.PhaseEntered("switch", "bake 1/2"), events.Countdown("bake 1", 30),
                  events.CheckResult("targets", True, "2/2"), events.Note("gate passed", "ok")):
        state.apply(event, now=0.0)
    state.apply(events.StepApplied(1, 2, {"blue": 90, "green": 10}, 1.0), now=0.0)
    state.apply(events.TrafficJudged("bake 1", "pass", "green 100 requests"), now=0.0)
    text = screen(render_panel("local", state, reading(), now=12.0, utc=AT))
    assert "local · switch" in text and "phase: bake 1/2" in text and "18s left" in text
    assert "gate: 1 passed, 0 failed" in text
    assert "blue 90 ██████████████████░░ 10 green (listener)" in text
    blue = next(line for line in text.splitlines() if "│ blue" in line and "active" in line)
    assert "1.0.0" in blue and "90%" in blue and "30.0" in blue and "1.0%" in blue and "42 ms" in blue
    green = next(line for line in text.splitlines() if "│ green" in line and "idle" in line)
    assert "3.3" in green and "1/2" in green and "local-green-5xx" in green
    assert "pass" in text and "green 100 requests" in text and "gate passed" in text
    assert "lock: switch blue -> green by ops" in text and "read 0s ago" in text


def test_before_the_first_reading_and_when_aws_cannot_be_read() -> None:
    text = screen(render_panel("local", PanelState(), None))
    assert "reading AWS" in text and "phase: -" in text
    text = screen(render_panel("local", PanelState(), reading(lock=None), reading_error="connection refused"))
    assert "AWS could not be read: connection refused" in text and "phase: at rest" in text and "lock: none" in text


def test_release_commands_get_the_panel_only_on_a_terminal(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    monkeypatch.setattr(common, "find_root", lambda: tmp_path)
    monkeypatch.setattr(common, "Workspace", lambda root, env, emit: made.append(type(emit).__name__))
    cases = ((True, False, "deploy", "LivePanel"), (False, False, "deploy", "Reporter"),
             (True, True, "deploy", "Reporter"), (True, False, "", "Reporter"))
    for terminal, json_mode, live, wanted in cases:
        monkeypatch.setattr(ui, "on_terminal", lambda terminal=terminal: terminal)
        ui.set_json_mode(json_mode)
        common.open_workspace("local", live=live, render_only=True)
        assert made[-1] == wanted, (terminal, json_mode, live)
    ui.set_json_mode(False)


def test_a_prompt_pauses_the_panel_and_the_end_closes_it(tmp_path: object) -> None:
    console = Console(record=True, force_terminal=True, width=120, file=io.StringIO())
    panel = LivePanel(tmp_path, "local", console=console, every=3600)  # type: ignore[arg-type]
    panel._read_loop = lambda: None  # type: ignore[method-assign]  # no AWS here: the state alone is drawn
    panel(events.PhaseEntered("switch", "confirm"))
    assert panel._live is not None and panel._live.is_started
    with ui.paused():
        assert not panel._live.is_started
    assert panel._live.is_started
    ui.close_live()
    assert panel._live is None and "phase: confirm" in console.export_text()
    panel(events.Note("after the end"))  # late events are kept, never redrawn
    assert panel._live is None
