"""Rewrites of the environment file change one value and nothing else."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from bgtool.config import envfile
from bgtool.config.schema import Color, load_environment
from bgtool.errors import ConfigError
from tests.helpers import copy_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


def test_switch_rewrites_only_the_active_color_line(project: Path) -> None:
    path = project / "environments/local.yaml"
    before = path.read_text()
    config = envfile.set_active_color(load_environment(project, "local"), Color.GREEN)
    assert config.active_color is Color.GREEN
    assert changed_lines(before, path.read_text()) == ["- active_color: blue", "+ active_color: green"]


def test_version_rewrite_keeps_comments_and_flow_style(project: Path) -> None:
    path = project / "environments/local.yaml"
    before = path.read_text()
    envfile.set_version(load_environment(project, "local"), Color.GREEN, "2.0.0-rc.1")
    after = path.read_text()
    assert changed_lines(before, after) == ["-     version: 1.0.0", "+     version: 2.0.0-rc.1"]
    assert "# The embedded AWS: a moto server" in after and "{ cidr: 10.20.1.0/24, az: us-east-1a }" in after
    assert load_environment(project, "local").config.colors.blue.version == "1.0.0"


def test_retire_adds_the_key_and_a_deploy_removes_the_retirement(project: Path) -> None:
    loaded = load_environment(project, "local")
    assert envfile.set_retired(loaded, Color.GREEN, True).colors.green.retired is True
    config = envfile.set_version(loaded, Color.GREEN, "1.2.0")
    assert config.colors.green.retired is False and config.colors.green.version == "1.2.0"
    assert "retired: false" in (project / "environments/local.yaml").read_text()


def test_values_that_yaml_would_misread_are_quoted(project: Path) -> None:
    config = envfile.set_version(load_environment(project, "local"), Color.GREEN, "1e3")
    assert config.colors.green.version == "1e3"
    assert 'version: "1e3"' in (project / "environments/local.yaml").read_text()


def test_an_invalid_result_leaves_the_file_untouched(project: Path) -> None:
    path = project / "environments/local.yaml"
    before = path.read_text()
    with pytest.raises(ConfigError):
        envfile.set_version(load_environment(project, "local"), Color.GREEN, "not a version!")
    assert path.read_text() == before
