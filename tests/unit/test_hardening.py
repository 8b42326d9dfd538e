"""Hardened defaults: what the environment file says reaches the rendered layers; bad settings are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bgtool.config.schema import load_environment
from bgtool.errors import ConfigError
from bgtool.render.templates import render_environment
from tests.helpers import copy_project, edit_yaml


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("project"))
    for env in ("local", "staging", "prod"):
        render_environment(root, load_environment(root, env))
    return root / "build"


def attr(text: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s+=\s+(.+)$", text, re.M)
    assert match, f"{name} not rendered"
    return match.group(1).strip()


def test_prod_runs_instances_privately_behind_a_hardened_load_balancer(rendered: Path) -> None:
    base = (rendered / "prod" / "base" / "main.tf").read_text()
    assert "private_subnets = [" in base and '{ cidr = "10.50.10.0/24", az = "eu-west-1a" }' in base
    assert attr(base, "nat_gateway") == '"per_az"'
    assert attr(base, "vpc_endpoints") == '["s3", "ssm", "ssmmessages", "ec2messages"]'
    assert attr(base, "instance_subnet_ids") == "module.network.instance_subnet_ids"
    assert attr(base, "test_ingress_cidrs") == '["10.50.0.0/16"]'
    assert attr(base, "listener_ports") == "[443, 80]", "the test port is not opened to ingress_cidrs"
    assert attr(base, "enable_deletion_protection") == "true"
    assert attr(base, "drop_invalid_header_fields") == "true"
    assert attr(base, "enabled") == "true" and attr(base, "retention_days") == "365"
    assert "embedded_aws" not in base
    color = (rendered / "prod" / "green" / "main.tf").read_text()
    assert attr(color, "subnet_ids") == "local.base.instance_subnet_ids"
    assert attr(color, "imds_hop_limit") == "1" and attr(color, "kms_key_id") == "null"
    assert "default_tags" in (rendered / "prod" / "green" / "providers.tf").read_text()


def test_local_opens_the_test_listener_to_the_vpc_only(rendered: Path) -> None:
    base = (rendered / "local" / "base" / "main.tf").read_text()
    assert attr(base, "test_ingress_cidrs") == "[local.vpc_cidr]"
    assert attr(base, "enable_deletion_protection") == "false", "the embedded AWS is torn down freely"
    assert attr(base, "embedded_aws") == "true"
    assert "private_subnets" not in base.split("module \"alb\"")[0].replace("# No private_subnets", "")
    for layer in ("blue", "green"):
        providers = (rendered / "local" / layer / "providers.tf").read_text()
        assert "default_tags" not in providers.replace("No default_tags", "")
    assert "default_tags {" in (rendered / "local" / "base" / "providers.tf").read_text()


def test_examples_never_open_the_test_listener_to_the_world(rendered: Path) -> None:
    for env in ("local", "staging", "prod"):
        base = (rendered / env / "base" / "main.tf").read_text()
        assert "0.0.0.0/0" not in attr(base, "test_ingress_cidrs")


def test_modules_require_imdsv2_and_encrypt_the_root_volume() -> None:
    color = (Path(__file__).resolve().parents[2] / "modules" / "color" / "main.tf").read_text()
    assert 'http_tokens                 = "required"' in color
    assert "encrypted             = true" in color
    assert "ignore_changes" not in color, "no emulator workaround in the production module"


def expect_refused(tmp_path: Path, env: str, old: str, new: str, *fragments: str) -> None:
    root = copy_project(tmp_path)
    edit_yaml(root / f"environments/{env}.yaml", old, new)
    with pytest.raises(ConfigError) as refused:
        load_environment(root, env)
    for fragment in fragments:
        assert fragment in str(refused.value)


PRIVATE_A = "    - { cidr: 10.50.10.0/24, az: eu-west-1a }"


@pytest.mark.parametrize(("old", "new", "fragments"), [
    (PRIVATE_A, "    - { cidr: 10.60.10.0/24, az: eu-west-1a }", ["private_subnets[0].cidr", "not inside vpc_cidr"]),
    (PRIVATE_A, "    - { cidr: 10.50.0.0/24, az: eu-west-1a }", ["overlaps public_subnets[0]"]),
    (PRIVATE_A, "    - { cidr: 10.50.10.0/24, az: eu-west-1d }", ["per_az", "eu-west-1d"]),
    ("  tls_policy: ELBSecurityPolicy-TLS13-1-2-2021-06", "  tls_policy: ELBSecurityPolicy-2016-08",
     ["listeners.tls_policy", "ELBSecurityPolicy-2016-08"]),
    ("  test_ingress_cidrs: [10.50.0.0/16]", "  test_ingress_cidrs: [10.50.0.1/16]", ["listeners.test_ingress_cidrs"]),
    ("  access_logs_retention_days: 365", "  access_logs_retention_days: 0", ["alb.access_logs_retention_days"]),
    ("  instance_type: m6i.large", "  instance_type: m6i.large\n  imds_hop_limit: 0", ["app.imds_hop_limit"]),
    ("  instance_type: m6i.large", "  instance_type: m6i.large\n  root_volume: { kms_key_id: my-key }",
     ["app.root_volume.kms_key_id"]),
    ("  vpc_endpoints: [s3, ssm, ssmmessages, ec2messages]", "  vpc_endpoints: [s3, ftp]", ["vpc_endpoints"]),
])
def test_bad_hardening_settings_are_refused(tmp_path: Path, old: str, new: str, fragments: list[str]) -> None:
    expect_refused(tmp_path, "prod", old, new, "environments/prod.yaml", *fragments)


def test_vpc_endpoints_need_private_subnets(tmp_path: Path) -> None:
    expect_refused(tmp_path, "local", "  ingress_cidrs: [0.0.0.0/0]",
                   "  ingress_cidrs: [0.0.0.0/0]\n  vpc_endpoints: [s3]", "give 'private_subnets' too")


def test_deletion_protection_defaults_on_except_for_the_embedded_aws(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    assert load_environment(root, "prod").config.deletion_protection is True
    assert load_environment(root, "local").config.deletion_protection is False
    edit_yaml(root / "environments/local.yaml", "retention_hours:",
              "alb:\n  deletion_protection: true\n\nretention_hours:")
    assert load_environment(root, "local").config.deletion_protection is True
