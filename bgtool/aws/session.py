"""boto3 sessions for an environment: the real account, or the embedded AWS.

For the embedded AWS, credentials are dummies set here (never in files) and retries are few:
moto answers unimplemented calls with HTTP 500, which default retries turn into long hangs, but a
loaded server sometimes drops a connection, which one or two retries ride out.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from bgtool.aws.errors import Target
from bgtool.config.schema import Environment

EMBEDDED_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bgtool", "AWS_SECRET_ACCESS_KEY": "bgtool"}


def terraform_env(config: Environment) -> dict[str, str]:
    """Process environment that Terraform needs to reach this environment's AWS."""
    env: dict[str, str] = {"AWS_REGION": config.aws.region}
    if config.embedded:
        env["AWS_EC2_METADATA_DISABLED"] = "true"
    if config.embedded and not config.aws.profile:
        env.update(EMBEDDED_CREDENTIALS)
    elif config.aws.profile:
        env["AWS_PROFILE"] = config.aws.profile
    return env


class Aws:
    """Lazily created clients, one per service, for one environment."""

    def __init__(self, config: Environment) -> None:
        self.config = config

    @property
    def target(self) -> Target:
        """Where these clients go, for error reports (no credentials, only names)."""
        embedded = self.config.embedded
        return Target(region=self.config.aws.region, endpoint=self.config.aws.endpoint if embedded else None,
                      profile=self.config.aws.profile, embedded=embedded)

    @cached_property
    def _session(self) -> boto3.session.Session:
        # A profile also applies to the embedded AWS: one that enforces IAM needs real keys of its users.
        if self.config.embedded and not self.config.aws.profile:
            return boto3.session.Session(
                aws_access_key_id=EMBEDDED_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=EMBEDDED_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=self.config.aws.region,
            )
        return boto3.session.Session(profile_name=self.config.aws.profile, region_name=self.config.aws.region)

    def client(self, service: str) -> Any:
        cache = self.__dict__.setdefault("_clients", {})
        if service not in cache:
            embedded = self.config.embedded
            cfg = BotoConfig(
                retries={"max_attempts": 3 if embedded else 5, "mode": "standard"},
                connect_timeout=5, read_timeout=60,
            )
            cache[service] = self._session.client(
                service, endpoint_url=self.config.aws.endpoint if embedded else None, config=cfg
            )
        return cache[service]
