"""Rewrites of the environment file change one value and nothing else."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from bgtool.config import envfile
from bgtool.config.schema import Color, load_environment
from bgtool.errors import BgtoolError, ConfigError
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


BLOCK_COLORS = """colors:
  blue:
    version: 1.0.0
    desired: 2
    min_size: 0
    max_size: 4
  green:
    version: 1.0.0
    desired: 2
    min_size: 0
    max_size: 4
"""


def with_colors(project: Path, colors: str) -> Path:
    path = project / "environments/local.yaml"
    text = path.read_text()
    assert BLOCK_COLORS in text
    path.write_text(text.replace(BLOCK_COLORS, colors))
    return path


FLOW = """colors:
  blue: {version: 1.0.0, desired: 2, min_size: 0, max_size: 4}
  green: {version: "1.0.0", desired: 2, min_size: 0, max_size: 4}  # the idle one
"""


def test_a_flow_mapping_color_is_rewritten_in_place(project: Path) -> None:
    path = with_colors(project, FLOW)
    envfile.set_retired(load_environment(project, "local"), Color.GREEN, True)
    config = envfile.set_version(load_environment(project, "local"), Color.GREEN, "2.0.0")
    assert config.colors.green.version == "2.0.0" and config.colors.green.retired is False
    assert config.colors.green.desired == 2 and config.colors.blue.version == "1.0.0"
    assert ('  green: {retired: false, version: 2.0.0, desired: 2, min_size: 0, max_size: 4}  # the idle one'
            in path.read_text())


MERGED = """colors:
  blue: &color
    version: 1.0.0
    desired: 2
    min_size: 0
    max_size: 4
  green:
    <<: *color
"""


def test_a_merged_key_is_written_into_the_colors_own_mapping_never_the_anchor(project: Path) -> None:
    path = with_colors(project, MERGED)
    config = envfile.set_version(load_environment(project, "local"), Color.GREEN, "2.0.0")
    assert config.colors.green.version == "2.0.0" and config.colors.blue.version == "1.0.0"
    assert "  green:\n    <<: *color\n    version: 2.0.0\n" in path.read_text()
    config = envfile.set_retired(load_environment(project, "local"), Color.GREEN, True)
    assert config.colors.green.retired is True and config.colors.blue.retired is False


def test_a_value_shared_with_the_other_color_is_refused(project: Path) -> None:
    path = with_colors(project, MERGED)
    before = path.read_text()
    with pytest.raises(BgtoolError, match=r"would also change colors.green.version") as refused:
        envfile.set_version(load_environment(project, "local"), Color.BLUE, "2.0.0")
    assert "nothing was written" in refused.value.message
    assert path.read_text() == before


def test_a_file_changed_since_the_decision_is_not_written(project: Path) -> None:
    path = project / "environments/local.yaml"
    decided_on = load_environment(project, "local")  # green is at 1.0.0 here
    envfile.set_version(load_environment(project, "local"), Color.GREEN, "1.5.0")  # someone else, meanwhile
    before = path.read_text()
    with pytest.raises(envfile.FileChanged, match=r"colors.green.version is now '1.5.0', but this operation "
                       r"decided on '1.0.0'"):
        envfile.set_version(decided_on, Color.GREEN, "2.0.0")
    with pytest.raises(envfile.FileChanged):
        envfile.set_value(load_environment(project, "local"), ("active_color",), "green", expected="green")
    assert path.read_text() == before


def test_a_file_that_cannot_take_the_write_is_found_without_writing(project: Path) -> None:
    path = with_colors(project, MERGED)
    before = path.read_text()
    envfile.check_version_writable(load_environment(project, "local"), Color.GREEN, "2.0.0")
    with pytest.raises(BgtoolError, match="would also change"):
        envfile.check_version_writable(load_environment(project, "local"), Color.BLUE, "2.0.0")
    assert path.read_text() == before
