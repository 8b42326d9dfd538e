"""The runner against the real terraform binary on provider-free configurations, and against a fake one."""

from __future__ import annotations

import fcntl
import json
import sys
import time
from pathlib import Path

import pytest

from bgtool.terraform import cliconfig
from bgtool.terraform.cliconfig import (
    MIRROR_ENV,
    cli_config_text,
    conventional_dirs,
    find_mirror,
    resolve_mirror,
    write_cli_config,
)
from bgtool.terraform.events import Diagnostic, Event, parse_line, summarize
from bgtool.terraform.runner import Terraform, TerraformError, check_version, parse_version
from bgtool.terraform.statelocks import lock_conflict

PLANNED = {
    "type": "planned_change", "@message": "terraform_data.a: Plan to create",
    "change": {"resource": {"addr": "terraform_data.a"}, "action": "create"},
}
SUMMARY = {"type": "change_summary", "changes": {"add": 1, "change": 2, "remove": 3, "operation": "plan"}}
DIAG = {
    "type": "diagnostic", "@message": "Error: Reference to undeclared input variable",
    "diagnostic": {
        "severity": "error", "summary": "Reference to undeclared input variable",
        "detail": "An input variable with the name \"nope\" has not been declared.",
        "address": "terraform_data.a",
        "range": {"filename": "main.tf", "start": {"line": 3, "column": 11}},
    },
}


def test_events_accumulate_into_a_summary() -> None:
    s = summarize([json.dumps(PLANNED), json.dumps(SUMMARY), json.dumps(DIAG), "not json", ""])
    assert (s.add, s.change, s.destroy) == (1, 2, 3)
    assert [(r.address, r.action) for r in s.planned] == [("terraform_data.a", "create")]
    (err,) = s.errors
    assert err.location == "main.tf:3" and err.address == "terraform_data.a"
    assert "Reference to undeclared input variable [terraform_data.a, main.tf:3]" in err.render()


def test_non_json_lines_become_text_events() -> None:
    assert parse_line("panic: boom") == Event("text", "panic: boom", {})
    assert parse_line("   ") is None


def test_apply_hooks_expose_resource_action_and_elapsed() -> None:
    line = json.dumps({"type": "apply_complete", "hook": {
        "resource": {"addr": "aws_lb.this"}, "action": "create", "elapsed_seconds": 61}})
    event = parse_line(line)
    assert event and (event.resource, event.action, event.elapsed) == ("aws_lb.this", "create", 61.0)


def test_version_parsing() -> None:
    assert parse_version("1.11.4") == (1, 11, 4)
    assert parse_version("garbage") is None
    assert check_version() >= (1, 5, 0)


def test_cli_config_points_at_a_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGTOOL_PROVIDER_MIRROR", str(tmp_path))
    mirror = resolve_mirror("/elsewhere")
    assert mirror == tmp_path.resolve()
    text = write_cli_config(tmp_path / "cfg", mirror).read_text()
    assert f'path    = "{tmp_path.resolve()}"' in text and "direct" in text
    assert "filesystem_mirror" not in cli_config_text(None)


def test_missing_mirror_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGTOOL_PROVIDER_MIRROR", "/no/such/mirror")
    with pytest.raises(Exception, match="BGTOOL_PROVIDER_MIRROR: provider mirror /no/such/mirror"):
        resolve_mirror(None)


# -- where providers come from when nothing is set: a mirror in a conventional place -----------------


def make_mirror(directory: Path, provider: str = "hashicorp/aws") -> Path:
    (directory / "registry.terraform.io" / provider / "5.100.0" / "linux_amd64").mkdir(parents=True)
    return directory


def test_a_mirror_is_found_up_to_three_levels_below_a_conventional_directory(tmp_path: Path) -> None:
    base = tmp_path / "opt"
    assert find_mirror([base, tmp_path / "missing"]) is None
    make_mirror(base / "a" / "b" / "c")  # registry.terraform.io four levels down: too deep
    make_mirror(base / "other", "hashicorp/random")  # a mirror without the AWS provider
    assert find_mirror([base]) is None
    found = make_mirror(base / "z" / "tf-plugins")
    assert find_mirror([base]) == found.resolve()
    shallower = make_mirror(base / "y")
    assert find_mirror([base]) == shallower.resolve()  # the shallowest, whatever the listing order
    first = make_mirror(tmp_path / "first")
    assert find_mirror([first, base]) == first.resolve()  # the directories are searched in order


def test_the_conventional_places_are_the_users_then_the_systems(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert conventional_dirs() == [
        tmp_path / ".terraform.d/plugins", tmp_path / ".local/share/terraform/plugins",
        Path("/usr/local/share/terraform/plugins"), Path("/usr/share/terraform/plugins"), Path("/opt")]
    mine = make_mirror(tmp_path / ".local/share/terraform/plugins")
    assert find_mirror() == mine.resolve()  # before anything under /usr or /opt
    assert resolve_mirror(None) == mine.resolve()


def test_mirror_precedence_variable_then_file_then_found_then_registry(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    found = make_mirror(tmp_path / "found")
    monkeypatch.setattr(cliconfig, "conventional_dirs", lambda: [tmp_path / "found"])
    variable, configured = make_mirror(tmp_path / "variable"), make_mirror(tmp_path / "configured")
    monkeypatch.setenv(MIRROR_ENV, str(variable))
    assert resolve_mirror(str(configured)) == variable.resolve()
    monkeypatch.delenv(MIRROR_ENV)
    assert resolve_mirror(str(configured)) == configured.resolve()
    assert resolve_mirror(None) == found.resolve()
    monkeypatch.setattr(cliconfig, "conventional_dirs", lambda: [tmp_path / "nothing-here"])
    assert resolve_mirror(None) is None  # the registry


@pytest.mark.parametrize("diagnostic", [
    Diagnostic("error", "Failed to query available provider packages",
               "Could not retrieve the list of available versions for provider hashicorp/aws: could not connect "
               "to registry.terraform.io: failed to request discovery document: Get \"https://registry.terraform."
               "io/.well-known/terraform.json\": dial tcp: lookup registry.terraform.io: no such host"),
    Diagnostic("error", "Failed to query available provider packages",
               "Could not retrieve the list of available versions for provider hashicorp/aws: provider "
               "registry.terraform.io/hashicorp/aws was not found in any of the search locations\n\n- /srv/mirror"),
    Diagnostic("error", "Failed to install provider", "Error while installing hashicorp/aws v5.100.0: ..."),
])
def test_a_provider_that_cannot_be_installed_names_the_settings(diagnostic: Diagnostic) -> None:
    """In the message itself: `bgtool plan` and drift show a layer's error message, not a hint."""
    message = TerraformError("base", "init", [diagnostic]).message
    assert MIRROR_ENV in message and "terraform.provider_mirror" in message
    assert "/opt" in message and ".terraform.d/plugins" in message  # where bgtool looked by itself
    from_stderr = TerraformError("base", "init", [], stderr=f"Error: {diagnostic.summary}\n{diagnostic.detail}")
    assert MIRROR_ENV in from_stderr.message
    other = TerraformError("base", "plan", [Diagnostic("error", "Invalid reference", "A reference to x")]).message
    assert MIRROR_ENV not in other


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "main.tf").write_text(
        'variable "value" {\n  type    = string\n  default = "one"\n}\n\n'
        'resource "terraform_data" "a" {\n  input = var.value\n}\n\n'
        'output "value" {\n  value = terraform_data.a.output\n}\n'
    )
    return tmp_path


def runner(workdir: Path, events: list[Event] | None = None) -> Terraform:
    cfg = write_cli_config(workdir / ".cfg", None)
    return Terraform(workdir, layer="demo", cli_config=cfg, on_event=events.append if events is not None else None)


def test_plan_apply_outputs_and_idempotence(workdir: Path) -> None:
    events: list[Event] = []
    tf = runner(workdir, events)
    assert tf.init() is True
    assert tf.init() is False  # nothing that needs init changed
    plan = tf.plan(out=workdir / "p.tfplan")
    assert plan.exit_code == 2 and [r.address for r in plan.summary.planned] == ["terraform_data.a"]
    assert tf.show_plan(workdir / "p.tfplan")["resource_changes"][0]["change"]["actions"] == ["create"]
    applied = tf.apply(plan_file=workdir / "p.tfplan")
    assert [r.address for r in applied.summary.applied] == ["terraform_data.a"]
    assert any(e.kind == "apply_start" for e in events)
    assert tf.outputs() == {"value": "one"}
    assert tf.plan().exit_code == 0
    changed = tf.plan(variables={"value": "two"})
    assert changed.exit_code == 2 and changed.summary.change == 1


def test_a_plan_only_shown_runs_while_the_state_is_locked(workdir: Path) -> None:
    """`bgtool plan` and drift neither wait for nor take the lock an apply holds; a plan to apply does."""
    tf = runner(workdir)
    tf.init()
    tf.apply()
    with (workdir / "terraform.tfstate").open("r+") as state:
        fcntl.lockf(state, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running apply holds it (local backend)
        assert tf.plan(lock=False, variables={"value": "two"}).exit_code == 2
        with pytest.raises(TerraformError) as info:
            tf.plan(variables={"value": "two"})
    assert lock_conflict(info.value.diagnostics) is not None
    assert not (workdir / ".terraform.tfstate.lock.info").exists()


def test_state_is_read_without_a_plan(workdir: Path) -> None:
    tf = runner(workdir)
    tf.init()
    assert tf.state() == {}
    tf.apply()
    (resource,) = tf.state()["resources"]
    attributes = resource["instances"][0]["attributes"]
    assert resource["type"] == "terraform_data" and attributes["input"]["value"] == "one" and attributes["id"]


def test_configuration_errors_become_structured(workdir: Path) -> None:
    (workdir / "broken.tf").write_text('resource "terraform_data" "b" {\n  input = var.nope\n}\n')
    tf = runner(workdir)
    tf.init()
    with pytest.raises(TerraformError) as info:
        tf.plan()
    err = info.value
    assert err.layer == "demo" and err.command == "plan"
    (diag,) = [d for d in err.diagnostics if d.severity == "error"]
    assert diag.summary == "Reference to undeclared input variable"
    assert diag.location == "broken.tf:2"
    assert "broken.tf:2" in str(err)


def test_runtime_errors_carry_location_and_detail(workdir: Path) -> None:
    (workdir / "check.tf").write_text(
        'resource "terraform_data" "guarded" {\n  input = var.value\n'
        '  lifecycle {\n    postcondition {\n      condition     = self.output == "one"\n'
        '      error_message = "value must stay one"\n    }\n  }\n}\n'
    )
    tf = runner(workdir)
    tf.init()
    tf.apply()
    with pytest.raises(TerraformError) as info:
        tf.apply(variables={"value": "two"})
    (diag,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert diag.summary == "Resource postcondition failed"
    assert diag.location == "check.tf:5" and "value must stay one" in diag.detail


# -- a fake terraform on PATH: what the runner does with the process, without a real binary -------
FAKE_TERRAFORM = '''#!{python}
"""Stands in for terraform: logs its arguments, then plays the script in FAKE_TF_SCRIPT."""
import json, os, signal, sys
signal.alarm(20)  # never outlive a runner that stopped reading
with open(os.environ["FAKE_TF_CALLS"], "a") as calls:
    calls.write(" ".join(sys.argv[1:]) + "\\n")
script = os.environ.get("FAKE_TF_SCRIPT", "")
if script == "chatty":
    print(json.dumps({planned}), flush=True)
    sys.stderr.write("warning: chatter\\n" * 120_000)  # ~2 MiB, more than any pipe buffer
    sys.stderr.flush()
    print(json.dumps({summary}), flush=True)
    sys.exit(2)
sys.exit(0)
'''


@pytest.fixture
def fake_terraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a fake `terraform` first on PATH; returns the file its invocations are logged to."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "terraform"
    script.write_text(FAKE_TERRAFORM.format(python=sys.executable, planned=PLANNED, summary=SUMMARY))
    script.chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.touch()
    monkeypatch.setenv("PATH", f"{bindir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_TF_CALLS", str(calls))
    return calls


def test_chatty_stderr_does_not_stall_the_event_stream(
    fake_terraform: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TF_SCRIPT", "chatty")
    events: list[Event] = []
    tf = Terraform(tmp_path, layer="demo", cli_config=write_cli_config(tmp_path / ".cfg", None),
                   on_event=events.append)
    started = time.monotonic()
    result = tf.plan()
    took = time.monotonic() - started
    assert took < 10, f"plan took {took:.1f} s: stderr was not drained while stdout was read"
    assert result.exit_code == 2
    assert [r.address for r in result.summary.planned] == ["terraform_data.a"]
    assert (result.summary.add, result.summary.change, result.summary.destroy) == (1, 2, 3)
    assert [e.kind for e in events] == ["planned_change", "change_summary"]


def test_chatty_stderr_of_a_failed_run_keeps_its_tail(
    fake_terraform: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TF_SCRIPT", "chatty")
    tf = Terraform(tmp_path, layer="demo", cli_config=write_cli_config(tmp_path / ".cfg", None))
    with pytest.raises(TerraformError) as info:
        tf.apply()  # exit 2 is a failure for apply
    assert "warning: chatter" in str(info.value) and len(str(info.value)) < 4000


def test_init_reruns_when_the_cli_config_or_the_mirror_changes(fake_terraform: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    provider = mirror / "registry.terraform.io/hashicorp/aws"
    (provider / "5.100.0/linux_amd64").mkdir(parents=True)
    work = tmp_path / "layer"
    work.mkdir()
    (work / "main.tf").write_text('terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n'
                                  '  }\n}\n')
    cfg = write_cli_config(tmp_path / ".cfg", mirror)
    tf = Terraform(work, layer="demo", cli_config=cfg)

    def inits() -> int:
        return sum(line.startswith("init ") for line in fake_terraform.read_text().splitlines())

    assert tf.init() is True and tf.init() is False and inits() == 1
    (provider / "5.101.0/linux_amd64").mkdir(parents=True)  # a new provider version in the same mirror
    assert tf.init() is True and tf.init() is False and inits() == 2
    other = tmp_path / "other-mirror"
    (other / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").mkdir(parents=True)
    write_cli_config(tmp_path / ".cfg", other)  # same CLI config path, other content
    assert tf.init() is True and inits() == 3
    write_cli_config(tmp_path / ".cfg", None)  # back to the registry
    assert tf.init() is True and tf.init() is False and inits() == 4
    (work / "outputs.tf").write_text('output "x" {\n  value = 1\n}\n')  # an edit that needs no init
    assert tf.init() is False and inits() == 4


def test_terraform_runs_with_the_measured_go_runtime_unless_the_caller_set_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/terraform_runtime.py: GOGC=400 costs terraform and its provider about 30% less CPU."""
    from bgtool.terraform.runner import Terraform

    monkeypatch.delenv("GOGC", raising=False)
    assert Terraform(tmp_path, layer="base", cli_config=tmp_path / "rc").env["GOGC"] == "400"
    monkeypatch.setenv("GOGC", "150")
    assert Terraform(tmp_path, layer="base", cli_config=tmp_path / "rc").env["GOGC"] == "150"
