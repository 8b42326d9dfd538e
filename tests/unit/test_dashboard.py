"""The environment's CloudWatch dashboard: one name for the base layer, status and the IAM policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bgtool.aws.live import ColorLive, LiveState
from bgtool.cli import ui
from bgtool.cli.status_view import print_status
from bgtool.config.dashboard import dashboard_name, dashboard_url, partition
from bgtool.config.schema import Environment, load_environment
from bgtool.release.status import build_status
from tests.helpers import REPO


def config(env: str) -> Environment:
    return load_environment(REPO, env).config


def live() -> LiveState:
    return LiveState(alb_found=True, alb_dns_name="lb.example", listeners=[],
                     colors={c: ColorLive(c) for c in ("blue", "green")})


def test_named_after_the_environment_like_its_load_balancer() -> None:
    for env in ("local", "staging", "prod"):
        assert dashboard_name(config(env)) == config(env).name


def test_console_url_only_for_a_real_account() -> None:
    prod = config("prod")
    assert dashboard_url(prod) == (f"https://{prod.aws.region}.console.aws.amazon.com/cloudwatch/home?"
                                   f"region={prod.aws.region}#dashboards/dashboard/{prod.name}")
    assert dashboard_url(config("local")) is None  # the embedded AWS has no console


def test_console_url_of_the_other_partitions() -> None:
    china = config("prod").model_copy(update={"aws": config("prod").aws.model_copy(update={"region": "cn-north-1"})})
    assert partition("cn-north-1") == "aws-cn" and partition("us-gov-west-1") == "aws-us-gov"
    assert dashboard_url(china).startswith("https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#")


def test_status_document_carries_the_dashboard() -> None:
    doc = build_status("prod", config("prod"), live(), dashboard_found=True)
    assert doc["dashboard"] == {"name": config("prod").name, "url": dashboard_url(config("prod")), "found": True}
    json.dumps(doc)  # the --json document
    unlooked = build_status("local", config("local"), live())
    assert unlooked["dashboard"] == {"name": "bgtool-local", "url": None, "found": None}


@pytest.mark.parametrize(("env", "found"), [("prod", True), ("local", True), ("local", False)])
def test_status_text_names_the_dashboard(env: str, found: bool, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui.console, "width", 400)
    print_status(build_status(env, config(env), live(), dashboard_found=found))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dashboard:")]
    assert len(lines) == 1
    name, url = config(env).name, dashboard_url(config(env))
    assert lines[0].startswith(f"dashboard: {name}")
    assert (url in lines[0]) if url else ("https://" not in lines[0])
    assert ("not created yet" in lines[0]) is (not found)


def test_the_module_is_documented() -> None:
    """terraform-aws-modules style: every input and output in the module's README."""
    module = Path(REPO, "modules", "dashboard")
    readme = (module / "README.md").read_text()
    for kind, path in (("variable", "variables.tf"), ("output", "outputs.tf")):
        names = [line.split('"')[1] for line in (module / path).read_text().splitlines() if line.startswith(kind)]
        assert names
        for name in names:
            assert f"`{name}`" in readme, f"{kind} {name} is not in modules/dashboard/README.md"
