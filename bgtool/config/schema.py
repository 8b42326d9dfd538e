"""The environment file schema and its loader.

`environments/ENV.yaml` is the source of truth for an environment, including which color is live.
It is validated completely before anything is rendered, so a typo can never reach Terraform:
every problem is reported at once with the file, the line, the key path and what is allowed.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bgtool.errors import ConfigError

ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class Color(StrEnum):
    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Color:
        return Color.GREEN if self is Color.BLUE else Color.BLUE


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


Port = Annotated[int, Field(ge=1, le=65535)]
Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"not an IPv4 CIDR block like 10.0.0.0/16 ({exc})") from None


class AwsSettings(Strict):
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    endpoint: Annotated[str | None, Field(pattern=r"^https?://[^/\s]+/?$")] = Field(
        default=None,
        description="Embedded AWS endpoint (a moto server). Unset for a real AWS account.",
    )
    profile: str | None = None


class StateSettings(Strict):
    backend: Literal["s3", "local"] = "s3"
    bucket: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = None
    lock_table: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] = None
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]{1,200}$")] = "bgtool"

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> StateSettings:
        if self.backend == "s3" and (not self.bucket or not self.lock_table):
            raise ValueError("the s3 backend needs both 'bucket' and 'lock_table'")
        return self


class TerraformSettings(Strict):
    provider_mirror: str | None = Field(
        default=None,
        description="Filesystem mirror for provider installation; BGTOOL_PROVIDER_MIRROR overrides.",
    )
    aws_provider_version: str = ">= 5.60, < 6.0"


class Subnet(Strict):
    cidr: str
    az: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")]

    _check_cidr = field_validator("cidr")(_cidr)


class ExistingNetwork(Strict):
    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]], Field(min_length=2)]


class NetworkSettings(Strict):
    vpc_cidr: str | None = None
    public_subnets: list[Subnet] = Field(default_factory=list)
    existing: ExistingNetwork | None = None
    ingress_cidrs: Annotated[list[str], Field(min_length=1)] = ["0.0.0.0/0"]

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc(cls, v: str | None) -> str | None:
        return None if v is None else _cidr(v)

    @field_validator("ingress_cidrs")
    @classmethod
    def _ingress(cls, v: list[str]) -> list[str]:
        return [_cidr(c) for c in v]

    @model_validator(mode="after")
    def _shape(self) -> NetworkSettings:
        if self.existing is not None:
            if self.vpc_cidr or self.public_subnets:
                raise ValueError("give either 'existing' or 'vpc_cidr' + 'public_subnets', not both")
            return self
        if not self.vpc_cidr or len(self.public_subnets) < 2:
            raise ValueError("needs 'vpc_cidr' and at least two 'public_subnets' (or 'existing')")
        _check_subnets(ipaddress.IPv4Network(self.vpc_cidr), self.public_subnets)
        return self


def _check_subnets(vpc: ipaddress.IPv4Network, subnets: list[Subnet]) -> None:
    nets = [ipaddress.IPv4Network(s.cidr) for s in subnets]
    for i, (net, sub) in enumerate(zip(nets, subnets, strict=True)):
        if not net.subnet_of(vpc):
            raise ValueError(f"public_subnets[{i}].cidr {net} is not inside vpc_cidr {vpc}")
        for j in range(i):
            if net.overlaps(nets[j]):
                raise ValueError(f"public_subnets[{i}].cidr {net} overlaps public_subnets[{j}].cidr {nets[j]}")
            if sub.az == subnets[j].az:
                raise ValueError(
                    f"public_subnets[{i}].az {sub.az} is used twice; an ALB needs subnets in distinct AZs"
                )


class ListenerSettings(Strict):
    production_port: Port = 80
    test_port: Port = 8080
    certificate_arn: Annotated[str | None, Field(pattern=r"^arn:aws[a-z-]*:acm:")] = None
    tls_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    http_redirect_port: Port = 80
    stickiness_seconds: Annotated[int, Field(ge=0, le=604800)] = 0

    @model_validator(mode="after")
    def _ports(self) -> ListenerSettings:
        if self.production_port == self.test_port:
            raise ValueError("production_port and test_port must differ")
        if self.certificate_arn and self.http_redirect_port in (self.production_port, self.test_port):
            raise ValueError("http_redirect_port must differ from production_port and test_port")
        return self


class AppSettings(Strict):
    port: Port = 8080
    health_check_path: Annotated[str, Field(pattern=r"^/[\x21-\x7e]*$")] = "/health"
    health_check_matcher: Annotated[str, Field(pattern=r"^[1-5]\d\d(-[1-5]\d\d)?$")] = "200"
    ami_id: Annotated[str, Field(pattern=r"^ami-[0-9a-f]{8,17}$")]
    instance_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")] = "t3.micro"
    user_data_template: str | None = Field(
        default=None, description="Path (relative to the project) of a Jinja2 user-data template."
    )


class ColorSettings(Strict):
    version: Version
    desired: Annotated[int, Field(ge=0, le=1000)] = 2
    min_size: Annotated[int, Field(ge=0, le=1000)] = 0
    max_size: Annotated[int, Field(ge=1, le=1000)] = 10
    retired: bool = False

    @model_validator(mode="after")
    def _sizes(self) -> ColorSettings:
        if not self.min_size <= self.desired <= self.max_size:
            raise ValueError(
                f"needs min_size <= desired <= max_size (got {self.min_size}, {self.desired}, {self.max_size})"
            )
        return self


class Colors(Strict):
    blue: ColorSettings
    green: ColorSettings

    def of(self, color: Color) -> ColorSettings:
        return self.blue if color is Color.BLUE else self.green


class AlarmSettings(Strict):
    target_5xx_count: Annotated[int, Field(ge=1)] = 10
    response_time_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    unhealthy_hosts: Annotated[int, Field(ge=0)] = 0
    period_seconds: Literal[10, 30, 60, 120, 300, 600, 900, 3600] = 60
    evaluation_periods: Annotated[int, Field(ge=1, le=100)] = 2


class TrafficSettings(Strict):
    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=1)] = [10, 50, 100]
    bake_seconds: Annotated[int, Field(ge=0, le=86400)] = 300
    monitor_seconds: Annotated[int, Field(ge=0, le=86400)] = 300
    poll_seconds: Annotated[float, Field(gt=0, le=600)] = 10

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError(f"steps must be strictly increasing percentages, got {v}")
        if v[-1] != 100:
            raise ValueError(f"the last step must be 100 (all traffic on the new color), got {v}")
        return v


class SmokeCheck(Strict):
    path: Annotated[str, Field(pattern=r"^/[\x21-\x7e]*$")] = "/"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    expect_body: str | None = None
    expect_version: bool = False
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 5


class HostChecks(Strict):
    module: str
    connection: Literal["ssh", "local"] = "ssh"
    ssh_user: str = "ec2-user"
    ssh_key: str | None = None


class GateSettings(Strict):
    min_healthy: Annotated[int, Field(ge=0)] = 1
    smoke: list[SmokeCheck] = Field(default_factory=list)
    host_checks: HostChecks | None = None
    wait_seconds: Annotated[int, Field(ge=0, le=7200)] = 600


class LockSettings(Strict):
    stale_after_minutes: Annotated[int, Field(ge=1)] = 120


class Environment(Strict):
    """One validated environment file."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")] = Field(
        description="Resource name prefix; short, because ALB and target group names are <= 32 chars."
    )
    active_color: Color
    aws: AwsSettings
    state: StateSettings
    terraform: TerraformSettings = TerraformSettings()
    network: NetworkSettings
    listeners: ListenerSettings = ListenerSettings()
    app: AppSettings
    colors: Colors
    alarms: AlarmSettings = AlarmSettings()
    traffic: TrafficSettings = TrafficSettings()
    gate: GateSettings = GateSettings()
    retention_hours: Annotated[float, Field(ge=0, le=24 * 365)] = 24
    lock: LockSettings = LockSettings()
    tags: dict[Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict
    )

    @property
    def idle_color(self) -> Color:
        return self.active_color.other

    @property
    def embedded(self) -> bool:
        return self.aws.endpoint is not None


class LoadedEnvironment(BaseModel):
    """A validated environment together with where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    env: str
    path: Path
    config: Environment


def environment_path(root: Path, env: str) -> Path:
    if not ENV_NAME.match(env):
        raise ConfigError(
            f"environments/{env}.yaml",
            [f"environment name {env!r} is not allowed: use lower-case letters, digits and '-'"],
        )
    return root / "environments" / f"{env}.yaml"


def load_environment(root: Path, env: str, *, endpoint_override: str | None = None) -> LoadedEnvironment:
    """Load and validate ENV; raises ConfigError listing every problem with its line."""
    path = environment_path(root, env)
    shown = _shown(root, path)
    raw = _read_yaml(path, shown)
    if not isinstance(raw, dict):
        raise ConfigError(shown, ["top level: expected a mapping of keys (active_color, colors, ...)"])
    data = _plain(raw)
    if endpoint_override and isinstance(data.get("aws"), dict) and data["aws"].get("endpoint"):
        data["aws"]["endpoint"] = endpoint_override
    try:
        config = Environment.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(shown, [_describe(err, raw) for err in exc.errors()]) from None
    return LoadedEnvironment(env=env, path=path, config=config)


def list_environments(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "environments").glob("*.yaml") if ENV_NAME.match(p.stem))


def _shown(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _read_yaml(path: Path, shown: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, ["file not found; create it or pick one of environments/*.yaml"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(shown, [f"cannot read the file: {exc}"]) from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(shown, [f"{where}YAML syntax error: {exc.problem or exc.context}"]) from None
    except YAMLError as exc:
        raise ConfigError(shown, [f"YAML error: {exc}"]) from None


def _plain(node: Any) -> Any:
    """Round-trip YAML nodes to plain Python so pydantic sees ordinary types."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if node is None or isinstance(node, bool):
        return node
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return str(node)


def _describe(err: Any, raw: Any) -> str:
    loc = [part for part in err["loc"] if not isinstance(part, str) or not part.startswith("function-")]
    path = _key_path(loc)
    line = _line_of(raw, loc)
    where = f"line {line}: " if line else ""
    return f"{where}{path or 'top level'}: {_allowed(err)}"


def _key_path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(raw: Any, loc: list[Any]) -> int | None:
    node, line = raw, None
    for part in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, dict) and part in node:
                line = lc.key(part)[0] + 1 if lc else line
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                line = lc.item(part)[0] + 1 if lc else line
                node = node[part]
            else:
                break
        except (KeyError, TypeError, AttributeError):
            break
    return line


def _allowed(err: Any) -> str:
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key; check the spelling against the documented keys in README.md"
    if kind == "missing":
        return "required key is missing"
    if kind == "enum":
        return f"got {err['input']!r}; allowed: {ctx.get('expected')}"
    if kind == "literal_error":
        return f"got {err['input']!r}; allowed: {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"got {err['input']!r}; must match {ctx.get('pattern')}"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return f"got {err['input']!r}; {msg.lower()}"
    if kind == "value_error":
        return str(ctx.get("error", msg))
    return f"{msg.lower()} (got {err.get('input')!r})"
