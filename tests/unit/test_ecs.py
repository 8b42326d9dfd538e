"""app.compute ecs: the file is validated, both colors render as ECS services from one template, the apply
role covers the ECS resources, the kind is operable (compute.KINDS), and a kind without an entry there
is refused by every command past rendering before it touches anything (shown with ecs taken out)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from bgtool.cli.app import main
from bgtool.compute import KINDS, UnsupportedCompute, compute_for, require_operable
from bgtool.compute.ecs import EcsCompute
from bgtool.config.schema import FARGATE_MEMORY, LOG_RETENTION_DAYS, load_environment
from bgtool.drift.collect import Checker
from bgtool.errors import ConfigError
from bgtool.iam.policy import UNSCOPED_ECS_WRITES, policy
from bgtool.render.parity import layer_differences, read_layer
from bgtool.render.templates import render_environment
from tests.helpers import REPO, copy_project, edit_yaml

ENV = "local-ecs"
ECS_FILE = f"environments/{ENV}.yaml"
REFUSAL = (f"{ECS_FILE}: app.compute ecs is supported so far by 'bgtool render' and 'bgtool iam' only; "
           "plan, apply, status, deploy, verify, switch and every other command need app.compute autoscaling "
           "(what bgtool operates so far); nothing was changed")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


def problems(root: Path, env: str = ENV) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_environment(root, env)
    assert info.value.path == f"environments/{env}.yaml"
    return info.value.problems


def line_of(root: Path, text: str, env: str = ENV) -> int:
    lines = (root / f"environments/{env}.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


def test_the_ecs_example_is_valid(project: Path) -> None:
    config = load_environment(project, ENV).config
    assert config.app.compute == "ecs" and config.app.ami_id is None
    assert config.ecs is not None and config.ecs.image_repository == "public.ecr.aws/bgtool/sample-app"
    assert (config.ecs.cpu, config.ecs.memory, config.ecs.log_retention_days) == (256, 512, 365)


def test_an_ecs_section_without_compute_ecs_is_refused_with_its_line(project: Path) -> None:
    edit_yaml(project / ECS_FILE, "  compute: ecs", "  compute: autoscaling\n  ami_id: ami-1e749f67")
    assert problems(project) == [
        f"line {line_of(project, 'ecs:')}: ecs: compute autoscaling does not use the 'ecs' section: "
        "set app.compute: ecs or remove 'ecs'"]


def test_compute_ecs_needs_the_ecs_section(project: Path) -> None:
    text = (project / ECS_FILE).read_text()
    start, end = text.index("\necs:\n"), text.index("\ncolors:\n")
    (project / ECS_FILE).write_text(text[:start] + text[end:])
    assert problems(project) == ["ecs: app.compute ecs needs an 'ecs' section with at least 'image_repository'; "
                                 "allowed app.compute: autoscaling, ecs"]


def test_unknown_compute_kind_lists_both(project: Path) -> None:
    edit_yaml(project / ECS_FILE, "  compute: ecs", "  compute: lambda")
    assert problems(project)[0] == (f"line {line_of(project, 'compute: lambda')}: app.compute: got 'lambda'; "
                                    "allowed: 'autoscaling' or 'ecs'")


@pytest.mark.parametrize(("key", "value"), [("ami_id", "ami-1e749f67"), ("instance_type", "t3.micro"),
                                            ("imds_hop_limit", "2")])
def test_ec2_keys_are_refused_with_compute_ecs(project: Path, key: str, value: str) -> None:
    edit_yaml(project / ECS_FILE, "  health_check_path: /health", f"  health_check_path: /health\n  {key}: {value}")
    assert problems(project) == [
        f"line {line_of(project, f'{key}: {value}')}: app.{key}: compute ecs runs no EC2 instances: "
        f"remove app.{key} (allowed with compute autoscaling only)"]


def test_autoscaling_still_needs_an_ami(project: Path) -> None:
    edit_yaml(project / "environments/local.yaml", "  ami_id: ami-1e749f67 # an image the embedded AWS knows\n", "")
    assert problems(project, "local") == [
        f"line {line_of(project, 'app:', 'local')}: app.ami_id: required with compute autoscaling "
        "(the instances' image, ami-...)"]


def test_memory_must_be_a_fargate_size_for_the_cpu(project: Path) -> None:
    edit_yaml(project / ECS_FILE, "  memory: 512", "  memory: 4096")
    assert problems(project) == [f"line {line_of(project, 'memory: 4096')}: ecs.memory: 4096 MiB is not a Fargate "
                                 "size for cpu 256; allowed: 512, 1024, 2048"]
    edit_yaml(project / ECS_FILE, "  cpu: 256", "  cpu: 1024")
    edit_yaml(project / ECS_FILE, "  memory: 4096", "  memory: 1024")
    assert problems(project) == [f"line {line_of(project, 'memory: 1024')}: ecs.memory: 1024 MiB is not a Fargate "
                                 "size for cpu 1024; allowed: 2048 to 8192 in steps of 1024"]
    edit_yaml(project / ECS_FILE, "  memory: 1024", "  memory: 3072")
    assert load_environment(project, ENV).config.ecs.memory == 3072  # type: ignore[union-attr]


def test_cpu_and_log_retention_take_the_allowed_values_only(project: Path) -> None:
    edit_yaml(project / ECS_FILE, "  cpu: 256", "  cpu: 300")
    edit_yaml(project / ECS_FILE, "  log_retention_days: 365", "  log_retention_days: 100")
    found = problems(project)
    assert found[0].startswith(f"line {line_of(project, 'cpu: 300')}: ecs.cpu: got 300; allowed: 256, 512, ")
    assert found[1].startswith(f"line {line_of(project, 'log_retention_days: 100')}: ecs.log_retention_days: "
                               "got 100; allowed: 1, 3, 5, ")


def test_image_repository_carries_no_tag(project: Path) -> None:
    edit_yaml(project / ECS_FILE, "sample-app # the image", "sample-app:1.0.0 # the image")
    (msg,) = problems(project)
    assert msg.startswith(f"line {line_of(project, 'sample-app:1.0.0')}: ecs.image_repository: "
                          "got 'public.ecr.aws/bgtool/sample-app:1.0.0'; must match ")


def test_secrets_are_arns_and_never_also_plain_variables(project: Path) -> None:
    edit_yaml(project / ECS_FILE, "    LOG_LEVEL: info",
              "    LOG_LEVEL: info\n  secrets:\n    LOG_LEVEL: arn:aws:ssm:us-east-1:123456789012:parameter/x\n"
              "    TOKEN: my-token")
    found = problems(project)
    assert found[0].startswith(f"line {line_of(project, 'TOKEN: my-token')}: ecs.secrets.TOKEN: got 'my-token'; "
                               "must match ^arn:aws")
    edit_yaml(project / ECS_FILE, "    TOKEN: my-token\n", "")
    assert problems(project) == [f"line {line_of(project, 'ecs:')}: ecs: LOG_LEVEL given in both 'environment' "
                                 "and 'secrets'; give each variable once"]


def test_a_version_with_plus_cannot_be_an_image_tag(project: Path) -> None:
    edit_yaml(project / ECS_FILE, "    version: 1.0.0", "    version: 1.0.0+b7")
    assert problems(project) == [
        f"line {line_of(project, 'colors:')}: colors: blue.version '1.0.0+b7' cannot be an image tag ('+' is not "
        "allowed in one): with app.compute ecs the version is the tag of ecs.image_repository"]


def test_workers_run_as_an_ecs_service_per_color_consuming_the_queue_with_the_task_role(project: Path) -> None:
    loaded = load_environment(project, ENV)
    assert loaded.config.workers is not None and loaded.config.workers.queue == "orders"
    layers = render_environment(project, loaded)
    for color in ("blue", "green"):
        text = (layers[color] / "main.tf").read_text()
        block = text[text.index('module "workers" {'):]
        block = block[:block.index("\n}\n")]
        assert 'source = "../../../modules/ecs-workers"' in block
        assert "desired   = var.workers_desired" in block and "queue_url = local.base.worker_queue_url" in block
        assert "task_role_arn      = local.base.ecs.task_role_arn" in block
        assert "BGTOOL_SESSION_TABLE" in block  # the same container environment as the application's
    base = (layers["base"] / "main.tf").read_text()
    cluster = base[base.index('module "ecs" {'):]
    assert "queue_arns = [aws_sqs_queue.workers.arn]" in cluster[:cluster.index("\n}\n")]
    from bgtool.render.templates import color_vars

    live, idle = loaded.config.active_color, loaded.config.idle_color
    assert color_vars(loaded.config, live)["workers_desired"] == 1
    assert color_vars(loaded.config, idle)["workers_desired"] == 0


def test_host_checks_are_refused_with_compute_ecs(project: Path) -> None:
    path = project / ECS_FILE
    checks = "  host_checks: { module: tests/hosts/test_local_host.py, connection: local }\n"
    path.write_text(path.read_text().replace("gate:\n", "gate:\n" + checks, 1))
    assert problems(project) == [f"line {line_of(project, 'gate:')}: gate: 'host_checks' is not available with "
                                 "app.compute ecs (they run on EC2 instances); remove gate.host_checks or set "
                                 "app.compute: autoscaling"]


def test_schema_and_module_agree_on_fargate_sizes_and_retention() -> None:
    service = (REPO / "modules/ecs-service/variables.tf").read_text()
    cpus = re.search(r"contains\(\[([\d, ]+)\], var\.cpu\)", service)
    assert cpus is not None and [int(c) for c in cpus.group(1).split(",")] == list(FARGATE_MEMORY)
    cluster = (REPO / "modules/ecs-cluster/variables.tf").read_text()
    days = re.search(r"contains\(\[([\d, ]+)\], var\.log_retention_days\)", cluster)
    assert days is not None and tuple(int(d) for d in days.group(1).split(",")) == LOG_RETENTION_DAYS


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@pytest.fixture
def rendered(project: Path) -> dict[str, Path]:
    return render_environment(project, load_environment(project, ENV))


def test_both_colors_render_the_ecs_service_and_differ_only_in_the_color(rendered: dict[str, Path]) -> None:
    blue, green = rendered["blue"], rendered["green"]
    assert layer_differences(read_layer(blue), read_layer(green)) == {}
    main_tf = (green / "main.tf").read_text()
    assert 'source = "../../../modules/ecs-service"' in main_tf
    assert "aws_launch_template" not in main_tf and "user_data" not in main_tf
    assert 'log_group_name     = local.base.ecs.log_group_names["green"]' in main_tf
    assert re.search(r"\n  container_port += 8000\n", main_tf)
    assert json.loads((green / "terraform.tfvars.json").read_text()) == {
        "app_version": "1.0.0", "desired": 2, "min_size": 0, "max_size": 4, "workers_desired": 0}
    assert "output \"service_name\"" in (green / "outputs.tf").read_text()


def test_base_layer_adds_the_cluster_and_ip_target_groups(rendered: dict[str, Path]) -> None:
    base = (rendered["base"] / "main.tf").read_text()
    assert 'target_type           = "ip"' in base
    assert 'source = "../../../modules/ecs-cluster"' in base
    assert 'output "ecs"' in (rendered["base"] / "outputs.tf").read_text()


def test_autoscaling_layers_keep_instance_targets_and_no_cluster(project: Path) -> None:
    dirs = render_environment(project, load_environment(project, "local"))
    base = (dirs["base"] / "main.tf").read_text()
    assert "target_type" not in base and "ecs-cluster" not in base  # the module's default: instance
    assert 'source = "../../../modules/color"' in (dirs["blue"] / "main.tf").read_text()


def test_ecs_service_alarms_are_the_color_modules_alarms() -> None:
    """The gate reads a color's alarms by name whatever runs it: same names, metrics and statistics."""
    def alarms(module: str) -> list[tuple[str, ...]]:
        text = (REPO / f"modules/{module}/main.tf").read_text()
        block = text[text.index("  alarms = {"):text.index("\n  }\n}", text.index("  alarms = {"))]
        return re.findall(r'"([\w-]+)" = \{\s+description = "([^"]+)"\s+metric_name = "(\w+)"\s+'
                          r'statistic   = "(\w+)"\s+threshold   = ([\w.]+)', block)

    assert alarms("color") == alarms("ecs-service") and len(alarms("color")) == 3
    for module in ("color", "ecs-service"):
        assert 'alarm_name          = "${var.name}-${var.color}-${each.key}"' in (
            REPO / f"modules/{module}/main.tf").read_text()


# --------------------------------------------------------------------------------------------
# Operable; and the refusal of a kind that is not (ecs taken out of KINDS)
# --------------------------------------------------------------------------------------------


def test_ecs_is_operable_through_the_compute_seam(project: Path) -> None:
    loaded = load_environment(project, ENV)
    require_operable(loaded)
    ws = SimpleNamespace(loaded=loaded, config=loaded.config)
    assert isinstance(compute_for(ws), EcsCompute)  # type: ignore[arg-type]


@pytest.fixture
def not_operable(monkeypatch: pytest.MonkeyPatch) -> None:
    """ecs as a kind that is rendered and validated but has no release support."""
    monkeypatch.delitem(KINDS, "ecs")


@pytest.mark.usefixtures("not_operable")
def test_require_operable_refuses_ecs_and_passes_autoscaling(project: Path) -> None:
    require_operable(load_environment(project, "local"))
    with pytest.raises(UnsupportedCompute) as info:
        require_operable(load_environment(project, ENV))
    assert info.value.message == REFUSAL
    assert info.value.hint == ("Release support for ecs comes in a later change; until then operate an environment "
                               "with app.compute: autoscaling.")


@pytest.mark.usefixtures("not_operable")
def test_compute_for_refuses_before_building_a_compute(project: Path) -> None:
    ws = SimpleNamespace(loaded=load_environment(project, ENV), config=load_environment(project, ENV).config)
    with pytest.raises(UnsupportedCompute, match=re.escape(REFUSAL)):
        compute_for(ws)  # type: ignore[arg-type]


@pytest.mark.usefixtures("not_operable")
@pytest.mark.parametrize("argv", [["plan", ENV], ["apply", ENV, "--yes"], ["status", ENV], ["verify", ENV],
                                  ["deploy", ENV, "1.1.0", "--yes"], ["switch", ENV, "--yes"], ["history", ENV]])
def test_commands_past_render_refuse_and_change_nothing(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    monkeypatch.setenv("BGTOOL_ROOT", str(project))
    monkeypatch.setenv("BGTOOL_AWS_ENDPOINT", "http://127.0.0.1:1")  # nothing may be contacted
    before = (project / ECS_FILE).read_text()
    assert main([*argv, "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["message"] == REFUSAL
    assert (project / ECS_FILE).read_text() == before
    assert not (project / "build").exists() and not (project / ".bgtool").exists()


def test_render_and_iam_work_for_ecs(project: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BGTOOL_ROOT", str(project))
    assert main(["render", ENV, "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["layers"]) == {"base", "blue", "green", "traffic"}
    assert main(["iam", ENV, "--role", "apply", "--json"]) == 0
    assert "PassEcsRoles" in capsys.readouterr().out


@pytest.mark.usefixtures("not_operable")
def test_drift_reports_the_refusal_as_the_environments_error(project: Path) -> None:
    report = Checker(project, jobs=1).check_env(ENV)
    assert report.errors == [REFUSAL] and report.items == []


# --------------------------------------------------------------------------------------------
# The apply role
# --------------------------------------------------------------------------------------------


def statements(env: str, role: str = "apply") -> dict[str, dict]:
    return {s["Sid"]: s for s in policy(env, load_environment(REPO, env).config, role)["Statement"]}


def test_pass_role_is_the_two_ecs_roles_to_ecs_tasks_only() -> None:
    by_sid = statements(ENV)
    roles = ["arn:aws:iam::*:role/bgtool-ecs-ecs-execution", "arn:aws:iam::*:role/bgtool-ecs-ecs-task"]
    passing = [s for s in by_sid.values() if "iam:PassRole" in s["Action"]]
    assert passing == [by_sid["PassEcsRoles"]]
    assert by_sid["PassEcsRoles"]["Action"] == ["iam:PassRole"] and by_sid["PassEcsRoles"]["Resource"] == roles
    assert by_sid["PassEcsRoles"]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert by_sid["EcsRoles"]["Resource"] == roles and "iam:CreateRole" in by_sid["EcsRoles"]["Action"]


def test_apply_covers_the_ecs_resources_scoped_to_the_environment() -> None:
    by_sid = statements(ENV)
    assert by_sid["EcsCluster"]["Resource"] == ["arn:aws:ecs:us-east-1:*:cluster/bgtool-ecs"]
    assert {"ecs:CreateCluster", "ecs:UpdateClusterSettings"} <= set(by_sid["EcsCluster"]["Action"])
    assert by_sid["EcsServices"]["Resource"] == ["arn:aws:ecs:us-east-1:*:service/bgtool-ecs/bgtool-ecs-*"]
    assert {"ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService"} <= set(by_sid["EcsServices"]["Action"])
    assert by_sid["EcsTaskDefinitions"]["Condition"] == {"StringEquals": {"aws:RequestTag/bgtool:env": ENV}}
    assert by_sid["EcsLogGroups"]["Resource"] == ["arn:aws:logs:us-east-1:*:log-group:/ecs/bgtool-ecs/*",
                                                  "arn:aws:logs:us-east-1:*:log-group:/ecs/bgtool-ecs/*:*"]
    assert "application-autoscaling:RegisterScalableTarget" in by_sid["EcsScalableTargetsCreate"]["Action"]
    assert by_sid["EcsScalableTargetsChange"]["Condition"] == {"StringEquals": {"aws:ResourceTag/bgtool:env": ENV}}
    linked = by_sid["ServiceLinkedRoles"]["Condition"]["StringEquals"]["iam:AWSServiceName"]
    assert {"ecs.amazonaws.com", "ecs.application-autoscaling.amazonaws.com"} <= set(linked)
    unscoped = {a for s in by_sid.values() if s["Resource"] == ["*"] and s["Sid"].startswith("Ecs")
                for a in s["Action"]}
    assert unscoped == set(UNSCOPED_ECS_WRITES)


@pytest.mark.parametrize("role", ["plan", "drift"])
def test_read_roles_get_ecs_reads_only(role: str) -> None:
    by_sid = statements(ENV, role)
    assert {"ReadEcs", "ReadEcsLogGroups", "ReadEcsRoles"} <= set(by_sid)
    assert not any(sid.startswith("Ecs") or sid == "PassEcsRoles" for sid in by_sid)


def test_autoscaling_environments_get_no_ecs_rights() -> None:
    text = json.dumps(policy("prod", load_environment(REPO, "prod").config, "apply"))
    assert "ecs:" not in text and "iam:PassRole" in text  # the session store's instance role only


def test_status_shows_each_services_revision_and_image(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from bgtool.aws.live import ColorLive, LiveState
    from bgtool.cli import ui
    from bgtool.cli.status_view import print_status
    from bgtool.release.status import build_status

    config = load_environment(REPO, "local-ecs").config
    colors = {c: ColorLive(c, asg_names=[f"bgtool-ecs-{c}"], desired=2, in_service=2, versions=["1.0.0"],
                           task_definition=f"bgtool-ecs-{c}:{n}", image=f"repo/app:1.{n}.0")
              for n, c in enumerate(("blue", "green"), 1)}
    doc = build_status("local-ecs", config, LiveState(True, "lb", [], colors))
    assert {c: (doc["colors"][c]["task_definition"], doc["colors"][c]["image"]) for c in colors} == {
        "blue": ("bgtool-ecs-blue:1", "repo/app:1.1.0"), "green": ("bgtool-ecs-green:2", "repo/app:1.2.0")}
    monkeypatch.setattr(ui.console, "width", 400)
    print_status(doc)
    lines = capsys.readouterr().err.splitlines()
    table = lines[lines.index(next(line for line in lines if line.strip() == "ECS services")):]
    rows = {line.split()[1]: line for line in table if re.match(r"^\W+(blue|green) ", line)}
    for color, revision, image in (("blue", 1, "repo/app:1.1.0"), ("green", 2, "repo/app:1.2.0")):
        assert re.search(rf"bgtool-ecs-{color} .* bgtool-ecs-{color}:{revision} .* {image} .* 2/2 ", rows[color])


def test_the_session_store_is_shared_with_the_tasks_through_their_role_and_environment(project: Path) -> None:
    loaded = load_environment(project, ENV)
    assert loaded.config.state_store is not None and loaded.config.state_store.kind == "dynamodb"
    layers = render_environment(project, loaded)
    color = (layers["blue"] / "main.tf").read_text()
    assert re.search(r"environment_variables = \{\n(.*\n)*?  \}", color)
    block = color[color.index("environment_variables = {"):]
    block = block[:block.index("\n  }\n")]
    assert 'LOG_LEVEL                  = "info"' in block
    assert "BGTOOL_SESSION_STORE       = local.base.session_store.kind" in block
    assert "BGTOOL_SESSION_TABLE       = local.base.session_store.name" in block
    assert 'BGTOOL_SESSION_TTL_SECONDS = "86400"' in block
    base = (layers["base"] / "main.tf").read_text()
    store = base[base.index('module "session_store"'):]
    assert "task_role_name      = module.ecs.task_role_name" in store[:store.index("\n}\n")]


@pytest.mark.parametrize("section", ["environment", "secrets"])
def test_bgtool_variable_names_are_refused_in_the_container(project: Path, section: str) -> None:
    path = project / ECS_FILE
    value = "arn:aws:ssm:us-east-1:123456789012:parameter/x"
    entry = f"  {section}:\n    BGTOOL_SESSION_TABLE: {value}\n" if section == "secrets" else ""
    text = path.read_text().replace("  log_retention_days:", entry + "  log_retention_days:", 1)
    if section == "environment":
        text = text.replace("  environment:\n", "  environment:\n    BGTOOL_SESSION_TABLE: mine\n", 1)
    path.write_text(text)
    (problem,) = problems(project)
    assert "BGTOOL_SESSION_TABLE: names starting with BGTOOL_ are bgtool's own" in problem, problem
