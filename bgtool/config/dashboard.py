"""The name and console address of an environment's CloudWatch dashboard.

Named here once, because three stages must agree on it without asking AWS: the base layer's template
creates the dashboard under this name (modules/dashboard), `bgtool status` prints it, and the IAM
policies scope the dashboard calls to its ARN.
"""

from __future__ import annotations

from urllib.parse import quote

from bgtool.config.schema import Environment


def dashboard_name(config: Environment) -> str:
    """The environment's name prefix, as its load balancer is named.

    Dashboards are unique per account (not per region), like the IAM names the environment already
    owns, so the prefix that keeps those apart keeps dashboards apart too.
    """
    return config.name


def partition(region: str) -> str:
    """The AWS partition a region belongs to (ARNs and console hosts differ between them)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def dashboard_url(config: Environment) -> str | None:
    """Where a person opens the dashboard in the AWS console; None on the embedded AWS, which has no console."""
    if config.embedded:
        return None
    region = config.aws.region
    host = {
        "aws": f"{region}.console.aws.amazon.com",
        "aws-cn": f"{region}.console.amazonaws.cn",
        "aws-us-gov": "console.amazonaws-us-gov.com",
    }[partition(region)]
    return f"https://{host}/cloudwatch/home?region={region}#dashboards/dashboard/{quote(dashboard_name(config))}"
