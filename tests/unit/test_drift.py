"""Pure drift judgement and reports, from recorded `terraform show -json` fragments."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bgtool.aws.live import ListenerWeights
from bgtool.cli.reports import drift_markdown
from bgtool.config.schema import Color
from bgtool.drift import diff
from bgtool.drift.model import DriftItem, DriftReport, EnvReport, LayerCheck
from bgtool.records.lock import LockInfo

LISTENER = "module.traffic.aws_lb_listener.production"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2"

# Fragments of `terraform show -json` of a normal plan: `resource_drift` (what the plan's refresh
# found) beside `resource_changes` (what applying would do). Here: an out-of-band modify_listener.
REFRESH_LISTENER = {
    "resource_drift": [{
        "address": LISTENER, "mode": "managed", "type": "aws_lb_listener", "name": "production",
        "change": {
            "actions": ["update"],
            "before": {"port": 80, "default_action": [{"forward": [{"target_group": [
                {"arn": "tg-blue", "weight": 100}, {"arn": "tg-green", "weight": 0}]}]}],
                "tags": {"a": "1"}, "tags_all": {"a": "1"}},
            "after": {"port": 80, "default_action": [{"forward": [{"target_group": [
                {"arn": "tg-blue", "weight": 0}, {"arn": "tg-green", "weight": 100}]}]}],
                "tags": {"a": "1"}, "tags_all": {"a": "1"}},
        },
    }],
}
PLAN_REVERTS_LISTENER = {
    "resource_changes": [
        {"address": LISTENER, "mode": "managed", "change": {"actions": ["update"]}},
        {"address": "module.traffic.aws_lb_listener.test", "mode": "managed", "change": {"actions": ["no-op"]}},
        {"address": "data.terraform_remote_state.base", "mode": "data", "change": {"actions": ["read"]}},
    ],
}
REFRESH_DELETED_ALARM = {
    "resource_drift": [{
        "address": 'module.color.aws_cloudwatch_metric_alarm.this["5xx"]', "mode": "managed",
        "change": {"actions": ["delete"], "before": {"alarm_name": "x-green-5xx"}, "after": None},
    }],
}
PLAN_RECREATES_ALARM = {
    "resource_changes": [
        {"address": 'module.color.aws_cloudwatch_metric_alarm.this["5xx"]', "mode": "managed",
         "change": {"actions": ["create"]}},
        {"address": "module.color.aws_launch_template.this", "mode": "managed",
         "change": {"actions": ["create", "delete"]}},
    ],
}


def test_changed_attributes_name_the_leaf_and_drop_tags_all_echo() -> None:
    items = diff.refresh_items("prod", "traffic", REFRESH_LISTENER)
    assert [i.kind for i in items] == ["changed"]
    changes = {c.attribute: (c.before, c.after) for c in items[0].changes}
    assert changes == {
        "default_action[0].forward[0].target_group[0].weight": (100, 0),
        "default_action[0].forward[0].target_group[1].weight": (0, 100),
    }
    assert items[0].reconcile.startswith("bgtool apply prod --layer traffic")


def test_drifted_resource_is_not_reported_again_as_pending() -> None:
    items = diff.terraform_items("prod", "traffic", {**REFRESH_LISTENER, **PLAN_REVERTS_LISTENER})
    assert [(i.kind, i.subject) for i in items] == [("changed", LISTENER)]


def test_deleted_resource_and_unrelated_pending_change() -> None:
    items = diff.terraform_items("prod", "green", {**REFRESH_DELETED_ALARM, **PLAN_RECREATES_ALARM})
    assert [(i.kind, i.subject, i.details.get("action")) for i in items] == [
        ("deleted", 'module.color.aws_cloudwatch_metric_alarm.this["5xx"]', None),
        ("pending", "module.color.aws_launch_template.this", "replace"),
    ]
    assert items[0].reconcile.startswith("bgtool apply prod --layer green")


def test_one_plan_document_gives_changed_deleted_and_pending_once_each() -> None:
    """Everything a layer's check reports comes from its one normal plan document."""
    alarm = 'module.color.aws_cloudwatch_metric_alarm.this["5xx"]'
    doc = {
        "resource_drift": REFRESH_LISTENER["resource_drift"] + REFRESH_DELETED_ALARM["resource_drift"],
        "resource_changes": PLAN_REVERTS_LISTENER["resource_changes"] + PLAN_RECREATES_ALARM["resource_changes"],
    }
    items = diff.terraform_items("prod", "traffic", doc)
    assert sorted((i.kind, i.subject) for i in items) == [
        ("changed", LISTENER), ("deleted", alarm), ("pending", "module.color.aws_launch_template.this")]
    without_drift = diff.terraform_items("prod", "traffic", {"resource_changes": doc["resource_changes"]})
    assert sorted((i.kind, i.subject) for i in without_drift) == [
        ("pending", alarm), ("pending", "module.color.aws_launch_template.this"), ("pending", LISTENER)]


def test_layer_check_keeps_refresh_exit_as_null() -> None:
    """Schema version 1 keeps the field; one plan per layer leaves it null."""
    assert LayerCheck("base", "clean", plan_exit=0).to_dict() == {
        "layer": "base", "status": "clean", "refresh_exit": None, "plan_exit": 0, "error": None}


def test_active_color_matches_or_names_listener_and_weights() -> None:
    same = ListenerWeights(80, "HTTP", ARN, {"blue": 100, "green": 0})
    assert diff.active_color_item("prod", Color.BLUE, same) is None
    flipped = ListenerWeights(80, "HTTP", ARN, {"blue": 0, "green": 100})
    item = diff.active_color_item("prod", Color.BLUE, flipped)
    assert item is not None and ARN in item.subject and ":80" in item.subject
    assert "active_color: blue" in item.summary and "blue 0 / green 100" in item.summary
    assert item.reconcile.startswith("bgtool apply prod (guarded switch back to blue)")
    assert "active_color: green" in item.reconcile
    split = diff.active_color_item("prod", Color.BLUE, ListenerWeights(80, "HTTP", ARN, {"blue": 50, "green": 50}))
    assert split is not None and split.reconcile.startswith("bgtool apply prod --layer traffic")


def test_listener_drift_folds_into_the_active_color_finding() -> None:
    items = diff.refresh_items("prod", "traffic", REFRESH_LISTENER)
    flipped = ListenerWeights(80, "HTTP", ARN, {"blue": 0, "green": 100})
    items.append(diff.active_color_item("prod", Color.BLUE, flipped))
    folded = diff.fold_listener_drift(items)
    assert [i.kind for i in folded] == ["active_color"]
    assert folded[0].details["terraform_drift"][0]["address"] == LISTENER


def test_security_group_drift_folds_into_unmanaged_rule() -> None:
    sg = DriftItem("changed", "base", "module.alb.aws_security_group.alb", "", "",
                   diff.attribute_changes({"ingress": []}, {"ingress": [{"from_port": 22}]}))
    rule = {"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-1", "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "CidrIpv4": "203.0.113.7/32"}
    items = [sg, *diff.unmanaged_rule_items("prod", "x-alb", [rule])]
    folded = diff.fold_security_group_drift(items)
    assert [i.kind for i in folded] == ["unmanaged"]
    assert "tcp port 22 from 203.0.113.7/32" in folded[0].summary and "sgr-1" in folded[0].reconcile


def test_state_ids_reads_nested_modules() -> None:
    doc = {"prior_state": {"values": {"root_module": {"child_modules": [
        {"resources": [{"values": {"id": "sgr-1"}}, {"values": {"id": "sg-1"}}]}]}}}}
    assert diff.state_ids(doc) == {"sgr-1", "sg-1"}


def test_stale_lock_only_after_the_configured_age() -> None:
    at = datetime(2025, 1, 1, 12, tzinfo=UTC)
    lock = LockInfo("ci", "switch", (at - timedelta(minutes=30)).isoformat(), "h", 1)
    assert diff.lock_item("prod", lock, 120, at) is None
    stale = diff.lock_item("prod", lock, 20, at)
    assert stale is not None and "bgtool unlock prod" in stale.reconcile and stale.details["age_seconds"] == 1800


def test_live_parity_ignores_color_and_version_but_not_settings() -> None:
    def shot(color: str, version: str, itype: str) -> dict:
        return {"launch_template": {"InstanceType": itype, "UserData": f"echo {color} {version}"},
                "asg_tags": {"Name": f"x-{color}", "bgtool:version": version}, "target_groups": [f"x-{color}"]}

    blue = diff.normalize_color(shot("blue", "1.0.0", "t3.micro"), "blue", ["1.0.0", "1.5.0"])
    green = diff.normalize_color(shot("green", "1.5.0", "t3.micro"), "green", ["1.0.0", "1.5.0"])
    assert diff.live_parity_items("prod", blue, green) == []
    odd = diff.normalize_color(shot("green", "1.5.0", "t3.large"), "green", ["1.0.0", "1.5.0"])
    items = diff.live_parity_items("prod", blue, odd)
    assert items and items[0].changes[0].attribute == "launch_template.InstanceType"


def _report(*envs: EnvReport) -> DriftReport:
    return DriftReport(list(envs), "2025-01-01T00:00:00+00:00")


def test_exit_code_precedence_and_headline() -> None:
    item = DriftItem("deleted", "green", "a", "a was deleted", "bgtool apply b --layer green")
    clean, drifted = EnvReport("a"), EnvReport("b", [item])
    assert _report(clean).exit_code == 0 and _report(clean).headline() == "clean: no drift in 1 environment"
    assert _report(clean, drifted).exit_code == 2
    assert _report(clean, drifted).headline() == "1 drift in 1 of 2 environments"
    broken = EnvReport("c", layers=[LayerCheck("base", "error", error="boom")])
    both = _report(clean, drifted, broken)
    assert both.exit_code == 1 and both.status == "error"
    assert "check failed in c" in both.headline()
    doc = both.to_dict()
    assert doc["schema_version"] == 1 and doc["environments"][1]["items"][0]["kind"] == "deleted"
    assert doc["environments"][2]["errors"] == ["layer base: boom"]


def test_markdown_has_headline_tables_and_reconcile_commands() -> None:
    item = DriftItem("changed", "traffic", "l", "l was changed | outside", "bgtool apply b --layer traffic",
                     diff.attribute_changes({"w": 1}, {"w": 2}))
    text = drift_markdown(_report(EnvReport("a"), EnvReport("b", [item])))
    assert text.startswith("# ⚠️ bgtool drift: 1 drift in 1 of 2 environments")
    assert "## ✅ a: clean" in text and "No drift." in text
    assert "| changed | traffic | l was changed \\| outside: `w` 1 → 2 | `bgtool apply b --layer traffic` |" in text


def test_plan_markdown_with_switch_headline(shipped) -> None:  # type: ignore[no-untyped-def]
    from bgtool.aws.live import ColorLive, LiveState, TargetHealth
    from bgtool.cli.reports import plan_markdown, switch_headline
    from bgtool.config.schema import load_environment
    from bgtool.terraform.events import ResourceChange
    from bgtool.terraform.layers import LayerPlan

    config = load_environment(shipped, "local").config.model_copy(update={"active_color": Color.GREEN})
    green = ColorLive("green", targets=[TargetHealth("i-1", "healthy"), TargetHealth("i-2", "unused")])
    live = LiveState(True, "dns", [ListenerWeights(80, "HTTP", ARN, {"blue": 100, "green": 0})],
                     {"blue": ColorLive("blue"), "green": green})
    headline = switch_headline("local", config, live)
    assert headline == (f"local: switch blue → green (green {config.colors.green.version}, targets 1/2 healthy now; "
                        f"steps 10/50/100, bake {config.traffic.bake_seconds} s)")
    same = LiveState(True, "dns", [ListenerWeights(80, "HTTP", ARN, {"blue": 0, "green": 100})], live.colors)
    assert switch_headline("local", config, same) is None
    plans = [LayerPlan("base", "no-changes"),
             LayerPlan("traffic", "changes", 0, 1, 0, [ResourceChange(LISTENER, "update")])]
    text = plan_markdown("local", plans, headline)
    assert f"**{headline}**" in text and "| traffic | changes | 0 | 1 | 0 |" in text
    assert f"- `update` `{LISTENER}`" in text and "0 to add, 1 to change, 0 to destroy" in text


def test_refresh_bookkeeping_of_unconfigured_attributes_is_not_drift() -> None:
    """Recorded: after apply, a target group's load_balancer_arns fills in and alarm actions go null → []."""
    tg = 'module.alb.aws_lb_target_group.this["blue"]'
    doc = {
        "configuration": {"root_module": {"module_calls": {"alb": {"module": {"resources": [
            {"address": "aws_lb_target_group.this", "expressions": {"name": {}, "port": {}, "tags": {}}}]}}}}},
        "resource_drift": [{"address": tg, "mode": "managed", "change": {
            "actions": ["update"],
            "before": {"load_balancer_arns": [], "port": 8000, "alarm_actions": None, "tags_all": {"a": "1"}},
            "after": {"load_balancer_arns": ["arn:lb"], "port": 8000, "alarm_actions": [], "tags_all": {"a": "1"}}}}],
    }
    assert diff.refresh_items("e", "base", doc) == []
    doc["resource_drift"][0]["change"]["after"]["port"] = 9000
    items = diff.refresh_items("e", "base", doc)
    assert [c.attribute for c in items[0].changes] == ["port"]
    acting = diff.refresh_items("e", "base", doc, {tg})  # the normal plan acts on it: every change counts
    assert [c.attribute for c in acting[0].changes] == ["load_balancer_arns", "port"]


def test_plan_document_is_read_back_only_when_the_plan_would_act() -> None:
    """A clean layer's plan still lists refresh bookkeeping as drift events: no `show -json` for it."""
    from bgtool.drift.collect import _needs_document
    from bgtool.terraform.events import ResourceChange, StreamSummary
    from bgtool.terraform.runner import RunResult

    bookkeeping = RunResult(0, StreamSummary(drifted=[ResourceChange('module.alb.aws_lb_target_group.this["blue"]',
                                                                      "update")]))
    assert not _needs_document(RunResult(0, StreamSummary()))
    assert not _needs_document(bookkeeping)
    assert _needs_document(RunResult(2, StreamSummary()))


def test_state_ids_reads_a_pulled_state_too() -> None:
    state = {"version": 4, "resources": [
        {"mode": "managed", "type": "aws_vpc_security_group_ingress_rule", "instances": [
            {"index_key": "http", "attributes": {"id": "sgr-1"}}, {"attributes": {"id": "sgr-2"}}]},
        {"mode": "data", "type": "terraform_remote_state", "instances": [{"attributes": {"backend": "s3"}}]}]}
    assert diff.state_ids(state) == {"sgr-1", "sgr-2"}


# An out-of-band change of a database password and of a sensitive nested value: what `terraform show
# -json` writes for it, with Terraform's sensitivity marks beside the raw values.
SECRET_DB = "module.base.aws_db_instance.main"
REFRESH_SENSITIVE = {
    "resource_drift": [{
        "address": SECRET_DB, "mode": "managed", "type": "aws_db_instance", "name": "main",
        "change": {
            "actions": ["update"],
            "before": {"password": "old-s3cret", "port": 5432, "settings": [{"token": "tok-before", "size": 1}]},
            "after": {"password": "new-s3cret", "port": 5433, "settings": [{"token": "tok-after", "size": 2}]},
            "before_sensitive": {"password": True, "settings": [{"token": True}]},
            "after_sensitive": {"password": True, "settings": [{}]},
        },
    }],
    "prior_state": {"values": {"root_module": {"child_modules": [{"resources": [
        {"address": SECRET_DB, "values": {}, "sensitive_values": {"password": True}}]}]}}},
}


def test_values_terraform_marks_sensitive_are_reported_changed_but_never_shown() -> None:
    items = diff.refresh_items("prod", "base", REFRESH_SENSITIVE)
    assert [i.kind for i in items] == ["changed"]
    changes = {c.attribute: (c.before, c.after) for c in items[0].changes}
    assert changes == {"password": ("(sensitive value)", "(sensitive value)"), "port": (5432, 5433),
                       "settings[0].token": ("(sensitive value)", "(sensitive value)"), "settings[0].size": (1, 2)}
    report = _report(EnvReport("prod", items))
    shown = json.dumps(report.to_dict()) + drift_markdown(report)
    for secret in ("s3cret", "tok-before", "tok-after"):
        assert secret not in shown


def test_the_states_marks_stand_in_when_the_change_has_none() -> None:
    doc = json.loads(json.dumps(REFRESH_SENSITIVE))
    del doc["resource_drift"][0]["change"]["before_sensitive"], doc["resource_drift"][0]["change"]["after_sensitive"]
    (item,) = diff.refresh_items("prod", "base", doc)
    assert {c.attribute: c.after for c in item.changes}["password"] == "(sensitive value)"
