"""Which planned changes of the live color are a release, and how `apply` acts on that verdict."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bgtool.cli.reports import plan_markdown
from bgtool.config.schema import Color
from bgtool.errors import BgtoolError
from bgtool.events import Collector, Question
from bgtool.release import infra
from bgtool.release.infra import (
    CAPACITY,
    LOAD_BALANCER,
    MONITORING,
    Change,
    InfraApply,
    action_of,
    apply_order,
    changed_attributes,
    classify_live_color,
    classify_shared,
    release_needed_message,
)
from bgtool.terraform.events import ResourceChange
from bgtool.terraform.layers import RELEASE, LayerPlan

ASG = "module.color.aws_autoscaling_group.this"
LT = "module.color.aws_launch_template.this"
ALARM = 'module.color.aws_cloudwatch_metric_alarm.this["5xx"]'


def rc(address: str, rtype: str, actions: list[str], before: dict[str, Any] | None = None,
       after: dict[str, Any] | None = None, unknown: dict[str, Any] | None = None, mode: str = "managed") -> dict:
    """One entry of `terraform show -json`'s resource_changes."""
    return {"address": address, "mode": mode, "type": rtype, "name": "this",
            "change": {"actions": actions, "before": before, "after": after, "after_unknown": unknown or {}}}


def asg(before: dict[str, Any], after: dict[str, Any], actions: list[str] | None = None) -> dict:
    base = {"name": "bgtool-blue-x", "desired_capacity": 2, "min_size": 0, "max_size": 4, "wait_for_elb_capacity": 2,
            "health_check_grace_period": 30, "tag": [{"key": "team", "value": "platform"}]}
    return rc(ASG, "aws_autoscaling_group", actions or ["update"], {**base, **before}, {**base, **after},
              {"tag": [{}], "launch_template": [{}]})


def kinds(*changes: dict) -> dict[str, str]:
    return {c.address: c.kind for c in classify_live_color({"resource_changes": list(changes)})}


# -- classification (pure) ----------------------------------------------------------------------


def test_scaling_the_live_group_is_a_capacity_change() -> None:
    change = asg({}, {"desired_capacity": 3, "wait_for_elb_capacity": 3, "max_size": 6})
    assert kinds(change) == {ASG: CAPACITY}


SERVICE = "module.color.module.ecs_service.aws_ecs_service.this"
SCALABLE = "module.color.module.ecs_service.aws_appautoscaling_target.this"
TASKDEF = "module.color.module.ecs_service.aws_ecs_task_definition.this"


def service(after: dict[str, Any], actions: list[str] | None = None) -> dict:
    base = {"name": "bgtool-ecs-blue", "desired_count": 2, "task_definition": "arn:td/bgtool-ecs-blue:1",
            "health_check_grace_period_seconds": 30}
    return rc(SERVICE, "aws_ecs_service", actions or ["update"], base, {**base, **after})


def test_scaling_the_live_ecs_service_is_a_capacity_change() -> None:
    bounds = rc(SCALABLE, "aws_appautoscaling_target", ["update"], {"min_capacity": 0, "max_capacity": 4},
                {"min_capacity": 1, "max_capacity": 6})
    assert kinds(service({"desired_count": 3}), bounds) == {SERVICE: CAPACITY, SCALABLE: CAPACITY}


def test_a_new_task_definition_or_another_service_setting_is_a_release() -> None:
    assert kinds(service({"desired_count": 3, "task_definition": "arn:td/bgtool-ecs-blue:2"})) == {SERVICE: RELEASE}
    assert kinds(service({"health_check_grace_period_seconds": 60})) == {SERVICE: RELEASE}
    assert kinds(service({"desired_count": 3}, actions=["create", "delete"])) == {SERVICE: RELEASE}
    image = rc(TASKDEF, "aws_ecs_task_definition", ["create", "delete"], {"cpu": "256"}, {"cpu": "256"})
    assert kinds(image) == {TASKDEF: RELEASE}
    assert kinds(rc(SCALABLE, "aws_appautoscaling_target", ["update"], {"tags": {}}, {"tags": {"a": "b"}})) == {
        SCALABLE: RELEASE}


def test_any_other_attribute_of_the_live_group_makes_it_a_release() -> None:
    assert kinds(asg({}, {"desired_capacity": 3, "health_check_grace_period": 60})) == {ASG: RELEASE}
    assert kinds(asg({}, {"tag": [{"key": "team", "value": "payments"}]})) == {ASG: RELEASE}


def test_a_replaced_group_or_launch_template_is_a_release_even_with_only_capacity_listed() -> None:
    replaced = asg({}, {"desired_capacity": 3}, actions=["create", "delete"])
    template = rc(LT, "aws_launch_template", ["create", "delete"], {"instance_type": "t3.micro"},
                  {"instance_type": "t3.small"})
    config = rc("module.color.terraform_data.instance_config", "terraform_data", ["delete", "create"], {}, {})
    assert set(kinds(replaced, template, config).values()) == {RELEASE}


def test_an_attribute_not_known_until_apply_counts_as_changed() -> None:
    change = asg({}, {}, )
    change["change"]["after_unknown"] = {"desired_capacity": False, "vpc_zone_identifier": [True]}
    assert changed_attributes(change["change"]) == ("vpc_zone_identifier",)
    assert kinds(change) == {ASG: RELEASE}


def _configured(*attributes: str) -> dict:
    """The `configuration` section of a saved plan: the color module sets ATTRIBUTES on its group."""
    group = {"address": "aws_autoscaling_group.this", "mode": "managed", "type": "aws_autoscaling_group",
             "name": "this", "expressions": {a: {"references": ["var.x"]} for a in attributes}}
    return {"root_module": {"module_calls": {"color": {"module": {"resources": [group]}}}}}


def test_computed_attributes_the_configuration_does_not_set_are_not_a_change() -> None:
    """The provider leaves its own computed blocks unknown in any update of the group."""
    change = asg({"capacity_reservation_specification": [{"capacity_reservation_preference": "default"}],
                  "warm_pool": []},
                 {"desired_capacity": 3, "wait_for_elb_capacity": 3, "warm_pool": None})
    change["module_address"] = "module.color"
    change["change"]["after_unknown"] = {"capacity_reservation_specification": True, "tag": [{}]}
    plan = {"resource_changes": [change],
            "configuration": _configured("desired_capacity", "wait_for_elb_capacity", "launch_template")}
    assert [c.kind for c in classify_live_color(plan)] == [CAPACITY]
    plan["configuration"] = _configured("desired_capacity", "capacity_reservation_specification")
    assert [c.kind for c in classify_live_color(plan)] == [RELEASE], "an unknown value the configuration sets"
    del plan["configuration"]
    assert [c.kind for c in classify_live_color(plan)] == [RELEASE], "without the configuration: cautious"


def test_a_block_read_back_with_null_planned_as_empty_string_is_not_a_change() -> None:
    """Seen with provider 5.100: scaling a group plans capacity_reservation_specification null -> ""."""
    change = asg({"capacity_reservation_specification": [{"capacity_reservation_preference": None,
                                                          "capacity_reservation_target": []}]},
                 {"desired_capacity": 3, "wait_for_elb_capacity": 3,
                  "capacity_reservation_specification": [{"capacity_reservation_preference": "",
                                                          "capacity_reservation_target": []}]})
    assert changed_attributes(change["change"]) == ("desired_capacity", "wait_for_elb_capacity")
    assert kinds(change) == {ASG: CAPACITY}
    real = asg({"capacity_reservation_specification": [{"capacity_reservation_preference": None}]},
               {"capacity_reservation_specification": [{"capacity_reservation_preference": "none"}]})
    assert kinds(real) == {ASG: RELEASE}


def test_alarms_created_or_updated_apply_directly_but_a_removed_alarm_is_a_release() -> None:
    updated = rc(ALARM, "aws_cloudwatch_metric_alarm", ["update"], {"threshold": 10}, {"threshold": 20})
    gone = rc(ALARM.replace("5xx", "latency"), "aws_cloudwatch_metric_alarm", ["delete"], {"threshold": 1}, None)
    assert kinds(updated, gone) == {ALARM: MONITORING, ALARM.replace("5xx", "latency"): RELEASE}


def test_reads_no_ops_and_data_sources_are_not_changes() -> None:
    assert kinds(rc(LT, "aws_launch_template", ["no-op"]),
                 rc("data.terraform_remote_state.base", "terraform_remote_state", ["read"], mode="data")) == {}


@pytest.mark.parametrize(("actions", "word"), [(["create", "delete"], "replace"), (["delete", "create"], "replace"),
                                               (["update"], "update"), (["delete"], "delete")])
def test_action_words(actions: list[str], word: str) -> None:
    assert action_of(actions) == word


def test_shared_layers_flag_only_routing_that_is_replaced_or_destroyed() -> None:
    plan = {"resource_changes": [
        rc("module.alb.aws_lb.this", "aws_lb", ["create", "delete"], {"internal": False}, {"internal": True}),
        rc('module.alb.aws_lb_target_group.this["blue"]', "aws_lb_target_group", ["delete"], {"port": 80}, None),
        rc("module.alb.aws_lb.this", "aws_lb", ["update"], {"idle_timeout": 60}, {"idle_timeout": 30}),
        rc("module.traffic.aws_lb_listener.production", "aws_lb_listener", ["update"], {"port": 80}, {"port": 81}),
        rc("module.network.aws_security_group.alb", "aws_security_group", ["create", "delete"], {}, {}),
    ]}
    assert [c.kind for c in classify_shared(plan)] == [LOAD_BALANCER, LOAD_BALANCER, "", "", ""]


def test_refusal_names_each_live_change_and_the_release_command() -> None:
    changes = [Change(LT, "replace", RELEASE),
               Change(ASG, "update", RELEASE, ("desired_capacity", "vpc_zone_identifier"))]
    error = release_needed_message("prod", Color.BLUE, changes, applied_first=False)
    assert f"replace {LT}" in error.message
    assert f"update {ASG} (desired_capacity, vpc_zone_identifier)" in error.message
    assert "nothing was applied" in error.message and "blue layer was not applied" in error.message
    assert "'bgtool apply prod --release'" in (error.hint or "")


ALL = ["base", "blue", "green", "traffic"]


@pytest.mark.parametrize(("layers", "live", "active", "order"), [
    (ALL, [], Color.BLUE, ["base", "blue", "green", "traffic"]),
    (ALL, [Color.BLUE], Color.BLUE, ["base", "green", "traffic", "blue"]),
    (ALL, [Color.GREEN], Color.GREEN, ["base", "blue", "traffic", "green"]),
    (ALL, [Color.GREEN, Color.BLUE], Color.GREEN, ["base", "traffic", "blue", "green"]),
    (["blue", "green"], [Color.BLUE], Color.BLUE, ["green", "blue"]),
])
def test_the_live_color_comes_after_traffic(layers: list[str], live: list[Color], active: Color,
                                            order: list[str]) -> None:
    assert apply_order(layers, live, active) == order


# -- how plans show it ----------------------------------------------------------------------------


def _live_plan() -> LayerPlan:
    plan = LayerPlan("blue", "changes", 1, 1, 1, [ResourceChange(LT, "replace"), ResourceChange(ASG, "update"),
                                                  ResourceChange(ALARM, "update")], live=True)
    plan.marks = {LT: RELEASE, ASG: CAPACITY, ALARM: MONITORING}
    return plan


def test_plan_json_marks_each_release_and_the_layer() -> None:
    doc = _live_plan().to_dict()
    assert doc["live"] is True and doc["release"] is True
    assert [(r["address"], r["release"], r["kind"]) for r in doc["resources"]] == [
        (LT, True, RELEASE), (ASG, False, CAPACITY), (ALARM, False, MONITORING)]
    plain = LayerPlan("green", "changes", resources=[ResourceChange(LT, "replace")]).to_dict()
    assert plain["release"] is False and plain["resources"][0]["kind"] is None


def test_pull_request_markdown_says_what_will_be_released_and_what_takes_routing_away() -> None:
    base = LayerPlan("base", "changes", 1, 0, 1, [ResourceChange("module.alb.aws_lb.this", "replace")])
    base.marks = {"module.alb.aws_lb.this": LOAD_BALANCER}
    text = plan_markdown("prod", [base, _live_plan()], None)
    assert "blue is live: 1 change(s) will be released blue/green" in text
    assert "`bgtool apply prod --release`" in text
    assert f"`replace` `{LT}` — **will be released blue/green**" in text
    assert f"`update` `{ASG}` — capacity change, applied directly" in text
    assert "base replaces or destroys traffic routing** (`module.alb.aws_lb.this`)" in text
    assert "| blue (live) | changes, **will be released blue/green** |" in text


# -- apply's decisions, with Terraform and AWS replaced by fakes -----------------------------------


class FakeWorkspace(SimpleNamespace):
    def prepare(self) -> list[str]:
        return []

    def reload(self) -> None:
        pass


class FakeLock:
    """apply's operation lock (tests/unit/test_lock_first.py holds a real one)."""

    @classmethod
    def of(cls, ws: Any) -> FakeLock:
        return cls()

    @contextmanager
    def held(self, operation: str) -> Iterator[None]:
        yield


def _workspace(active: Color = Color.BLUE) -> FakeWorkspace:
    return FakeWorkspace(env="prod", root=Path("/nowhere"), aws=None, config=SimpleNamespace(active_color=active),
                         emit=Collector())


def _fake_terraform(monkeypatch: pytest.MonkeyPatch, documents: dict[str, dict], applied: list[str]) -> None:
    def plan_layer(ws: Any, layer: str, variables: Any = None) -> LayerPlan:
        has = bool(documents.get(layer, {}).get("resource_changes"))
        return LayerPlan(layer, "changes" if has else "no-changes", plan_file=Path(f"/plans/{layer}"))

    monkeypatch.setattr(infra, "plan_layer", plan_layer)
    monkeypatch.setattr(infra, "plan_json", lambda ws, plan: documents[plan.layer])
    monkeypatch.setattr(infra, "apply_plan", lambda ws, plan: applied.append(plan.layer))
    monkeypatch.setattr(infra, "production_weight", lambda ws, color: 100 if color is Color.BLUE else 0)
    monkeypatch.setattr(infra, "History", SimpleNamespace(of=lambda ws: SimpleNamespace(read=lambda: [],
                                                                                   append=lambda record: record)))
    monkeypatch.setattr(infra, "begin", lambda ws: {})
    monkeypatch.setattr(InfraApply, "_record_apply", lambda self, *args: None)  # test_changed_since_applied
    monkeypatch.setattr(infra, "refuse_stale", lambda ws, records, action: None)
    monkeypatch.setattr(infra, "OperationLock", FakeLock)


def _run(ws: Any, *, release: bool = False, approve: bool = True, routing: bool = True) -> InfraApply:
    questions: list[Question] = []

    def confirm_routing(q: Question) -> bool:
        questions.append(q)
        return routing

    run = InfraApply(ws, lambda plan: approve, lambda q: True, confirm_routing, release=release)
    run.questions = questions  # type: ignore[attr-defined]
    return run


def test_a_release_not_asked_for_is_refused_before_any_layer_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    template = rc(LT, "aws_launch_template", ["create", "delete"], {"instance_type": "t3.micro"},
                  {"instance_type": "t3.small"})
    _fake_terraform(monkeypatch, {"blue": {"resource_changes": [template]}}, applied)
    monkeypatch.setattr(infra, "serving_colors", lambda ws: {Color.BLUE})
    monkeypatch.setattr(infra, "apply_layers", lambda *a, **k: pytest.fail("nothing may be applied"))
    with pytest.raises(BgtoolError) as caught:
        _run(_workspace()).run(["base", "blue", "green", "traffic"])
    assert "nothing was applied" in caught.value.message and applied == []


def test_a_capacity_change_of_the_live_color_is_applied_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    _fake_terraform(monkeypatch, {"blue": {"resource_changes": [asg({}, {"desired_capacity": 3})]}}, applied)
    ws = _workspace()
    result = _run(ws)._live(ws, Color.BLUE)
    assert (result.status, applied) == ("applied", ["blue"])
    assert "capacity change" in result.detail
    assert any("not a release" in e.text for e in ws.emit.events if hasattr(e, "text"))


def test_a_release_found_only_after_the_layers_before_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    _fake_terraform(monkeypatch, {"blue": {"resource_changes": [
        rc(LT, "aws_launch_template", ["create", "delete"], {}, {})]}}, applied)
    ws = _workspace()
    with pytest.raises(BgtoolError) as caught:
        _run(ws)._live(ws, Color.BLUE)
    assert "applied first" in caught.value.message and applied == []


def test_replacing_the_load_balancer_needs_the_second_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    doc = {"resource_changes": [rc("module.alb.aws_lb.this", "aws_lb", ["create", "delete"], {}, {})]}
    _fake_terraform(monkeypatch, {"base": doc}, applied)
    plan = LayerPlan("base", "changes", plan_file=Path("/plans/base"))
    declined = _run(_workspace(), routing=False)
    assert declined._approve(plan) is False
    assert "module.alb.aws_lb.this" in declined.questions[0].text  # type: ignore[attr-defined]
    assert plan.marks == {"module.alb.aws_lb.this": LOAD_BALANCER}
    first_refused = _run(_workspace(), approve=False)
    assert first_refused._approve(plan) is False
    assert first_refused.questions == [], "the second question comes only after the first yes"  # type: ignore[attr-defined]
    plain = LayerPlan("base", "changes", plan_file=Path("/plans/base"))
    _fake_terraform(monkeypatch, {"base": {"resource_changes": [
        rc("module.network.aws_security_group.alb", "aws_security_group", ["update"], {}, {})]}}, applied)
    quiet = _run(_workspace(), routing=False)
    assert quiet._approve(plain) is True and quiet.questions == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("blue_changes", "idle_prepared"), [
    ([asg({}, {"desired_capacity": 3})], False),
    ([rc(LT, "aws_launch_template", ["create", "delete"], {}, {})], True),
])
def test_release_prepares_the_idle_color_only_when_something_is_released(
        monkeypatch: pytest.MonkeyPatch, blue_changes: list[dict], idle_prepared: bool) -> None:
    """--release is always on in the pipeline: without a live change the idle color keeps its own version."""
    calls: list[tuple[list[str], dict]] = []
    _fake_terraform(monkeypatch, {"blue": {"resource_changes": blue_changes}}, [])
    monkeypatch.setattr(infra, "serving_colors", lambda ws: {Color.BLUE})
    monkeypatch.setattr(infra, "apply_layers", lambda ws, order, approve, **kw: calls.append((order, kw)) or [])
    _run(_workspace(), release=True).run(ALL)
    order, kw = calls[0]
    assert order == ["base", "green", "traffic", "blue"]
    assert ("green" in kw["handlers"]) is idle_prepared
    assert kw["resume"] == "bgtool apply prod --release"


def test_without_a_terminal_only_allow_replace_passes_the_routing_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    from bgtool.cli import infra as cli_infra

    monkeypatch.setattr(cli_infra.ui, "interactive", lambda: False)
    question = Question("This base plan replaces or destroys traffic routing (replace module.alb.aws_lb.this); ...")
    with pytest.raises(BgtoolError) as caught:
        cli_infra.routing_confirmer(False, "bgtool apply prod")(question)
    assert "'bgtool apply prod --yes --allow-replace'" in (caught.value.hint or "")
    assert "nothing of that layer was applied" in caught.value.message
    assert cli_infra.routing_confirmer(True, "bgtool apply prod")(question) is True


def test_a_color_the_guarded_switch_just_took_out_of_production_is_applied_as_idle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A merged pull request that changes active_color and the instances: the old color is idle by then."""
    _fake_terraform(monkeypatch, {"blue": {"resource_changes": [rc(LT, "aws_launch_template", ["delete", "create"])]}},
                    [])
    monkeypatch.setattr(infra, "production_weight", lambda ws, color: 0)
    ws = _workspace(active=Color.GREEN)
    assert _run(ws)._live_handler(Color.BLUE)(ws) is None, "None: the plain apply of an idle color"
    monkeypatch.setattr(infra, "production_weight", lambda ws, color: 100)
    with pytest.raises(BgtoolError):
        _run(ws)._live_handler(Color.BLUE)(ws)
