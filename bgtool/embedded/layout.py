"""From what the embedded AWS holds to what HAProxy should do: pure decisions, no I/O.

HAProxy's shape (frontends, backends, server slots, health-check settings) changes only when
listeners or target groups are created, deleted or reconfigured, and needs a seamless reload.
Everything that changes during a release (weights, registrations, which process a slot points
at) is a runtime value that the controller applies through the admin socket, without a reload:

* one backend per target group (`tg.*`) runs the health checks, one server slot per target, like
  the target group's own health checks on AWS;
* one backend per forwarding listener (`lb.*`) carries the traffic; its servers' weights spread each
  group's listener weight over the group's healthy targets (the controller follows the slots'
  health every tick), so the share per group is the listener's. A group whose targets are all
  unhealthy fails open as an ALB's does: its share goes to all of its targets rather than nowhere
  (which is why the servers do not `track` the slots: a tracking server is down with its slot).

Slots are pre-declared (a few more than the targets) so that registrations only re-point a slot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bgtool.embedded.model import (
    FixedResponse,
    Forward,
    HealthCheck,
    Listener,
    Redirect,
    Snapshot,
    TargetGroup,
    WeightedRecord,
)

MAX_WEIGHT = 256
MIN_SLOTS = 4
PLACEHOLDER_PORT = 1
"""Address of an unused slot: in maintenance, never checked nor sent traffic."""


@dataclass(frozen=True)
class TgBackend:
    name: str
    tg_arn: str
    tg_name: str
    health: HealthCheck
    slots: int


@dataclass(frozen=True)
class ListenerBackend:
    name: str
    stickiness_seconds: int
    groups: tuple[tuple[str, int], ...]
    """(target group backend name, slot count) in the listener's order."""


@dataclass(frozen=True)
class Frontend:
    name: str
    listener_key: str
    local_port: int
    backend: str | None = None
    redirect: str | None = None
    """`http-request redirect` arguments, for a redirect listener."""
    fixed: FixedResponse | None = None
    tcp: bool = False
    """A weighted DNS name: balanced per connection, as resolvers spread clients."""


@dataclass(frozen=True)
class DnsBackend:
    """The load balancers a weighted DNS name answers with, on one port: one server per record."""

    name: str
    servers: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    frontends: tuple[Frontend, ...] = ()
    tg_backends: tuple[TgBackend, ...] = ()
    listener_backends: tuple[ListenerBackend, ...] = ()
    dns_backends: tuple[DnsBackend, ...] = ()


@dataclass(frozen=True)
class ServerState:
    port: int
    weight: int = 0
    ready: bool = False
    """Target group slots only: out of maintenance (a live process answers on `port`)."""
    address: str = "127.0.0.1"
    """An ECS task's own loopback address; an instance's process listens on 127.0.0.1."""


@dataclass(frozen=True)
class ProcessView:
    """What the supervisor says about an instance's process."""

    port: int
    ready: bool
    draining: bool = False
    address: str = "127.0.0.1"


@dataclass(frozen=True)
class SlotOwner:
    """Who a listener backend's server slot stands for: what metrics are published under."""

    listener: Listener
    tg_arn: str
    tg_arn_suffix: str
    instance_id: str


@dataclass
class Plan:
    layout: Layout
    servers: dict[str, ServerState] = field(default_factory=dict)
    """"backend/server" -> desired runtime state."""
    slots: dict[str, dict[str, int]] = field(default_factory=dict)
    """Target group arn -> instance id -> slot index (kept stable from tick to tick)."""
    owners: dict[str, SlotOwner] = field(default_factory=dict)
    tg_slot_of: dict[tuple[str, str], str] = field(default_factory=dict)
    """(target group arn, instance id) -> "tg-backend/server" that health-checks it."""
    problems: list[str] = field(default_factory=list)
    """What was left out of the configuration because AWS could not have held it (`admitted`)."""


def ident(text: str) -> str:
    """HAProxy proxy and server names allow letters, digits and `-_.:` only."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def tg_backend_name(tg_name: str, tg_arn: str) -> str:
    return f"tg.{ident(tg_name)}.{_short_hash(tg_arn)}"


def listener_names(listener: Listener) -> tuple[str, str]:
    """(frontend, backend) names of a listener."""
    base = f"{ident(listener.lb_name)}.{_short_hash(listener.lb_arn)}.{listener.port}"
    return f"fe.{base}", f"lb.{base}"


def listener_server(tg_backend: str, index: int) -> str:
    return f"{tg_backend.split('.', 1)[1]}.{index}"


def slot_count(previous: int, highest_index: int) -> int:
    """Grow in powers of two and never shrink, so a deploy that doubles a group needs no reload."""
    needed = max(MIN_SLOTS, previous, highest_index + 1)
    count = MIN_SLOTS
    while count < needed:
        count *= 2
    return count


def assign_slots(previous: Mapping[str, Mapping[str, int]],
                 wanted: Mapping[str, list[str]]) -> dict[str, dict[str, int]]:
    """Keep every instance in the slot it had; newcomers take the lowest free index."""
    out: dict[str, dict[str, int]] = {}
    for tg_arn, instances in wanted.items():
        before = previous.get(tg_arn, {})
        kept = {i: before[i] for i in instances if i in before}
        used = set(kept.values())
        for instance in instances:
            if instance in kept:
                continue
            index = 0
            while index in used:
                index += 1
            kept[instance] = index
            used.add(index)
        out[tg_arn] = kept
    return out


def spread(groups: list[tuple[int, list[str]]]) -> dict[str, int]:
    """HAProxy weights (0..256) so each group's share of requests equals its share of the weights.

    Every server of a group gets the group's weight divided by the group's server count; the
    largest is scaled to 256. A group with weight but no server gets nothing (its share goes to
    the others, as on an ALB whose target group has no healthy target... and no fail-open).
    """
    live = [(w, servers) for w, servers in groups if w > 0 and servers]
    total = sum(w for w, _ in live)
    out = {s: 0 for _, servers in groups for s in servers}
    if not total:
        return out
    per_server = [(w / total / len(servers), servers) for w, servers in live]
    scale = MAX_WEIGHT / max(share for share, _ in per_server)
    for share, servers in per_server:
        for server in servers:
            out[server] = max(1, min(MAX_WEIGHT, round(share * scale)))
    return out


def plan(
    snap: Snapshot,
    local_ports: Mapping[str, int],
    processes: Mapping[str, ProcessView],
    health_up: Mapping[tuple[str, str], bool],
    previous_slots: Mapping[str, Mapping[str, int]],
    previous_layout: Layout | None = None,
) -> Plan:
    """The whole desired data plane for one snapshot of the embedded AWS."""
    snap, problems = admitted(snap)
    before = {b.tg_arn: b.slots for b in (previous_layout.tg_backends if previous_layout else ())}
    wanted = {
        arn: [t.id for t in group.targets if t.id in processes]
        for arn, group in snap.target_groups.items()
    }
    # An instance that left its group keeps its slot while its process drains.
    for arn, owned in previous_slots.items():
        if arn in wanted:
            wanted[arn] += [i for i in owned if i not in wanted[arn] and i in processes and processes[i].draining]
    slots = assign_slots(previous_slots, wanted)
    result = Plan(layout=Layout(), slots=slots, problems=problems)
    tg_backends = []
    for arn, group in snap.target_groups.items():
        name = tg_backend_name(group.name, arn)
        count = slot_count(before.get(arn, 0), max(slots[arn].values(), default=-1))
        tg_backends.append(TgBackend(name, arn, group.name, group.health, count))
        _tg_servers(result, name, arn, count, slots[arn], processes)
    frontends, listener_backends = [], []
    by_arn = {b.tg_arn: b for b in tg_backends}
    for listener in snap.listeners:
        fe_name, be_name = listener_names(listener)
        local_port = local_ports.get(listener.key)
        if local_port is None:
            continue
        action = listener.action
        if isinstance(action, Forward):
            groups = [(by_arn[arn], w) for arn, w in action.weights if arn in by_arn]
            listener_backends.append(
                ListenerBackend(be_name, action.stickiness_seconds, tuple((b.name, b.slots) for b, _ in groups))
            )
            frontends.append(Frontend(fe_name, listener.key, local_port, backend=be_name))
            _listener_servers(result, listener, be_name, groups, snap, processes, health_up)
        elif isinstance(action, Redirect):
            frontends.append(Frontend(fe_name, listener.key, local_port, redirect=redirect_rule(action, listener,
                                                                                                 local_ports)))
        else:
            frontends.append(Frontend(fe_name, listener.key, local_port, fixed=action))
    dns_frontends, dns_backends = _dns_names(result, snap, local_ports)
    result.layout = Layout(tuple(frontends + dns_frontends), tuple(tg_backends), tuple(listener_backends),
                           tuple(dns_backends))
    return result


# --------------------------------------------------------------------------------------------
# What AWS allows: a value the embedded AWS holds is written into haproxy.cfg only when it has the
# characters AWS allows in that field, so no name, host or path can add a line, a comment or an
# argument to the configuration. Anything else is left out, with the reason.
# --------------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9-]{1,32}")  # load balancer and target group names
_ARN = re.compile(r"arn:aws[a-z-]*:elasticloadbalancing:[A-Za-z0-9:/._-]+")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"({_LABEL}\.)*{_LABEL}\.?")
_DNS_NAME = re.compile(rf"(\*\.)?({_LABEL}\.)*{_LABEL}\.?")
_PATH = re.compile(r"/[A-Za-z0-9._~!&()*+,;=:@%/?-]*")  # printable; no space, quote, backslash, `#` or `$`
_MATCHER = re.compile(r"\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*")
_PORT = re.compile(r"#\{port\}|[0-9]{1,5}")


def admitted(snap: Snapshot) -> tuple[Snapshot, list[str]]:
    """SNAP without the target groups, listeners and records holding a value AWS does not allow, and why."""
    problems: list[str] = []
    groups = {}
    for arn, group in snap.target_groups.items():
        why = _target_group_problem(arn, group)
        if why:
            problems.append(f"target group {group.name!r} left out of HAProxy: {why}")
        else:
            groups[arn] = group
    listeners = []
    for listener in snap.listeners:
        why = _listener_problem(listener)
        if why:
            problems.append(f"listener {listener.lb_name!r}:{listener.port} left out of HAProxy: {why}")
        else:
            listeners.append(listener)
    records = []
    for record in snap.records:
        if _DNS_NAME.fullmatch(record.name) and _DNS_NAME.fullmatch(record.target):
            records.append(record)
        else:
            problems.append(f"DNS record {record.name!r} ({record.set_identifier!r}) left out of HAProxy: its name "
                            "or target is not a DNS name")
    return replace(snap, target_groups=groups, listeners=tuple(listeners), records=tuple(records)), problems


def _target_group_problem(arn: str, group: TargetGroup) -> str | None:
    if not _NAME.fullmatch(group.name):
        return "its name is not 1-32 letters, digits and '-'"
    if not _ARN.fullmatch(arn):
        return "its ARN is not an elasticloadbalancing ARN"
    if not _PATH.fullmatch(group.health.path):
        return (f"health check path {group.health.path!r} is not a path of printable characters without spaces, "
                "quotes, backslashes or '#'")
    if not _MATCHER.fullmatch(group.health.matcher):
        return f"success codes {group.health.matcher!r} are not like 200, 200,204 or 200-299"
    return None


def _listener_problem(listener: Listener) -> str | None:
    if not _NAME.fullmatch(listener.lb_name):
        return "its load balancer's name is not 1-32 letters, digits and '-'"
    if not _ARN.fullmatch(listener.lb_arn):
        return "its load balancer's ARN is not an elasticloadbalancing ARN"
    action = listener.action
    if isinstance(action, Redirect):
        if action.protocol.upper() not in ("HTTP", "HTTPS", "#{PROTOCOL}"):
            return f"redirect protocol {action.protocol!r} is not HTTP, HTTPS or #{{protocol}}"
        if action.host != "#{host}" and not _HOST.fullmatch(action.host):
            return f"redirect host {action.host!r} is not a host name or #{{host}}"
        if not _PORT.fullmatch(action.port):
            return f"redirect port {action.port!r} is not a port number or #{{port}}"
    return None


# --------------------------------------------------------------------------------------------
# Weighted DNS names (traffic.mode dns): what a resolver would answer, per connection
# --------------------------------------------------------------------------------------------


def dns_key(name: str, port: int) -> str:
    """Port-allocation key of a weighted name on one port (beside the listeners' `LB:PORT`)."""
    return f"dns:{name}:{port}"


def dns_names(snap: Snapshot) -> dict[tuple[str, int], list[tuple[WeightedRecord, Listener]]]:
    """(name, port) -> its records with the listener each one reaches on that port.

    A client resolving NAME connects to the answered load balancer on the port it wants, so NAME is
    served on every port that one of the answered load balancers listens on.
    """
    by_dns: dict[str, list[Listener]] = {}
    for listener in snap.listeners:
        by_dns.setdefault(listener.dns_name.lower().rstrip("."), []).append(listener)
    out: dict[tuple[str, int], list[tuple[WeightedRecord, Listener]]] = {}
    for record in snap.records:
        for listener in by_dns.get(record.target, []):
            out.setdefault((record.name, listener.port), []).append((record, listener))
    return out


def dns_port_keys(snap: Snapshot) -> list[tuple[str, int]]:
    return [(dns_key(name, port), port) for name, port in sorted(dns_names(snap))]


def dns_server(record: WeightedRecord) -> str:
    return f"r.{ident(record.set_identifier)}"


def _dns_names(result: Plan, snap: Snapshot,
               local_ports: Mapping[str, int]) -> tuple[list[Frontend], list[DnsBackend]]:
    frontends, backends = [], []
    for (name, port), answers in sorted(dns_names(snap).items()):
        local_port = local_ports.get(dns_key(name, port))
        if local_port is None:
            continue
        base = f"dns.{ident(name)}.{port}"
        backend = f"lb.{base}"  # "lb." servers get their weights at run time, as the listeners' do
        servers = []
        for record, listener in answers:
            server = dns_server(record)
            target_port = local_ports.get(listener.key, PLACEHOLDER_PORT)
            result.servers[f"{backend}/{server}"] = ServerState(target_port, weight=min(MAX_WEIGHT, record.weight))
            servers.append(server)
        frontends.append(Frontend(f"fe.{base}", dns_key(name, port), local_port, backend=backend, tcp=True))
        backends.append(DnsBackend(backend, tuple(servers)))
    return frontends, backends


def _tg_servers(result: Plan, name: str, arn: str, count: int, slots: Mapping[str, int],
                processes: Mapping[str, ProcessView]) -> None:
    by_index = {index: instance for instance, index in slots.items()}
    for index in range(count):
        instance = by_index.get(index)
        proc = processes.get(instance) if instance else None
        server = f"{name}/s{index}"
        if instance:
            result.tg_slot_of[(arn, instance)] = server
        if proc is None:
            result.servers[server] = ServerState(PLACEHOLDER_PORT)
        else:
            result.servers[server] = ServerState(proc.port, ready=proc.ready, address=proc.address)


def _listener_servers(result: Plan, listener: Listener, backend: str, groups: list[tuple[TgBackend, int]],
                      snap: Snapshot, processes: Mapping[str, ProcessView],
                      health_up: Mapping[tuple[str, str], bool]) -> None:
    weighted: list[tuple[int, list[str]]] = []
    for tg, weight in groups:
        registered = {t.id for t in snap.target_groups[tg.tg_arn].targets}
        slots = result.slots.get(tg.tg_arn, {})
        by_index = {index: instance for instance, index in slots.items()}
        serving, ready = [], []
        for index in range(tg.slots):
            server = f"{backend}/{listener_server(tg.name, index)}"
            instance = by_index.get(index)
            proc = processes.get(instance) if instance else None
            result.servers[server] = (ServerState(proc.port, address=proc.address) if proc
                                      else ServerState(PLACEHOLDER_PORT))
            if instance is None or proc is None:
                continue
            suffix = snap.target_groups[tg.tg_arn].arn_suffix
            result.owners[server] = SlotOwner(listener, tg.tg_arn, suffix, instance)
            if instance in registered and proc.ready and not proc.draining:
                ready.append(server)
                if health_up.get((tg.tg_arn, instance), True):
                    serving.append(server)
        # All targets of a group unhealthy: the ALB fails open and routes to all of them.
        weighted.append((weight, serving or ready))
    for server, weight in spread(weighted).items():
        result.servers[server] = replace(result.servers[server], weight=weight)


def redirect_rule(action: Redirect, listener: Listener, local_ports: Mapping[str, int]) -> str:
    """An ALB redirect as HAProxy's `http-request redirect`; a redirect to a sibling listener stays local."""
    code = action.status if action.status in (301, 302, 303, 307, 308) else 301
    port = listener.port if action.port == "#{port}" else int(action.port) if action.port.isdigit() else None
    sibling = local_ports.get(f"{listener.lb_name}:{port}") if port is not None else None
    same_host = action.host == "#{host}"
    if sibling and same_host:
        # Loopback serves every listener as plain HTTP, whatever the redirect's protocol says.
        return f"prefix http://127.0.0.1:{sibling} code {code}"
    scheme = "%[ssl_fc,iif(https,http)]" if action.protocol == "#{protocol}" else action.protocol.lower()
    host = "%[req.hdr(host),field(1,:)]" if same_host else action.host
    port_text = "" if port is None else f":{port}"
    return f"prefix {scheme}://{host}{port_text} code {code}"


def matcher_regex(matcher: str) -> str:
    """An ALB success-code matcher ("200", "200,204", "200-299") as an `rstatus` regex."""
    codes: list[str] = []
    for part in matcher.split(","):
        part = part.strip()
        if "-" in part:
            low, high = (int(p) for p in part.split("-", 1))
            codes += [str(c) for c in range(low, high + 1)]
        elif part:
            codes.append(str(int(part)))
    return "^(" + "|".join(codes or ["200"]) + ")$"


@dataclass(frozen=True)
class Files:
    admin_socket: str
    state_file: str


def render_config(layout: Layout, servers: Mapping[str, ServerState], files: Files) -> str:
    """The whole haproxy.cfg; the current runtime values are written in, so a reload keeps them."""
    lines = [
        "# Generated by bgtool's local data plane; rewritten on every listener or target group change.",
        "global",
        f"    stats socket {files.admin_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 10s",
        f"    server-state-file {files.state_file}",
        "    hard-stop-after 15s",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-keep-alive 10s",
        # a reload's old worker answers the next request on a kept-alive connection (with Connection:
        # close) instead of closing it idle, which loses a request the client sent meanwhile
        "    option idle-close-on-response",
        "    retries 2",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response",
        "    load-server-state-from-file global",
        "",
    ]
    for fe in layout.frontends:
        lines += _frontend(fe)
    for tg in layout.tg_backends:
        lines += _tg_backend(tg, servers)
    for lb in layout.listener_backends:
        lines += _listener_backend(lb, servers)
    for dns in layout.dns_backends:
        lines += _dns_backend(dns, servers)
    return "\n".join(lines) + "\n"


def _dns_backend(dns: DnsBackend, servers: Mapping[str, ServerState]) -> list[str]:
    lines = [f"backend {dns.name}", "    # a weighted DNS name: one server per record, chosen per connection",
             "    mode tcp", "    balance roundrobin"]
    for server in dns.servers:
        state = servers.get(f"{dns.name}/{server}", ServerState(PLACEHOLDER_PORT))
        lines.append(f"    server {server} 127.0.0.1:{state.port} weight {state.weight}")
    return [*lines, ""]


def _frontend(fe: Frontend) -> list[str]:
    lines = [f"frontend {fe.name}", f"    # listener {fe.listener_key}", f"    bind 127.0.0.1:{fe.local_port}"]
    if fe.tcp:
        lines.append("    mode tcp")
    if fe.backend:
        lines.append(f"    default_backend {fe.backend}")
    elif fe.redirect:
        lines.append(f"    http-request redirect {fe.redirect}")
    elif fe.fixed is not None:
        body = fe.fixed.body.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
        ctype = re.sub(r"[^A-Za-z0-9/.+;= -]", "", fe.fixed.content_type) or "text/plain"
        lines.append(f'    http-request return status {fe.fixed.status} content-type "{ctype}" string "{body}"')
    return [*lines, ""]


def _tg_backend(tg: TgBackend, servers: Mapping[str, ServerState]) -> list[str]:
    h = tg.health
    path = h.path if _PATH.fullmatch(h.path) else "/"  # `admitted` left out any other
    lines = [
        f"backend {tg.name}",
        f"    # target group {tg.tg_name} ({tg.tg_arn}): health checks only, no traffic",
        "    option httpchk",
        f"    http-check send meth GET uri {path} ver HTTP/1.1 hdr Host localhost",
        f"    http-check expect rstatus {matcher_regex(h.matcher)}",
        f"    timeout check {max(1, h.timeout)}s",
        # fastinter: while a target moves between healthy and unhealthy, check every second, so a new
        # target enters service about a second after it answers instead of threshold x interval.
        f"    default-server inter {max(1, h.interval)}s fastinter 1s fall {max(1, h.unhealthy)} "
        f"rise {max(1, h.healthy)}",
    ]
    for index in range(tg.slots):
        state = servers.get(f"{tg.name}/s{index}", ServerState(PLACEHOLDER_PORT))
        disabled = "" if state.ready else " disabled"
        lines.append(f"    server s{index} {state.address}:{state.port} check{disabled}")
    return [*lines, ""]


def _listener_backend(lb: ListenerBackend, servers: Mapping[str, ServerState]) -> list[str]:
    lines = [f"backend {lb.name}", "    balance roundrobin"]
    if lb.stickiness_seconds:
        lines.append(f"    cookie AWSALB insert indirect nocache maxlife {lb.stickiness_seconds}s")
    for tg_name, count in lb.groups:
        for index in range(count):
            server = listener_server(tg_name, index)
            state = servers.get(f"{lb.name}/{server}", ServerState(PLACEHOLDER_PORT))
            cookie = f" cookie {server}" if lb.stickiness_seconds else ""
            lines.append(f"    server {server} {state.address}:{state.port} weight {state.weight}{cookie}")
    return [*lines, ""]


def runtime_commands(before: Mapping[str, ServerState], after: Mapping[str, ServerState]) -> list[str]:
    """Admin-socket commands that turn BEFORE into AFTER: addresses, then weights, then states.

    A new target is pointed at before it leaves maintenance; a leaving one loses its weight in the
    same batch in which it enters maintenance, so no request is sent to a stopped process.
    """
    addr, weight, state = [], [], []
    for server, want in after.items():
        have = before.get(server)
        if have is None or have.port != want.port or have.address != want.address:
            addr.append(f"set server {server} addr {want.address} port {want.port}")
        if server.startswith("lb.") and (have is None or have.weight != want.weight):
            weight.append(f"set server {server} weight {want.weight}")
        if server.startswith("tg.") and (have is None or have.ready != want.ready):
            state.append(f"set server {server} state {'ready' if want.ready else 'maint'}")
    return addr + weight + state
