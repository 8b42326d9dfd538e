"""Moving production traffic: through Terraform (always), or by a direct API call (break glass).

`apply_weights` applies ONLY the traffic layer with the weights as `-var`s, so a switch step
takes the time of one small `terraform apply` whatever the size of the color stacks, and
Terraform state stays the truth. It applies with `-auto-approve` and no separate plan (a plan
file would cost a second provider start-up), and it keeps refresh ON: with `-refresh=false`
Terraform compares the config with its state only, so a listener changed out of band (a
break-glass flip, a console click) would not be corrected, which is exactly what a restore or a
reconcile must do. Refreshing the layer's two or three listeners costs ~50 ms of AWS calls.

`flip_listener` is the break-glass path: one `elbv2.modify_listener` per production listener,
keeping everything else of its forward action (stickiness, target groups); the traffic apply
that follows removes the drift it creates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bgtool.aws.live import ListenerWeights, find_alb, listener_weights, target_group_arns
from bgtool.aws.session import Aws
from bgtool.config.schema import Color, Environment
from bgtool.errors import BgtoolError
from bgtool.render.templates import traffic_vars
from bgtool.terraform.runner import RunResult
from bgtool.terraform.workspace import Workspace
from bgtool.traffic.weights import Weights

# Another run applying the traffic layer briefly holds its state lock (plans that are only shown and
# drift checks take none); a switch step waits for it rather than failing and rolling back for nothing.
STATE_LOCK_TIMEOUT = "60s"


def apply_weights(ws: Workspace, weights: Weights, test_color: Color) -> RunResult:
    """Apply only the traffic layer with these production weights and test listener color."""
    variables = traffic_vars(
        ws.config.active_color, blue_weight=weights.blue, green_weight=weights.green, test_color=test_color
    )
    tf = ws.terraform("traffic")
    return tf.apply(variables=variables, refresh=True, lock_timeout=STATE_LOCK_TIMEOUT)


def production_listeners(aws: Aws, config: Environment) -> list[ListenerWeights]:
    """The forwarding listener(s) on the production port (a TLS redirect listener never forwards)."""
    alb = find_alb(aws, config)
    if alb is None:
        return []
    found = listener_weights(aws, alb["LoadBalancerArn"], target_group_arns(aws, config))
    return [lw for lw in found if lw.port == config.listeners.production_port and lw.weights]


def live_weights(aws: Aws, config: Environment) -> Weights | None:
    """The production weights AWS serves now; None without a (forwarding) production listener."""
    found = production_listeners(aws, config)
    if not found:
        return None
    w = found[0].weights
    try:
        return Weights(int(w.get("blue", 0)), int(w.get("green", 0)))
    except ValueError:
        return None


def test_listener_color(aws: Aws, config: Environment) -> Color | None:
    alb = find_alb(aws, config)
    if alb is None:
        return None
    for lw in listener_weights(aws, alb["LoadBalancerArn"], target_group_arns(aws, config)):
        if lw.port == config.listeners.test_port and lw.live_color:
            return Color(lw.live_color)
    return None


def describe_live(aws: Aws, config: Environment) -> str:
    """A one-line account of the live production weights, for messages after a failure."""
    try:
        found = production_listeners(aws, config)
    except Exception as exc:  # this runs while reporting another failure: never mask it
        return f"could not be read ({exc})"
    if not found:
        return "unknown: no production listener found"
    return "; ".join(f"port {lw.port}: " + ", ".join(f"{c} {w}" for c, w in sorted(lw.weights.items()))
                     for lw in found)


@dataclass(frozen=True)
class Flip:
    color: str
    listener_arns: list[str]
    lookup_seconds: float
    flip_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def flip_listener(aws: Aws, config: Environment, color: Color) -> Flip:
    """Break glass: put 100% of production traffic on COLOR with direct ModifyListener calls.

    `flip_seconds` is the time from the first ModifyListener request to the last answer; the
    lookups before it (load balancer, target groups, listeners) are timed separately.
    """
    started = time.perf_counter()
    elbv2 = aws.client("elbv2")
    alb = find_alb(aws, config)
    tg_arns = target_group_arns(aws, config)
    if alb is None or set(tg_arns) != {"blue", "green"}:
        raise BgtoolError(f"break glass: load balancer {config.name} or its target groups not found")
    listeners = elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]
    targets = [lst for lst in listeners if lst["Port"] == config.listeners.production_port]
    if not targets:
        raise BgtoolError(f"break glass: no listener on production port {config.listeners.production_port}")
    actions = {lst["ListenerArn"]: flipped_actions(lst["DefaultActions"], tg_arns, Color(color)) for lst in targets}
    looked_up = time.perf_counter()
    for arn, new_actions in actions.items():
        elbv2.modify_listener(ListenerArn=arn, DefaultActions=new_actions)
    done = time.perf_counter()
    return Flip(Color(color).value, list(actions), looked_up - started, done - looked_up)


def flipped_actions(actions: list[dict[str, Any]], tg_arns: dict[str, str], color: Color) -> list[dict[str, Any]]:
    """The listener's default actions with the forward weights at 100% on COLOR; the rest kept.

    The forward keeps both target groups (weight 0 for the other color), as Terraform renders
    it, so the reconciling apply changes nothing but what was flipped.
    """
    weights = Weights.all_on(color)
    out: list[dict[str, Any]] = []
    for action in actions:
        if action.get("Type") != "forward":
            out.append(action)
            continue
        forward = dict(action.get("ForwardConfig") or {})
        forward["TargetGroups"] = [{"TargetGroupArn": tg_arns[c.value], "Weight": weights.of(c)} for c in Color]
        new = {k: v for k, v in action.items() if k not in ("TargetGroupArn", "ForwardConfig")}
        new["ForwardConfig"] = forward
        out.append(new)
    return out


class ListenerRouter:
    """Traffic as the weights of the shared load balancer's production listener (modules/traffic)."""

    mode = "listener"

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def live_weights(self) -> Weights | None:
        return live_weights(self.ws.aws, self.ws.config)

    def apply(self, weights: Weights, test_color: Color) -> dict[str, int]:
        s = apply_weights(self.ws, weights, test_color).summary
        return {"add": s.add, "change": s.change, "destroy": s.destroy}

    def flip(self, color: Color) -> Flip:
        return flip_listener(self.ws.aws, self.ws.config, color)

    def test_color(self) -> Color | None:
        """The color the test listener forwards all its traffic to (None: no such listener, or split)."""
        return test_listener_color(self.ws.aws, self.ws.config)

    def describe(self) -> str:
        return describe_live(self.ws.aws, self.ws.config)
