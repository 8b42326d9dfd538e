"""Pure judgement: recorded plans and live reads in, drift items (each fact once) out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bgtool.aws.live import ListenerWeights
from bgtool.config.schema import Color
from bgtool.drift.model import (
    ACTIVE_COLOR,
    CHANGED,
    DELETED,
    IDLE_WORKERS,
    PARITY,
    PENDING,
    STALE_LOCK,
    UNMANAGED,
    AttributeChange,
    DriftItem,
)
from bgtool.records.lock import LockInfo

# Attributes that only echo others (tags_all repeats tags plus provider default tags).
_ECHOES = {"tags_all": "tags"}
PRODUCTION_LISTENER = re.compile(r"(^|\.)aws_lb_listener\.production(\[.*\])?$")


def apply_cmd(env: str, *layers: str) -> str:
    return f"bgtool apply {env}" + "".join(f" --layer {layer}" for layer in layers)


def action_word(actions: Iterable[str]) -> str:
    acts = list(actions)
    if "create" in acts and "delete" in acts:
        return "replace"
    return acts[0] if acts else "no-op"


_EMPTY: tuple[Any, ...] = (None, [], {}, "")


SENSITIVE = "(sensitive value)"
"""What the report shows instead of a value Terraform marks sensitive (Terraform's own words)."""


def attribute_changes(before: Any, after: Any, path: str = "",
                      sensitive: tuple[Any, Any] = (None, None)) -> list[AttributeChange]:
    """Leaf-level differences, with dotted paths (`default_action[0].forward[0].target_group`).

    null, [], {} and "" are one value: providers fill unset attributes in on refresh, which is
    bookkeeping, not a change anybody made. SENSITIVE is the plan's (`before_sensitive`,
    `after_sensitive`) for these values: a value marked there is compared, but never shown.
    """
    if before == after or (before in _EMPTY and after in _EMPTY):
        return []
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out: list[AttributeChange] = []
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else str(key)
            out += attribute_changes(before.get(key), after.get(key), sub, _inside(sensitive, key))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += attribute_changes(b, a, f"{path}[{i}]", _inside(sensitive, i))
        return out
    return [AttributeChange(path or "(value)", masked(before, sensitive[0]), masked(after, sensitive[1]))]


def sensitive_values(plan_doc: Mapping[str, Any]) -> dict[str, Any]:
    """Resource address → its `sensitive_values` in the plan's prior state (what Terraform marks sensitive)."""
    out: dict[str, Any] = {}

    def walk(module: Mapping[str, Any]) -> None:
        for res in module.get("resources") or []:
            if "address" in res:
                out[res["address"]] = res.get("sensitive_values")
        for child in module.get("child_modules") or []:
            walk(child)

    walk(((plan_doc.get("prior_state") or {}).get("values") or {}).get("root_module") or {})
    return out


def _sensitivity(change: Mapping[str, Any], in_state: Any) -> tuple[Any, Any]:
    """(before, after) sensitivity marks of a change; the state's marks stand in for a missing one, and
    each side also covers the other (a value sensitive before is not shown after either)."""
    before = change.get("before_sensitive", in_state)
    after = change.get("after_sensitive", in_state)
    return _union(before, after), _union(after, before)


def _union(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return {k: _union(a.get(k), b.get(k)) for k in set(a) | set(b)}
    if isinstance(a, list) and isinstance(b, list):
        return [_union(a[i] if i < len(a) else None, b[i] if i < len(b) else None)
                for i in range(max(len(a), len(b)))]
    return a if a not in (None, False) else b


def _inside(sensitive: tuple[Any, Any], key: str | int) -> tuple[Any, Any]:
    return _part(sensitive[0], key), _part(sensitive[1], key)


def _part(marks: Any, key: str | int) -> Any:
    """The sensitivity marks of one member: `true` covers everything below it."""
    if marks is True:
        return True
    if isinstance(marks, Mapping) and isinstance(key, str):
        return marks.get(key)
    if isinstance(marks, list) and isinstance(key, int) and key < len(marks):
        return marks[key]
    return None


def masked(value: Any, marks: Any) -> Any:
    """VALUE with every part MARKS (Terraform's `*_sensitive` structure) calls sensitive replaced."""
    if marks is True:
        return SENSITIVE if value is not None else None
    if isinstance(value, Mapping) and isinstance(marks, Mapping):
        return {k: masked(v, marks.get(k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(marks, list):
        return [masked(v, marks[i] if i < len(marks) else None) for i, v in enumerate(value)]
    return value


def _without_echoes(changes: list[AttributeChange]) -> list[AttributeChange]:
    roots = {c.attribute.split(".")[0].split("[")[0] for c in changes}
    drop = {echo for echo, source in _ECHOES.items() if source in roots}
    return [c for c in changes if c.attribute.split(".")[0].split("[")[0] not in drop] or changes


def configured_attributes(doc: Mapping[str, Any]) -> dict[str, set[str]]:
    """Resource address without instance keys → the attributes its configuration sets."""
    out: dict[str, set[str]] = {}

    def walk(module: Mapping[str, Any], prefix: str) -> None:
        for res in module.get("resources") or []:
            out[prefix + res["address"]] = set(res.get("expressions") or {})
        for name, call in (module.get("module_calls") or {}).items():
            walk(call.get("module") or {}, f"{prefix}module.{name}.")

    walk((doc.get("configuration") or {}).get("root_module") or {}, "")
    return out


def _config_key(address: str) -> str:
    return re.sub(r"\[[^\]]*\]", "", address)


def _root(attribute: str) -> str:
    return attribute.split(".")[0].split("[")[0]


def refresh_items(
    env: str, layer: str, plan_doc: Mapping[str, Any], acting: set[str] | None = None
) -> list[DriftItem]:
    """Changed and deleted resources from a plan's `resource_drift`.

    A normal plan refreshes before it compares, and its document lists what that refresh found
    changed (`update`) or gone (`delete`, after null) beside the planned `resource_changes`; a
    refresh-only plan's document has the same section. A refresh also records computed values
    that other resources changed (a target group's `load_balancer_arns` once a listener uses it,
    a group's `ingress` read back from separate rule resources). Only changes that someone made
    count: those of attributes the configuration sets, or of resources the plan acts on (ACTING:
    Terraform would undo them).
    """
    configured = configured_attributes(plan_doc)
    state_marks = sensitive_values(plan_doc)
    acting = acting or set()
    items: list[DriftItem] = []
    for rd in plan_doc.get("resource_drift") or []:
        if rd.get("mode", "managed") != "managed":
            continue
        change = rd.get("change") or {}
        address, actions = rd["address"], change.get("actions") or []
        if "delete" in actions and change.get("after") is None:
            items.append(DriftItem(
                DELETED, layer, address, f"{address} was deleted outside Terraform",
                f"{apply_cmd(env, layer)} (creates it again)",
            ))
            continue
        marks = _sensitivity(change, state_marks.get(address))
        changes = _without_echoes(attribute_changes(change.get("before"), change.get("after"), sensitive=marks))
        wanted = configured.get(_config_key(address))
        if wanted is not None and address not in acting:
            changes = [c for c in changes if _root(c.attribute) in wanted or _ECHOES.get(_root(c.attribute)) in wanted]
        if not changes:
            continue
        shown = ", ".join(c.attribute for c in changes[:4]) + (" ..." if len(changes) > 4 else "")
        items.append(DriftItem(
            CHANGED, layer, address, f"{address} was changed outside Terraform ({shown})",
            f"{apply_cmd(env, layer)} (restores the configuration), or change the configuration to keep it",
            changes,
        ))
    return items


def pending_items(env: str, layer: str, plan_doc: Mapping[str, Any], reported: set[str]) -> list[DriftItem]:
    """Configuration not yet applied, from a normal plan's `resource_changes`.

    An address already reported as changed or deleted outside Terraform is skipped: the plan
    shows it only because applying would undo that drift (or create the deleted object again),
    which is the same fact.
    """
    items: list[DriftItem] = []
    for rc in plan_doc.get("resource_changes") or []:
        actions = (rc.get("change") or {}).get("actions") or []
        if rc.get("mode", "managed") != "managed" or actions in (["no-op"], ["read"], []):
            continue
        address = rc["address"]
        if address in reported:
            continue
        word = action_word(actions)
        items.append(DriftItem(
            PENDING, layer, address, f"{address}: {word} pending (in the repo, not yet applied)",
            apply_cmd(env, layer), details={"action": word},
        ))
    return items


def terraform_items(env: str, layer: str, plan_doc: Mapping[str, Any]) -> list[DriftItem]:
    """Every Terraform finding of one layer from its one normal plan: drift first, then what is pending."""
    acting = {rc["address"] for rc in plan_doc.get("resource_changes") or []
              if ((rc.get("change") or {}).get("actions") or ["no-op"]) not in (["no-op"], ["read"])}
    drifted = refresh_items(env, layer, plan_doc, acting)
    return drifted + pending_items(env, layer, plan_doc, {i.subject for i in drifted})


def file_weights(active: Color) -> dict[str, int]:
    return {c.value: (100 if c is active else 0) for c in Color}


def _weights_text(weights: Mapping[str, int]) -> str:
    return " / ".join(f"{c} {weights.get(c, 0)}" for c in sorted(weights))


def active_color_item(env: str, active: Color, listener: ListenerWeights | None) -> DriftItem | None:
    """The file's active_color against the weights the production listener forwards with now."""
    if listener is None or not listener.weights:
        return None
    wanted = file_weights(active)
    if dict(listener.weights) == wanted:
        return None
    live = listener.live_color
    subject = f"production listener :{listener.port} ({listener.arn})"
    summary = (f"production listener :{listener.port} forwards {_weights_text(listener.weights)} live, "
               f"but environments/{env}.yaml says active_color: {active.value} ({_weights_text(wanted)})")
    if live and live != active.value:
        reconcile = (f"{apply_cmd(env)} (guarded switch back to {active.value}), or set "
                     f"active_color: {live} in environments/{env}.yaml if the live weights are right")
    else:
        reconcile = f"{apply_cmd(env, 'traffic')} (restores {_weights_text(wanted)})"
    changes = [AttributeChange(f"weights.{c}", wanted.get(c), listener.weights.get(c)) for c in sorted(wanted)]
    details = {"port": listener.port, "listener_arn": listener.arn, "file_active_color": active.value,
               "file_weights": wanted, "live_weights": dict(listener.weights), "live_color": live}
    return DriftItem(ACTIVE_COLOR, "traffic", subject, summary, reconcile,
                     [c for c in changes if c.before != c.after], details)


def fold_listener_drift(items: list[DriftItem]) -> list[DriftItem]:
    """Report a moved production listener once: as the active-color finding, with Terraform's view inside."""
    active = next((i for i in items if i.kind == ACTIVE_COLOR), None)
    if active is None:
        return items
    out: list[DriftItem] = []
    for item in items:
        if item.kind == CHANGED and item.layer == "traffic" and PRODUCTION_LISTENER.search(item.subject):
            active.details.setdefault("terraform_drift", []).append(
                {"address": item.subject, "changes": [c.to_dict() for c in item.changes]})
            continue
        out.append(item)
    return out


def lock_item(
    env: str, lock: LockInfo | None, stale_after_minutes: int, at: datetime | None = None
) -> DriftItem | None:
    if lock is None:
        return None
    age = lock.age_seconds(at)  # unknown for a lock whose content cannot be read: reported
    if age is not None and age < stale_after_minutes * 60:
        return None
    held = "an unknown time" if age is None else f"{age / 60:.0f} min"
    return DriftItem(
        STALE_LOCK, None, "operation lock",
        f"operation lock held for {held} (stale after {stale_after_minutes}): {lock.describe()}",
        f"bgtool status {env} (is the operation still running?), then bgtool unlock {env}",
        details={"owner": lock.owner, "operation": lock.operation, "since": lock.since, "host": lock.host,
                 "pid": lock.pid, "age_seconds": None if age is None else round(age)},
    )


def normalize_color(value: Any, color: str, versions: Iterable[str]) -> Any:
    """Replace one color's own words and its version strings by placeholders, recursively.

    Both color words are mapped (own → <color>, other → <other>), so a green layer naming blue
    where the blue layer names green still compares equal.
    """
    other = Color(color).other.value
    slugs = sorted({v for ver in versions if ver for v in (ver, re.sub(r"[^A-Za-z0-9().\-/_]", "-", ver))},
                   key=len, reverse=True)

    def fix(text: str) -> str:
        for ver in slugs:
            text = text.replace(ver, "<version>")
        text = re.sub(rf"(?<![A-Za-z0-9]){color}(?![A-Za-z0-9])", "<color>", text)
        return re.sub(rf"(?<![A-Za-z0-9]){other}(?![A-Za-z0-9])", "<other>", text)

    if isinstance(value, str):
        return fix(value)
    if isinstance(value, Mapping):
        return {fix(str(k)): normalize_color(v, color, versions) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, Mapping) and set(v) == {"Key", "Value"} for v in value):
        return {fix(str(v["Key"])): normalize_color(v["Value"], color, versions) for v in value}  # tags: order-free
    if isinstance(value, list):
        return [normalize_color(v, color, versions) for v in value]
    return value


def live_parity_items(env: str, blue: Mapping[str, Any], green: Mapping[str, Any],
                      what: str = "launch template and Auto Scaling group") -> list[DriftItem]:
    """Differences between the normalized live snapshots of blue and green (before = blue, after = green).

    WHAT names the settings compared, as the compute kind runs a color (`ColorCompute.settings_label`)."""
    changes = attribute_changes(dict(blue), dict(green))
    if not changes:
        return []
    shown = ", ".join(c.attribute for c in changes[:4]) + (" ..." if len(changes) > 4 else "")
    return [DriftItem(
        PARITY, None, f"live blue vs green {what}",
        f"live blue and green differ beyond color, version and size: {shown}",
        f"{apply_cmd(env, 'blue', 'green')} (both colors again from the one template)", changes,
    )]


def rendered_parity_items(env: str, differences: Mapping[str, list[str]], where: str) -> list[DriftItem]:
    """Differences between the blue and green layer files, as found by bgtool.parity."""
    if not differences:
        return []
    files = ", ".join(sorted(differences))
    return [DriftItem(
        PARITY, "green", f"{where} blue vs green layers",
        f"{where} blue and green layers differ beyond color and per-color values in {files}",
        f"bgtool render {env} (regenerates build/{env}/; fix the template if the render itself differs)",
        details={"files": {k: v[:20] for k, v in differences.items()}, "where": where},
    )]


def unmanaged_rule_items(env: str, group: str, rules: list[dict[str, Any]]) -> list[DriftItem]:
    return [DriftItem(
        UNMANAGED, "base", f"security group {group} rule {r.get('SecurityGroupRuleId', '?')}",
        f"security group {group} has an ingress rule Terraform does not manage: {_rule_text(r)}",
        f"remove it (aws ec2 revoke-security-group-ingress --group-id {r.get('GroupId', '?')} "
        f"--security-group-rule-ids {r.get('SecurityGroupRuleId', '?')}), or add it to the "
        f"configuration and {apply_cmd(env, 'base')}",
        details={"rule": r},
    ) for r in rules]


def _rule_text(rule: Mapping[str, Any]) -> str:
    source = rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("ReferencedGroupInfo", {}).get("GroupId", "?")
    ports = f"{rule.get('FromPort')}-{rule.get('ToPort')}" if rule.get("FromPort") != rule.get("ToPort") \
        else str(rule.get("FromPort"))
    return f"{rule.get('IpProtocol')} port {ports} from {source}"


_SG = re.compile(r"(^|\.)aws_security_group\.[A-Za-z0-9_-]+(\[.*\])?$")


def fold_security_group_drift(items: list[DriftItem]) -> list[DriftItem]:
    """An out-of-band rule also shows as the group's computed `ingress`/`egress` changing.

    Applying does not remove such a rule (the rules are separate resources), so when the unmanaged
    rule check found it, the group's own refresh drift is that same fact: keep only the rule item.
    """
    if not any(i.kind == UNMANAGED for i in items):
        return items

    def rules_only(item: DriftItem) -> bool:
        return (item.kind == CHANGED and bool(_SG.search(item.subject)) and bool(item.changes)
                and all(c.attribute.split("[")[0].split(".")[0] in ("ingress", "egress") for c in item.changes))

    return [i for i in items if not rules_only(i)]


def state_ids(doc: Mapping[str, Any]) -> set[str]:
    """Every resource `id` Terraform manages, from a plan document's state or a pulled state.

    A plan document (`show -json`) nests resources under `prior_state`/`planned_values`; the
    state itself (`terraform state pull`) lists `resources[].instances[].attributes`.
    """
    ids: set[str] = set()
    for res in doc.get("resources") or []:
        for instance in res.get("instances") or []:
            value = (instance.get("attributes") or {}).get("id")
            if isinstance(value, str):
                ids.add(value)

    def walk(module: Mapping[str, Any]) -> None:
        for res in module.get("resources") or []:
            value = (res.get("values") or {}).get("id")
            if isinstance(value, str):
                ids.add(value)
        for child in module.get("child_modules") or []:
            walk(child)

    for key in ("prior_state", "planned_values"):
        section = doc.get(key) or {}
        root = section.get("values", {}).get("root_module") if key == "prior_state" else section.get("root_module")
        walk(root or {})
    return ids


def idle_workers_item(env: str, idle: Color, running: int) -> DriftItem | None:
    """Workers of the idle color consume the queue with a version production no longer serves."""
    if running <= 0:
        return None
    return DriftItem(
        IDLE_WORKERS, idle.value, f"{idle.value} workers",
        f"{running} worker{'s' if running != 1 else ''} of the idle color {idle.value} running: only the live "
        "color's workers should consume the queue",
        f"bgtool apply {env} --layer {idle.value}",
        details={"color": idle.value, "running": running},
    )
