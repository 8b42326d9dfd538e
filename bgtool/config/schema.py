"""The environment file schema and its loader.

`environments/ENV.yaml` is the source of truth for an environment, including which color is live.
It is validated completely before anything is rendered, so a typo can never reach Terraform:
every problem is reported at once with the file, the line, the key path and what is allowed.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bgtool.errors import ConfigError, UsageError

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
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
"""An application version: also rendered into the color layer's Terraform validation."""
Version = Annotated[str, Field(pattern=VERSION_PATTERN)]


def check_version(value: str, where: str) -> str:
    """VALUE when it is a version the environment file could hold; refused otherwise, so a version
    given on the command line never reaches a lock, a history record or the file unchecked."""
    if not re.fullmatch(VERSION_PATTERN, value):
        raise UsageError(f"{where}: {value!r} is not a version: allowed are 1 to 64 letters, digits, '.', '_', "
                         f"'+' and '-', starting with a letter or digit (pattern {VERSION_PATTERN}); "
                         "nothing was changed", hint="Give the version as the environment file would write it, "
                         "e.g. 1.4.2 or 2026.12.07-abc123.")
    return value


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


SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]

VPC_ENDPOINTS: tuple[str, ...] = (
    "s3", "dynamodb", "ssm", "ssmmessages", "ec2messages", "logs", "monitoring", "ecr.api", "ecr.dkr", "sts",
)
"""Services the network module can reach privately (s3 and dynamodb as gateway endpoints)."""


class ExistingNetwork(Strict):
    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    subnet_ids: Annotated[list[SubnetId], Field(min_length=2)]
    instance_subnet_ids: Annotated[list[SubnetId] | None, Field(min_length=1)] = Field(
        default=None, description="Private subnets for the instances; the load balancer's subnet_ids when unset."
    )


class NetworkSettings(Strict):
    vpc_cidr: str | None = None
    public_subnets: list[Subnet] = Field(default_factory=list)
    private_subnets: list[Subnet] = Field(
        default_factory=list, description="Subnets for the instances (no public addresses); none: the public ones."
    )
    nat_gateway: Literal["single", "per_az", "none"] = "single"
    vpc_endpoints: list[Literal[VPC_ENDPOINTS]] = Field(default_factory=list)  # type: ignore[valid-type]
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
            if self.vpc_cidr or self.public_subnets or self.private_subnets or self.vpc_endpoints:
                raise ValueError(
                    "give either 'existing' or 'vpc_cidr' + 'public_subnets' (+ 'private_subnets', 'vpc_endpoints'),"
                    " not both"
                )
            return self
        if not self.vpc_cidr or len(self.public_subnets) < 2:
            raise ValueError("needs 'vpc_cidr' and at least two 'public_subnets' (or 'existing')")
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        _check_subnets(vpc, [("public_subnets", i, s) for i, s in enumerate(self.public_subnets)])
        _check_subnets(vpc, [("private_subnets", i, s) for i, s in enumerate(self.private_subnets)])
        _check_disjoint(self.public_subnets, self.private_subnets)
        if self.vpc_endpoints and not self.private_subnets:
            raise ValueError("'vpc_endpoints' serve the private subnets: give 'private_subnets' too")
        public_azs = {s.az for s in self.public_subnets}
        missing = [s.az for s in self.private_subnets if s.az not in public_azs]
        if self.private_subnets and self.nat_gateway == "per_az" and missing:
            raise ValueError(f"nat_gateway per_az needs a public subnet in each private subnet's AZ; missing {missing}")
        return self

    @property
    def instance_subnets_private(self) -> bool:
        """Whether the instances run in private subnets (no public addresses, no route from the internet)."""
        if self.existing is not None:
            return self.existing.instance_subnet_ids is not None
        return bool(self.private_subnets)


def _check_subnets(vpc: ipaddress.IPv4Network, subnets: list[tuple[str, int, Subnet]]) -> None:
    nets = [ipaddress.IPv4Network(s.cidr) for _, _, s in subnets]
    for i, (net, (key, n, sub)) in enumerate(zip(nets, subnets, strict=True)):
        if not net.subnet_of(vpc):
            raise ValueError(f"{key}[{n}].cidr {net} is not inside vpc_cidr {vpc}")
        for j in range(i):
            if net.overlaps(nets[j]):
                raise ValueError(f"{key}[{n}].cidr {net} overlaps {key}[{j}].cidr {nets[j]}")
            if sub.az == subnets[j][2].az:
                raise ValueError(f"{key}[{n}].az {sub.az} is used twice; give each subnet a distinct AZ")


def _check_disjoint(public: list[Subnet], private: list[Subnet]) -> None:
    for i, pub in enumerate(public):
        for j, priv in enumerate(private):
            if ipaddress.IPv4Network(pub.cidr).overlaps(ipaddress.IPv4Network(priv.cidr)):
                raise ValueError(f"private_subnets[{j}].cidr {priv.cidr} overlaps public_subnets[{i}].cidr {pub.cidr}")


TLS_POLICIES: tuple[str, ...] = (
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
)
"""Predefined load balancer policies that allow TLS 1.2 or newer only (modules/traffic checks the same list)."""


class ListenerSettings(Strict):
    production_port: Port = 80
    test_port: Port = 8080
    test_ingress_cidrs: Annotated[list[str] | None, Field(min_length=1)] = Field(
        default=None, description="Who may reach the test listener (the unreleased color); default: the VPC CIDR."
    )
    certificate_arn: Annotated[str | None, Field(pattern=r"^arn:aws[a-z-]*:acm:")] = None
    tls_policy: Literal[TLS_POLICIES] = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # type: ignore[valid-type]
    http_redirect_port: Port = 80
    stickiness_seconds: Annotated[int, Field(ge=0, le=604800)] = 0

    @field_validator("test_ingress_cidrs")
    @classmethod
    def _test_ingress(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_cidr(c) for c in v]

    @model_validator(mode="after")
    def _ports(self) -> ListenerSettings:
        if self.production_port == self.test_port:
            raise ValueError("production_port and test_port must differ")
        if self.certificate_arn and self.http_redirect_port in (self.production_port, self.test_port):
            raise ValueError("http_redirect_port must differ from production_port and test_port")
        return self


class AlbSettings(Strict):
    deletion_protection: bool | None = Field(
        default=None, description="AWS refuses to delete the load balancer; default: on, off for the embedded AWS."
    )
    drop_invalid_header_fields: bool = True
    access_logs: bool = False
    access_logs_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90


class RootVolume(Strict):
    device_name: Annotated[str, Field(pattern=r"^/dev/[a-z0-9]+$")] = "/dev/xvda"
    size_gb: Annotated[int, Field(ge=1, le=16384)] = 8
    type: Literal["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"] = "gp3"
    kms_key_id: Annotated[str | None, Field(pattern=r"^arn:aws[a-z-]*:kms:")] = None


COMPUTE_KINDS: tuple[str, ...] = ("autoscaling", "ecs")
"""What can run a color (`app.compute`); bgtool.compute says which of them it can operate so far."""

EC2_APP_KEYS: tuple[str, ...] = ("ami_id", "instance_type", "user_data_template", "imds_hop_limit", "root_volume")
"""Keys of `app` that describe EC2 instances: required (ami_id) or allowed with compute autoscaling only."""


class AppSettings(Strict):
    """The application: what it listens on and what runs it. `compute` comes first: the EC2 keys
    after it are checked against it (a field validator sees the fields declared before it)."""

    compute: Literal[COMPUTE_KINDS] = Field(  # type: ignore[valid-type]
        default="autoscaling",
        description="What runs a color: a launch template + Auto Scaling group (autoscaling), or an ECS "
        "service on Fargate (ecs, configured in the 'ecs' section).",
    )
    port: Port = Field(default=8080, description="The port the application listens on (the container's with ecs).")
    health_check_path: Annotated[str, Field(pattern=r"^/[\x21-\x7e]*$")] = "/health"
    health_check_matcher: Annotated[str, Field(pattern=r"^[1-5]\d\d(-[1-5]\d\d)?$")] = "200"
    ami_id: Annotated[str | None, Field(pattern=r"^ami-[0-9a-f]{8,17}$")] = Field(
        default=None, validate_default=True, description="The instances' image; required with compute autoscaling."
    )
    instance_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")] = "t3.micro"
    user_data_template: str | None = Field(
        default=None, description="Path (relative to the project) of a Jinja2 user-data template."
    )
    imds_hop_limit: Annotated[int, Field(ge=1, le=64)] = 1
    root_volume: RootVolume = RootVolume()
    egress_ports: list[Port] = [443]
    egress_cidrs: list[str] = ["0.0.0.0/0"]

    @field_validator(*EC2_APP_KEYS)
    @classmethod
    def _ec2_keys(cls, v: Any, info: ValidationInfo) -> Any:
        """Runs for keys the file gives (and for ami_id always): a key ecs would ignore is refused, not
        silently dropped, so the file never says more than what is deployed."""
        compute = info.data.get("compute")
        if compute == "ecs" and v is not None:
            raise ValueError(f"compute ecs runs no EC2 instances: remove app.{info.field_name} "
                             "(allowed with compute autoscaling only)")
        if compute == "autoscaling" and v is None and info.field_name == "ami_id":
            raise ValueError("required with compute autoscaling (the instances' image, ami-...)")
        return v

    @field_validator("egress_cidrs")
    @classmethod
    def _egress(cls, v: list[str]) -> list[str]:
        return [_cidr(c) for c in v]


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


FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
"""Fargate's task sizes: CPU units -> the memory (MiB) each allows (modules/ecs-service checks the same)."""

LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
"""The retention periods CloudWatch Logs accepts."""

IMAGE_REPOSITORY = (
    r"^([a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?/)?"
    r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)
"""A repository without tag or digest (REGISTRY[:PORT]/PATH): the color's version is the tag."""
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"
SECRET_ARN = (
    r"^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+"
    r"|ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+)$"
)
"""A Secrets Manager secret or an SSM parameter, named in full: the execution role may read exactly these."""

EnvVarName = Annotated[str, Field(pattern=ENV_VAR_NAME)]
RESERVED_ENV_PREFIX = "BGTOOL_"
"""Container variables bgtool sets itself (templates/color: the session store's, with state_store)."""


def image_version(image: str) -> str:
    """The version an ECS task runs: the tag of its image (REPOSITORY:VERSION), "latest" without one."""
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag else "latest"


class EcsSettings(Strict):
    """A color as an ECS service on Fargate (`app.compute: ecs`): one task definition per version, its
    container listening on app.port in the color's target group. Capacity is colors.COLOR's desired,
    min_size and max_size, as for Auto Scaling groups."""

    image_repository: Annotated[str, Field(pattern=IMAGE_REPOSITORY)] = Field(
        description="Container image repository without a tag: the image is REPOSITORY:VERSION, the color's version."
    )
    cpu: Literal[tuple(FARGATE_MEMORY)] = Field(  # type: ignore[valid-type]
        default=256, description="Task CPU units (Fargate sizes: 256, 512, 1024, 2048, 4096, 8192, 16384)."
    )
    memory: int = Field(default=512, description="Task memory in MiB; allowed values depend on cpu (Fargate).")
    environment: dict[EnvVarName, Annotated[str, Field(max_length=32768)]] = Field(
        default_factory=dict, description="Plain environment variables of the container (never secrets)."
    )
    secrets: dict[EnvVarName, Annotated[str, Field(pattern=SECRET_ARN)]] = Field(
        default_factory=dict,
        description="Environment variable -> ARN of a Secrets Manager secret or SSM parameter, read at task start.",
    )
    log_retention_days: Literal[LOG_RETENTION_DAYS] = 365  # type: ignore[valid-type]
    log_kms_key_arn: Annotated[str | None, Field(pattern=r"^arn:aws[a-z-]*:kms:")] = Field(
        default=None,
        description="Customer managed KMS key for the log group; default: CloudWatch Logs' own encryption.",
    )

    @field_validator("memory")
    @classmethod
    def _fargate_size(cls, v: int, info: ValidationInfo) -> int:
        cpu = info.data.get("cpu")
        if cpu is None:
            return v  # cpu itself is invalid: reported on its own key
        allowed = FARGATE_MEMORY[cpu]
        if v not in allowed:
            raise ValueError(f"{v} MiB is not a Fargate size for cpu {cpu}; allowed: {_ranges(allowed)}")
        return v

    @model_validator(mode="after")
    def _one_source_per_variable(self) -> EcsSettings:
        both = sorted(set(self.environment) & set(self.secrets))
        if both:
            raise ValueError(f"{', '.join(both)} given in both 'environment' and 'secrets'; give each variable once")
        ours = sorted(k for k in {*self.environment, *self.secrets} if k.startswith(RESERVED_ENV_PREFIX))
        if ours:
            raise ValueError(f"{', '.join(ours)}: names starting with {RESERVED_ENV_PREFIX} are bgtool's own (the "
                             "session store's settings, from state_store); choose another name")
        return self


def _ranges(values: tuple[int, ...]) -> str:
    """Fargate's memory choices as people read them: a short list, or FIRST..LAST in steps of N."""
    if len(values) <= 3:
        return ", ".join(map(str, values))
    return f"{values[0]} to {values[-1]} in steps of {values[1] - values[0]}"


class AlarmSettings(Strict):
    target_5xx_count: Annotated[int, Field(ge=1)] = 10
    response_time_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    unhealthy_hosts: Annotated[int, Field(ge=0)] = 0
    period_seconds: Literal[10, 30, 60, 120, 300, 600, 900, 3600] = 60
    evaluation_periods: Annotated[int, Field(ge=1, le=100)] = 2


class TrafficSettings(Strict):
    mode: Literal["listener", "dns"] = Field(
        default="listener",
        description="How traffic moves: weights of the shared ALB's production listener (listener), or of two "
        "weighted Route 53 records, one per color's own load balancer (dns).",
    )
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


DNS_NAME = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]\.?$"
ALIAS_TTL = 60
"""The TTL Route 53 answers an alias record to a load balancer with (fixed by AWS)."""
MAX_TTL_CEILING = 3600
"""No switch may wait on caches longer than an hour per step: a larger TTL is lowered first, not guarded."""


class DnsSettings(Strict):
    """Route 53 weighted records for `traffic.mode: dns` (bgtool.traffic.dns guards the TTL).

    Fields are checked in order: `record` against `zone`, `ttl` against the guard declared before it.
    """

    zone: Annotated[str, Field(pattern=DNS_NAME)] = Field(
        description="The hosted zone's domain (example.com); the record must be inside it."
    )
    zone_id: Annotated[str | None, Field(pattern=r"^Z[A-Z0-9]{1,32}$")] = Field(
        default=None, description="An existing hosted zone; unset: the base layer creates a zone for `zone`."
    )
    record: Annotated[str, Field(pattern=DNS_NAME)] = Field(
        description="The name clients resolve (app.example.com): two weighted records, one per color."
    )
    max_ttl: Annotated[int, Field(ge=0, le=MAX_TTL_CEILING)] = Field(
        default=ALIAS_TTL, description="The TTL guard: a switch refuses while a record's effective TTL exceeds it."
    )
    bake_ttl_multiple: Annotated[float, Field(ge=1, le=100)] = Field(
        default=2, description="Each canary step bakes at least this many TTLs (caches must turn over)."
    )
    ttl: Annotated[int | None, Field(ge=0, le=2147483647)] = Field(
        default=None, description="Unset: alias records to the load balancers (TTL 60 s); set: CNAMEs with this TTL."
    )
    drain_percent: Annotated[float, Field(ge=0, le=50)] = Field(
        default=1.0, description="The old color is quiet when its share of requests is at most this (percent)."
    )
    drain_timeout_seconds: Annotated[int, Field(ge=0, le=86400)] = Field(
        default=900, description="How long a switch watches the old color's traffic fall before it reports it."
    )

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return v.lower().rstrip(".")

    @field_validator("record")
    @classmethod
    def _record_in_zone(cls, v: str, info: ValidationInfo) -> str:
        record, zone = v.lower().rstrip("."), info.data.get("zone")
        if zone and record != zone and not record.endswith("." + zone):
            raise ValueError(f"{record!r} is outside the zone {zone!r}; allowed: {zone} or a name ending in .{zone}")
        return record

    @field_validator("ttl")
    @classmethod
    def _ttl_guard(cls, v: int | None, info: ValidationInfo) -> int | None:
        guard, multiple = info.data.get("max_ttl"), info.data.get("bake_ttl_multiple", 2)
        if v is not None and guard is not None and v > guard:
            raise ValueError(
                f"{v} s is above the TTL guard dns.max_ttl ({guard} s): every canary step would bake "
                f"{v * multiple:g} s and clients would keep the old color for as long. Allowed: ttl <= max_ttl "
                f"(max_ttl <= {MAX_TTL_CEILING}). Lower it first: set dns.ttl to {guard} or less, apply, and wait "
                "one old TTL before switching"
            )
        return v

    @property
    def effective_ttl(self) -> int:
        """What resolvers may cache: AWS fixes an alias record's TTL at 60 s."""
        return ALIAS_TTL if self.ttl is None else self.ttl


WORKER_PLACEHOLDERS = ("{queue_url}", "{version}", "{color}", "{worker}", "{python}")
"""{python}: the Python that runs bgtool on the embedded AWS (python3 on an instance)."""


class WorkerSettings(Strict):
    """Background workers per color, consuming one SQS queue; only the live color's run at rest."""

    command: Annotated[str, Field(min_length=1)] = Field(
        description="What a worker runs, with {queue_url}, {version}, {color}, {worker}, {python}; on the embedded "
        "AWS a process on this machine, on AWS the instances' user data starts it."
    )
    queue: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")] = Field(
        description="The SQS queue the base layer creates (<name>-<queue>)."
    )
    size: Annotated[int, Field(ge=1, le=1000)] = 1
    max_size: Annotated[int, Field(ge=1, le=1000)] = 10
    handover: Literal["overlap", "exclusive"] = Field(
        default="overlap", description="overlap: new workers consume before the old stop; exclusive: never both."
    )
    visibility_timeout_seconds: Annotated[int, Field(ge=0, le=43200)] = 30

    @field_validator("command")
    @classmethod
    def _command(cls, v: str) -> str:
        unknown = sorted(set(re.findall(r"\{[^{}]*\}", v)) - set(WORKER_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder {', '.join(unknown)}; allowed: {', '.join(WORKER_PLACEHOLDERS)}")
        return v

    @model_validator(mode="after")
    def _size(self) -> WorkerSettings:
        if self.size > self.max_size:
            raise ValueError(f"size {self.size} is above max_size {self.max_size}; allowed: 1 <= size <= max_size")
        return self


class StateStoreSettings(Strict):
    """A session store in the base layer that both colors share: a user's session started on one color
    goes on on the other after a switch or a rollback, instead of ending with the color that held it."""

    kind: Literal["dynamodb", "elasticache"] = Field(
        description="dynamodb: a table (AWS and the embedded AWS); elasticache: a Valkey/Redis replication group "
        "in the instances' subnets (a real AWS account)."
    )
    ttl_hours: Annotated[int, Field(ge=1, le=8760)] = Field(
        default=24, description="dynamodb: sessions expire this long after their last use (the table's TTL)."
    )
    kms_key_arn: str | None = Field(
        default=None, description="Customer managed KMS key for encryption at rest; default: the AWS owned key."
    )
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = Field(
        default="cache.t4g.small", description="elasticache: the node type."
    )
    nodes: Annotated[int, Field(ge=2, le=6)] = Field(
        default=2, description="elasticache: primary plus replicas, in different zones (automatic failover)."
    )


class SmokeCheck(Strict):
    path: Annotated[str, Field(pattern=r"^/[\x21-\x7e]*$")] = "/"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    expect_body: str | None = None
    expect_version: bool = False
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 5


class HostChecks(Strict):
    module: str
    connection: Literal["ssh", "local"] = "ssh"
    # Both reach the ssh command line that testinfra runs through a shell: only plain names and paths.
    ssh_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = "ec2-user"
    ssh_key: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_./~-]{1,255}$")] = None


class LoadPath(Strict):
    path: Annotated[str, Field(pattern=r"^/[\x21-\x7e]*$")]
    weight: Annotated[int, Field(ge=1, le=1000)] = 1


class LoadSettings(Strict):
    """Load sent through the test listener to the idle color before it takes traffic.

    `rps: production` derives the rate from the live color's peak RequestCount over
    `lookback_minutes`, times `factor`; the run is bounded by `seconds` and `max_requests`.
    """

    rps: Annotated[float, Field(gt=0, le=10000)] | Literal["production"] = 20
    factor: Annotated[float, Field(gt=0, le=100)] = 1.0
    lookback_minutes: Annotated[int, Field(ge=1, le=1440)] = 60
    seconds: Annotated[float, Field(gt=0, le=3600)] = 30
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 10
    max_requests: Annotated[int | None, Field(ge=1, le=10_000_000)] = Field(
        default=None, description="Hard cap on requests sent; default: rate x seconds."
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 5
    paths: Annotated[list[LoadPath], Field(min_length=1)] = [LoadPath(path="/")]
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p99_ms: Annotated[float, Field(gt=0, le=600_000)] = 1000


class AnalysisSettings(Strict):
    """Pre-promotion analysis and per-step judgement from the load balancer's own metrics."""

    enabled: bool = True
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p99_ms: Annotated[float, Field(gt=0, le=600_000)] = 1000
    max_regression: Annotated[float, Field(ge=0, le=100)] = Field(
        default=0.2, description="How much worse than the live color the new one may be (0.2: 20%)."
    )
    error_rate_tolerance: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.005, description="Absolute 5xx-rate difference always tolerated (0.005: half a point)."
    )
    latency_tolerance_ms: Annotated[float, Field(ge=0, le=600_000)] = Field(
        default=20, description="Absolute p99 difference always tolerated."
    )
    min_requests: Annotated[int, Field(ge=1)] = Field(
        default=50, description="Fewer requests than this in the window: inconclusive, not a pass."
    )
    require_baseline: bool = Field(
        default=False, description="Inconclusive when the live color served too few requests to compare with."
    )
    settle_seconds: Annotated[float, Field(ge=0, le=900)] = Field(
        default=180, description="How long the gate waits for the load's metrics to reach CloudWatch."
    )


class GateSettings(Strict):
    min_healthy: Annotated[int, Field(ge=0)] = 1
    smoke: list[SmokeCheck] = Field(default_factory=list)
    host_checks: HostChecks | None = None
    wait_seconds: Annotated[int, Field(ge=0, le=7200)] = 600
    load: LoadSettings | None = None
    analysis: AnalysisSettings = AnalysisSettings()


class RetireSettings(Strict):
    quiet_minutes: Annotated[float, Field(ge=0, le=1440)] = Field(
        default=10, description="Retire refuses while the color still received requests this recently."
    )


class LockSettings(Strict):
    stale_after_minutes: Annotated[int, Field(ge=1)] = 120


LOCAL_PLACEHOLDERS = ("{port}", "{version}", "{color}")


class LocalSettings(Strict):
    """The embedded AWS's data plane: what serves each instance, how fast metrics roll up."""

    app_command: str | None = Field(
        default=None,
        description="Command of a target process, with {port}, {version} and {color}; default: the sample app.",
    )
    metrics_period_seconds: Annotated[float | None, Field(gt=0, le=3600)] = None

    @field_validator("app_command")
    @classmethod
    def _command(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            words = shlex.split(v)
        except ValueError as exc:
            raise ValueError(f"cannot be split into arguments ({exc}); check the quotes") from None
        if not words:
            raise ValueError("is empty; give a command like 'python3 app.py --port {port}' or remove the key")
        unknown = sorted(set(re.findall(r"\{[^{}]*\}", v)) - set(LOCAL_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder {', '.join(unknown)}; allowed: {', '.join(LOCAL_PLACEHOLDERS)}")
        if "{port}" not in v:
            raise ValueError("needs the {port} placeholder: each target process listens on a port of its own")
        return v


class DatabaseSettings(Strict):
    """Migrations that ship with a release; the connection never comes from this file."""

    migrations: Annotated[str, Field(min_length=1)] = Field(
        description="Directory of versioned .sql files, relative to the project (e.g. db/migrations)."
    )
    dialect: str = Field(default="postgres", description="SQL dialect the migrations are parsed in (sqlglot).")
    migrate_command: str | Annotated[list[str], Field(min_length=1)] | None = Field(
        default=None,
        description="Applies the pending migrations, run without a shell ('flyway migrate'); the embedded "
        "default applies them to a SQLite database under .bgtool/ when unset.",
    )
    connection_env: Annotated[str | None, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        default=None, description="Environment variable holding the connection (URL or SQLite path)."
    )
    connection_secret: Annotated[str | None, Field(min_length=1)] = Field(
        default=None, description="Secrets Manager secret (name or ARN) holding the connection."
    )

    @field_validator("dialect")
    @classmethod
    def _dialect(cls, v: str) -> str:
        from sqlglot.dialects.dialect import Dialect, Dialects  # only files with a database section pay for it

        try:
            Dialect.get_or_raise(v)
        except ValueError:
            allowed = ", ".join(d.value for d in Dialects if d.value)
            raise ValueError(f"unknown SQL dialect {v!r}; allowed: {allowed}") from None
        return v


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
    alb: AlbSettings = AlbSettings()
    app: AppSettings
    colors: Colors
    ecs: EcsSettings | None = Field(default=None, validate_default=True)
    alarms: AlarmSettings = AlarmSettings()
    dns: DnsSettings | None = None
    traffic: TrafficSettings = Field(default_factory=TrafficSettings, validate_default=True)
    gate: GateSettings = GateSettings()
    retention_hours: Annotated[float, Field(ge=0, le=24 * 365)] = 24
    retire: RetireSettings = RetireSettings()
    lock: LockSettings = LockSettings()
    local: LocalSettings = LocalSettings()
    database: DatabaseSettings | None = None
    workers: WorkerSettings | None = None
    state_store: StateStoreSettings | None = None
    tags: dict[Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict
    )

    @field_validator("colors")
    @classmethod
    def _versions_are_tags(cls, v: Colors, info: ValidationInfo) -> Colors:
        app = info.data.get("app")
        if app is None or app.compute != "ecs":
            return v
        for color in Color:
            version = v.of(color).version
            if not re.fullmatch(IMAGE_TAG, version):
                raise ValueError(f"{color.value}.version {version!r} cannot be an image tag ('+' is not allowed in "
                                 "one): with app.compute ecs the version is the tag of ecs.image_repository")
        return v

    @field_validator("ecs")
    @classmethod
    def _ecs_section(cls, v: EcsSettings | None, info: ValidationInfo) -> EcsSettings | None:
        app = info.data.get("app")
        if app is None:
            return v  # app itself is invalid: reported on its own keys
        if app.compute == "ecs" and v is None:
            raise ValueError("app.compute ecs needs an 'ecs' section with at least 'image_repository'; "
                             f"allowed app.compute: {', '.join(COMPUTE_KINDS)}")
        if app.compute != "ecs" and v is not None:
            raise ValueError(f"compute {app.compute} does not use the 'ecs' section: set app.compute: ecs "
                             "or remove 'ecs'")
        return v

    @field_validator("gate")
    @classmethod
    def _host_checks(cls, v: GateSettings, info: ValidationInfo) -> GateSettings:
        """testinfra's host checks run on a color's EC2 instances (found by instance id): a Fargate task
        has none to reach, so they are refused rather than judged against nothing."""
        app = info.data.get("app")
        if v.host_checks is not None and app is not None and app.compute == "ecs":
            raise ValueError("'host_checks' is not available with app.compute ecs (they run on EC2 instances); "
                             "remove gate.host_checks or set app.compute: autoscaling")
        return v

    @field_validator("traffic")
    @classmethod
    def _dns_mode(cls, v: TrafficSettings, info: ValidationInfo) -> TrafficSettings:
        if "dns" not in info.data:
            return v  # the dns section itself is invalid: reported on its own keys
        if v.mode == "dns" and info.data["dns"] is None:
            raise ValueError("mode dns needs a 'dns' section with 'zone' and 'record' (and 'zone_id' for an "
                             "existing hosted zone); allowed modes: listener, dns")
        if v.mode != "dns" and info.data["dns"] is not None:
            raise ValueError(f"mode {v.mode} does not use the 'dns' section: set traffic.mode: dns or remove 'dns'")
        return v

    @field_validator("state_store")
    @classmethod
    def _state_store(cls, v: StateStoreSettings | None, info: ValidationInfo) -> StateStoreSettings | None:
        aws = info.data.get("aws")
        if v is not None and v.kind == "elasticache" and aws is not None and aws.endpoint is not None:
            raise ValueError("kind elasticache needs a real AWS account (the embedded AWS serves no cache "
                             "nodes); allowed here: dynamodb")
        return v

    @property
    def idle_color(self) -> Color:
        return self.active_color.other

    @property
    def embedded(self) -> bool:
        return self.aws.endpoint is not None

    @property
    def deletion_protection(self) -> bool:
        """On unless the file turns it off; the embedded AWS is torn down freely, so off there by default."""
        setting = self.alb.deletion_protection
        return (not self.embedded) if setting is None else setting


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


def load_environment(root: Path, env: str, *, endpoint_override: str | None = None,
                     rehearsal_endpoint: str | None = None) -> LoadedEnvironment:
    """Load and validate ENV; raises ConfigError listing every problem with its line.

    ENDPOINT_OVERRIDE replaces an endpoint the file names; REHEARSAL_ENDPOINT sets one on any file."""
    path = environment_path(root, env)
    shown = _shown(root, path)
    raw = _read_yaml(path, shown)
    if not isinstance(raw, dict):
        raise ConfigError(shown, ["top level: expected a mapping of keys (active_color, colors, ...)"])
    data = _plain(raw)
    if endpoint_override and isinstance(data.get("aws"), dict) and data["aws"].get("endpoint"):
        data["aws"]["endpoint"] = endpoint_override
    if rehearsal_endpoint and isinstance(data.get("aws"), dict):
        data["aws"]["endpoint"] = rehearsal_endpoint
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
        return _parse(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(shown, [f"{where}YAML syntax error: {exc.problem or exc.context}"]) from None
    except YAMLError as exc:
        raise ConfigError(shown, [f"YAML error: {exc}"]) from None


@functools.lru_cache(maxsize=8)
def _parse(text: str) -> Any:
    """One parse per content: an operation reads its file again after each rewrite, and the round-trip
    parser costs tens of milliseconds a time (time a break-glass rollback spends before its flip).
    Callers never change the tree (`_plain` copies it)."""
    return YAML(typ="rt").load(text)


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
