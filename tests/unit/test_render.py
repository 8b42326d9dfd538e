"""Rendering: blue and green identical by construction, fmt-clean, valid Terraform.

The terraform-based tests need the AWS provider: set BGTOOL_PROVIDER_MIRROR to a filesystem
mirror holding hashicorp/aws (they are skipped otherwise). `terraform init -backend=false` runs
once per layer, shared by the tests through module-scoped fixtures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bgtool.config.dashboard import dashboard_name
from bgtool.config.schema import Color, load_environment
from bgtool.render.parity import layer_differences, read_layer
from bgtool.render.templates import (
    LAYER_FILES,
    LAYERS,
    color_vars,
    layer_dir,
    render_environment,
    traffic_vars,
)
from tests.helpers import copy_project

PROJECT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("local", "local-ecs", "staging", "prod")
VALIDATED = ("local", "local-ecs", "staging")  # staging has TLS, local the embedded AWS, local-ecs ECS


def render(root: Path, env: str) -> dict[str, Path]:
    return render_environment(root, load_environment(root, env))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Path]]]:
    root = copy_project(tmp_path_factory.mktemp("project"))
    return root, {env: render(root, env) for env in ENVIRONMENTS}


# --------------------------------------------------------------------------------------------
# Blue and green differ only in the color word, the backend key and the tfvars
# --------------------------------------------------------------------------------------------


def color_differences(blue_dir: Path, green_dir: Path) -> dict[str, list[str]]:
    """The one parity rule (bgtool.render.parity), as drift applies it to the rendered layers."""
    return layer_differences(read_layer(blue_dir), read_layer(green_dir))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_blue_and_green_differ_only_in_the_color(rendered, env: str) -> None:
    _, dirs = rendered
    blue, green = dirs[env]["blue"], dirs[env]["green"]
    assert color_differences(blue, green) == {}
    # The differences that exist are the expected ones: color word and backend key.
    assert '"blue"' in (blue / "main.tf").read_text()
    assert "blue.tfstate" in (blue / "backend.tf").read_text()
    assert "green.tfstate" in (green / "backend.tf").read_text()


def test_a_hand_edited_green_is_detected(rendered, tmp_path: Path) -> None:
    _, dirs = rendered
    green = tmp_path / "green"
    shutil.copytree(dirs["local"]["green"], green)
    main = green / "main.tf"
    text = main.read_text()
    edited = text.replace('instance_type      = "t3.micro"', 'instance_type      = "t3.large"')
    assert edited != text
    main.write_text(edited)
    problems = color_differences(dirs["local"]["blue"], green)
    assert list(problems) == ["main.tf"] and any("t3.large" in line for line in problems["main.tf"])

    # An extra line is caught too, even when it mentions only the color (comments cannot change
    # what Terraform does, so the rule passes over them).
    main.write_text(text + 'locals { extra = "green" }\n')
    assert color_differences(dirs["local"]["blue"], green)
    main.write_text(text + "# green\n")
    assert color_differences(dirs["local"]["blue"], green) == {}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_per_color_values_live_in_tfvars(rendered, env: str) -> None:
    root, dirs = rendered
    config = load_environment(root, env).config
    for color in Color:
        tfvars = json.loads((dirs[env][color.value] / "terraform.tfvars.json").read_text())
        assert tfvars == color_vars(config, color)
        assert tfvars["app_version"] == config.colors.of(color).version
    traffic = json.loads((dirs[env]["traffic"] / "terraform.tfvars.json").read_text())
    assert traffic == traffic_vars(config.active_color)
    assert json.loads((dirs[env]["base"] / "terraform.tfvars.json").read_text()) == {}


# --------------------------------------------------------------------------------------------
# Layout, backend and idempotence
# --------------------------------------------------------------------------------------------


def test_layout_and_contract_files(rendered) -> None:
    root, dirs = rendered
    for env in ENVIRONMENTS:
        assert list(dirs[env]) == list(LAYERS)
        for layer, path in dirs[env].items():
            assert path == layer_dir(root, env, layer) == root / "build" / env / layer
            assert sorted(p.name for p in path.iterdir()) == sorted(LAYER_FILES)
    staging = dirs["staging"]
    backend = (staging["green"] / "backend.tf").read_text()
    assert 'key            = "bgtool/staging/green.tfstate"' in backend
    assert 'dynamodb_table = "acme-terraform-locks"' in backend
    assert "endpoints" not in backend and "skip_" not in backend
    assert "endpoints" not in (staging["base"] / "providers.tf").read_text()
    assert 'source = "../../../modules/color"' in (staging["blue"] / "main.tf").read_text()
    # TLS only where a certificate is configured; the redirect port is opened then.
    assert "listener_ports = [443, 80]" in (staging["base"] / "main.tf").read_text()
    assert "certificate_arn    = null" in (dirs["local"]["traffic"] / "main.tf").read_text()


def test_embedded_aws_settings(rendered) -> None:
    _, dirs = rendered
    local = dirs["local"]
    providers = (local["blue"] / "providers.tf").read_text()
    for service in ("autoscaling", "cloudwatch", "dynamodb", "ec2", "elbv2", "iam", "s3", "sts"):
        assert re.search(rf'^\s+{service}\s+= "http://127.0.0.1:5000"$', providers, re.M)
    assert re.search(r"max_retries\s+= 4", providers)
    assert "access_key" not in providers and "secret_key" not in providers
    backend = (local["blue"] / "backend.tf").read_text()
    assert re.search(r"use_path_style\s+= true", backend)
    assert re.search(r'dynamodb = "http://127.0.0.1:5000"', backend)


def test_local_backend_keeps_state_outside_build(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    env_file = root / "environments" / "local.yaml"
    text = env_file.read_text()
    text = re.sub(r"  backend: s3.*\n  bucket: .*\n  lock_table: .*\n", "  backend: local\n", text)
    env_file.write_text(text)
    dirs = render(root, "local")
    state = (root / ".bgtool" / "state" / "local").resolve()
    assert f'path = "{state}/blue.tfstate"' in (dirs["blue"] / "backend.tf").read_text()
    assert f'path = "{state}/base.tfstate"' in (dirs["blue"] / "main.tf").read_text()
    assert state.is_dir()


def test_render_is_idempotent_and_keeps_terraform_files(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    dirs = render(root, "local")
    blue = dirs["blue"]
    (blue / ".terraform").mkdir()
    (blue / ".terraform" / "keep").write_text("x")
    (blue / ".terraform.lock.hcl").write_text("# lock\n")
    (blue / "notes.txt").write_text("mine\n")
    (blue / "stale.tf").write_text("# from an older template\n")
    before = {p.name: p.stat().st_mtime_ns for p in blue.glob("*.tf*")}
    os.utime(blue / "main.tf", ns=(1, 1))
    render(root, "local")
    assert not (blue / "stale.tf").exists()
    assert (blue / ".terraform" / "keep").exists()
    assert (blue / ".terraform.lock.hcl").exists()
    assert (blue / "notes.txt").exists()
    # Unchanged content: not rewritten (mtimes kept, even an odd one).
    assert (blue / "main.tf").stat().st_mtime_ns == 1
    assert (blue / "outputs.tf").stat().st_mtime_ns == before["outputs.tf"]


def test_changed_version_rewrites_only_that_colors_tfvars(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    dirs = render(root, "local")
    for path in dirs.values():
        for file in path.iterdir():
            os.utime(file, ns=(1, 1))
    env_file = root / "environments" / "local.yaml"
    text = env_file.read_text()
    green_at = text.index("\n  green:")
    green, count = re.subn(r"version: \S+", "version: 9.9.9-test", text[green_at:], count=1)
    assert count == 1
    env_file.write_text(text[:green_at] + green)
    render(root, "local")
    changed = {(layer, p.name) for layer, path in dirs.items() for p in path.iterdir() if p.stat().st_mtime_ns != 1}
    assert changed == {("green", "terraform.tfvars.json")}
    tfvars = json.loads((dirs["green"] / "terraform.tfvars.json").read_text())
    assert tfvars["app_version"] == "9.9.9-test"


def test_user_data_follows_the_version_variable(rendered) -> None:
    root, dirs = rendered
    main = (dirs["local"]["blue"] / "main.tf").read_text()
    assert "printf '%s\\n' '${var.app_version}'" in main
    # The version reaches the script only through the variable.
    assert load_environment(root, "local").config.colors.blue.version not in main
    assert '"$${health_path%%\\?*}"' in main  # shell expansions are escaped for HCL


def test_custom_user_data_template(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    (root / "app").mkdir()
    (root / "app" / "boot.sh.j2").write_text("#!/bin/sh\necho {{ color }} {{ version }} ${HOME} %{x} > /tmp/v\n")
    env_file = root / "environments" / "local.yaml"
    setting = "  instance_type: t3.micro"
    env_file.write_text(env_file.read_text().replace(setting, f"{setting}\n  user_data_template: app/boot.sh.j2"))
    dirs = render(root, "local")
    main = (dirs["green"] / "main.tf").read_text()
    assert "echo green ${var.app_version} $${HOME} %%{x} > /tmp/v\n" in main
    assert "rendered from app/boot.sh.j2" in main


def test_undefined_template_variables_fail(tmp_path: Path) -> None:
    from bgtool.errors import BgtoolError

    root = copy_project(tmp_path)
    path = root / "templates" / "traffic" / "outputs.tf.j2"
    path.write_text(path.read_text() + "{{ no_such_value }}\n")
    with pytest.raises(BgtoolError, match="no_such_value"):
        render(root, "local")
    assert not (root / "build").exists()  # nothing half-written


# --------------------------------------------------------------------------------------------
# traffic_vars / color_vars
# --------------------------------------------------------------------------------------------


def test_traffic_vars_defaults() -> None:
    assert traffic_vars(Color.BLUE) == {"blue_weight": 100, "green_weight": 0, "test_color": "green"}
    assert traffic_vars(Color.GREEN) == {"blue_weight": 0, "green_weight": 100, "test_color": "blue"}


def test_traffic_vars_overrides() -> None:
    assert traffic_vars(Color.BLUE, blue_weight=90, green_weight=10) == {
        "blue_weight": 90,
        "green_weight": 10,
        "test_color": "green",
    }
    assert traffic_vars(Color.BLUE, green_weight=50)["blue_weight"] == 50
    assert traffic_vars(Color.GREEN, blue_weight=10)["green_weight"] == 90
    assert traffic_vars(Color.BLUE, test_color=Color.BLUE)["test_color"] == "blue"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"blue_weight": 60, "green_weight": 60},
        {"blue_weight": 101},
        {"green_weight": -1},
        {"blue_weight": True},
        {"blue_weight": 50.5},
    ],
)
def test_traffic_vars_rejects_bad_weights(kwargs) -> None:
    with pytest.raises(ValueError, match="weight"):
        traffic_vars(Color.BLUE, **kwargs)


def test_color_vars(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    config = load_environment(root, "prod").config
    assert color_vars(config, Color.BLUE) == {
        "app_version": "1.4.1",
        "desired": 4,
        "min_size": 2,
        "max_size": 12,
    }
    colors = config.colors.model_copy(update={"green": config.colors.green.model_copy(update={"retired": True})})
    retired = config.model_copy(update={"colors": colors})
    assert color_vars(retired, Color.GREEN) == {
        "app_version": "1.4.1",
        "desired": 0,
        "min_size": 0,
        "max_size": 12,
    }


# --------------------------------------------------------------------------------------------
# terraform fmt / validate (real binary, provider from a filesystem mirror)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for running terraform with a private CLI config; skips without a provider."""
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not on PATH")
    mirror = os.environ.get("BGTOOL_PROVIDER_MIRROR")
    if not mirror:
        pytest.skip(
            "BGTOOL_PROVIDER_MIRROR is unset: terraform validate needs the hashicorp/aws provider "
            "from a filesystem mirror (no registry access is assumed)"
        )
    if not Path(mirror, "registry.terraform.io", "hashicorp", "aws").is_dir():
        pytest.skip(f"BGTOOL_PROVIDER_MIRROR={mirror} holds no registry.terraform.io/hashicorp/aws")
    config = tmp_path_factory.mktemp("terraform") / "terraform.rc"
    config.write_text(
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {json.dumps(mirror)}\n"
        '    include = ["registry.terraform.io/*/*"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n"
    )
    env = dict(os.environ)
    env.update(
        TF_CLI_CONFIG_FILE=str(config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    env.pop("TF_DATA_DIR", None)
    return env


def run_terraform(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["terraform", *args, "-no-color"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_terraform_fmt_clean(rendered, terraform) -> None:
    root, _ = rendered
    for target in (root / "build", PROJECT / "modules"):
        result = run_terraform(terraform, target, "fmt", "-check", "-recursive", "-diff")
        assert result.returncode == 0, f"{target} is not fmt-clean:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def validated(rendered, terraform) -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """`init -backend=false` + `validate` once per layer, layers in parallel (provider start-up
    dominates)."""
    _, dirs = rendered

    def check(path: Path) -> subprocess.CompletedProcess:
        init = run_terraform(terraform, path, "init", "-backend=false", "-input=false")
        return init if init.returncode else run_terraform(terraform, path, "validate")

    targets = [(env, layer) for env in VALIDATED for layer in LAYERS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda t: check(dirs[t[0]][t[1]]), targets)
        return dict(zip(targets, results, strict=True))


@pytest.mark.parametrize("env", VALIDATED)
@pytest.mark.parametrize("layer", LAYERS)
def test_terraform_validate(validated, env: str, layer: str) -> None:
    result = validated[env, layer]
    assert result.returncode == 0, f"init/validate {env}/{layer}:\n{result.stdout}{result.stderr}"


# --------------------------------------------------------------------------------------------
# The dashboard: the base layer calls modules/dashboard, whose body graphs both colors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_base_layer_creates_the_dashboard_status_names(rendered, env: str) -> None:
    """One name, from bgtool.config.dashboard: what the base layer creates is what status prints."""
    root, dirs = rendered
    config = load_environment(root, env).config
    main = (dirs[env]["base"] / "main.tf").read_text()
    block = main[main.index('module "dashboard" {'):]
    block = block[:block.index("\n}\n")]
    assert f"name   = {json.dumps(dashboard_name(config))}" in block
    assert f"region = {json.dumps(config.aws.region)}" in block
    # Each color on the load balancer in front of it: the shared one, or its own in DNS mode.
    assert "module.alb.color_load_balancers" in block and "module.alb.target_group_arn_suffixes[color]" in block
    outputs = (dirs[env]["base"] / "outputs.tf").read_text()
    assert 'output "dashboard_name"' in outputs and 'output "dashboard_arn"' in outputs


def dashboard_widgets(terraform: dict[str, str], module: Path, colors: dict[str, tuple[str, str]]) -> list[dict]:
    """The module's dashboard body for COLORS (color -> load balancer suffix, target group suffix), as Terraform
    evaluates it."""
    tfvars = module / "test.tfvars.json"
    tfvars.write_text(json.dumps({
        "name": "shop-prod", "region": "eu-west-1",
        "colors": {color: {"load_balancer_arn_suffix": lb, "target_group_arn_suffix": tg}
                   for color, (lb, tg) in colors.items()},
    }))
    done = subprocess.run(["terraform", "console", f"-var-file={tfvars}", "-no-color"], cwd=module, env=terraform,
                          input="jsonencode({ widgets = local.widgets })\n", capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(json.loads(done.stdout))["widgets"]


@pytest.fixture(scope="module")
def dashboard_module(terraform, tmp_path_factory: pytest.TempPathFactory) -> Path:
    module = tmp_path_factory.mktemp("dashboard")
    shutil.copytree(PROJECT / "modules" / "dashboard", module, dirs_exist_ok=True)
    init = run_terraform(terraform, module, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stderr
    return module


SHARED_LB = {"blue": ("app/shop-prod/a1", "targetgroup/shop-prod-blue/b1"),
             "green": ("app/shop-prod/a1", "targetgroup/shop-prod-green/c1")}
DNS_MODE = {"blue": ("app/shop-prod-blue/a1", "targetgroup/shop-prod-blue/b1"),
            "green": ("app/shop-prod-green/a2", "targetgroup/shop-prod-green/c1")}


def metric_lines(widget: dict) -> list[list]:
    """The metric lines of a graph (not its expressions)."""
    return [line for line in widget["properties"]["metrics"] if isinstance(line[0], str)]


@pytest.mark.parametrize("colors", [SHARED_LB, DNS_MODE], ids=["listener-mode", "dns-mode"])
def test_every_graph_shows_both_colors_on_their_own_dimensions(terraform, dashboard_module: Path,
                                                               colors: dict[str, tuple[str, str]]) -> None:
    widgets = dashboard_widgets(terraform, dashboard_module, colors)
    graphs = {w["properties"]["title"]: w for w in widgets if w["type"] == "metric"}
    wanted = {"RequestCount": "Sum", "HTTPCode_Target_5XX_Count": "Sum", "TargetResponseTime": "p99",
              "HealthyHostCount": "Minimum"}
    seen: dict[str, str] = {}
    for title, widget in graphs.items():
        props = widget["properties"]
        assert props["region"] == "eu-west-1" and props["period"] == 60, title
        lines = metric_lines(widget)
        by_color = {}
        for line in lines:
            assert line[0] == "AWS/ApplicationELB" and line[2] == "LoadBalancer" and line[4] == "TargetGroup"
            options = line[6]
            color = options.get("label") or options["id"]
            by_color[color] = (line[3], line[5])
            if "label" in options:
                seen[line[1]] = options["stat"]
        assert by_color == colors, f"{title}: each color on its own load balancer and target group"
    assert seen == wanted
    assert len({w["y"] * 100 + w["x"] for w in widgets}) == len(widgets), "no two widgets in the same place"


def test_the_split_is_each_colors_share_of_requests(terraform, dashboard_module: Path) -> None:
    widgets = dashboard_widgets(terraform, dashboard_module, SHARED_LB)
    split = next(w for w in widgets if w["properties"].get("title", "").startswith("Traffic split"))
    props = split["properties"]
    assert props["stacked"] is True and props["yAxis"]["left"]["max"] == 100
    expressions = {e[0]["id"]: e[0] for e in props["metrics"] if isinstance(e[0], dict)}
    assert expressions["total"]["expression"] == "SUM([blue, green])" and expressions["total"]["visible"] is False
    for color in ("blue", "green"):
        assert expressions[f"{color}_share"]["expression"] == f"100 * FILL({color}, 0) / total"
    hidden = {line[6]["id"]: line for line in metric_lines(split)}
    assert set(hidden) == {"blue", "green"}
    assert all(line[1] == "RequestCount" and line[6] == {"id": line[6]["id"], "stat": "Sum", "visible": False}
               for line in hidden.values())
