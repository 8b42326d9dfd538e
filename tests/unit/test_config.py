"""Every kind of bad environment file is refused with file, line, key path and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bgtool.config.changed import is_embedded
from bgtool.config.schema import Color, load_environment
from bgtool.errors import ConfigError
from bgtool.terraform.workspace import load as workspace_load
from tests.helpers import copy_project, edit_yaml


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


def problems(project: Path, env: str = "local") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_environment(project, env)
    assert info.value.path == f"environments/{env}.yaml"
    return info.value.problems


@pytest.mark.parametrize("env", ["local", "staging", "prod"])
def test_shipped_environments_are_valid(project: Path, env: str) -> None:
    loaded = load_environment(project, env)
    assert loaded.config.active_color is Color.BLUE
    assert loaded.config.idle_color is Color.GREEN


def test_unknown_key_is_named_with_its_line(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "  min_healthy: 1", "  min_healthy: 1\n  min_heathly: 2")
    (msg,) = problems(project)
    assert "gate.min_heathly" in msg and "unknown key" in msg
    line = next(i for i, t in enumerate((project / "environments/local.yaml").read_text().splitlines(), 1)
                if "min_heathly" in t)
    assert msg.startswith(f"line {line}:")


def test_wrong_type(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "bake_seconds: 22", "bake_seconds: soon")
    (msg,) = problems(project)
    assert "traffic.bake_seconds" in msg and "integer" in msg


def test_bad_color(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "active_color: blue", "active_color: purple")
    (msg,) = problems(project)
    assert "active_color" in msg and "'purple'" in msg and "'blue'" in msg and "'green'" in msg


def test_bad_cidr(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "vpc_cidr: 10.20.0.0/16", "vpc_cidr: 10.20.0.0/33")
    (msg,) = problems(project)
    assert "network.vpc_cidr" in msg and "CIDR" in msg


def test_overlapping_subnets(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "cidr: 10.20.2.0/24", "cidr: 10.20.1.128/25")
    (msg,) = problems(project)
    assert "network" in msg and "overlaps" in msg


def test_duplicate_az(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "az: us-east-1b", "az: us-east-1a")
    (msg,) = problems(project)
    assert "us-east-1a is used twice" in msg


def test_subnet_outside_vpc(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "cidr: 10.20.2.0/24", "cidr: 10.99.2.0/24")
    (msg,) = problems(project)
    assert "not inside vpc_cidr" in msg


def test_port_out_of_range(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "production_port: 80", "production_port: 70000")
    (msg,) = problems(project)
    assert "listeners.production_port" in msg and "65535" in msg


def test_missing_version(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "  green:\n    version: 1.0.0\n", "  green:\n")
    (msg,) = problems(project)
    assert "colors.green.version" in msg and "required" in msg


def test_bad_steps(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "steps: [10, 50, 100]", "steps: [10, 50, 90]")
    (msg,) = problems(project)
    assert "traffic.steps" in msg and "100" in msg


def test_all_problems_reported_at_once(project: Path) -> None:
    path = project / "environments/local.yaml"
    edit_yaml(path, "active_color: blue", "active_color: red")
    edit_yaml(path, "test_port: 8080", "test_port: 0")
    assert len(problems(project)) == 2


def test_missing_file(project: Path) -> None:
    (msg,) = problems(project, "nowhere")
    assert "file not found" in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(project: Path) -> None:
    (project / "environments/local.yaml").chmod(0)
    (msg,) = problems(project)
    assert "cannot read" in msg


def test_yaml_syntax_error_names_the_line(project: Path) -> None:
    path = project / "environments/local.yaml"
    edit_yaml(path, "  region: us-east-1", "  region: [us-east-1")
    (msg,) = problems(project)
    assert "YAML syntax error" in msg and msg.startswith("line ")


def test_bad_environment_name(project: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_environment(project, "../etc/passwd")
    assert "not allowed" in info.value.problems[0]


def test_endpoint_override_only_for_embedded(project: Path) -> None:
    local = load_environment(project, "local", endpoint_override="http://127.0.0.1:5999")
    prod = load_environment(project, "prod", endpoint_override="http://127.0.0.1:5999")
    assert local.config.aws.endpoint == "http://127.0.0.1:5999"
    assert prod.config.aws.endpoint is None


def test_a_rehearsal_endpoint_moves_a_real_environment_and_changed_still_calls_it_real(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (project / "environments/local.yaml").read_text()
    (project / "environments/web.yaml").write_text(
        "\n".join(line for line in text.splitlines() if not line.strip().startswith("endpoint:")) + "\n")
    assert load_environment(project, "web").config.aws.endpoint is None
    monkeypatch.setenv("BGTOOL_REHEARSAL_ENDPOINT", "http://127.0.0.1:5998")
    assert workspace_load(project, "web").config.aws.endpoint == "http://127.0.0.1:5998"
    assert workspace_load(project, "local").config.aws.endpoint == "http://127.0.0.1:5998"
    assert not is_embedded(project, "web"), "the pipelines decide by the file"


def test_a_session_store_the_embedded_aws_cannot_serve_is_refused(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "  kind: dynamodb", "  kind: elasticache")
    (msg,) = problems(project)
    assert "state_store" in msg and "elasticache" in msg and "allowed here: dynamodb" in msg


def test_an_unknown_session_store_kind_names_the_allowed_ones(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "  kind: dynamodb", "  kind: memcached")
    (msg,) = problems(project)
    assert "state_store.kind" in msg and "'dynamodb'" in msg and "'elasticache'" in msg
