"""Least-privilege IAM policies for the three roles a pipeline assumes: plan, drift and apply.

Pure logic: an environment file in, policy documents out. Every write is an explicit action (no
wildcard) on resources named after the environment (`name` prefix, state bucket and key prefix,
lock table); EC2, whose ARNs carry ids instead of names, is scoped by the `bgtool:env` tag that
every resource bgtool renders carries. Reads that cannot be scoped (Describe calls take no
resource) stay on `*`. The account is `*` unless given, so the output holds no account id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bgtool.config.dashboard import dashboard_name, partition
from bgtool.config.schema import DnsSettings, Environment, StateStoreSettings

Role = Literal["plan", "drift", "apply"]
ROLES: tuple[Role, ...] = ("plan", "drift", "apply")

ROLE_PURPOSE: dict[Role, str] = {
    "plan": "pull requests: render, validate and plan (reads everything, writes nothing, not even a lock)",
    "drift": "the nightly drift check (the same reads as plan: refresh-only and normal plans, bgtool's checks)",
    "apply": "merges to main and releases: apply, deploy, switch, rollback, retire",
}

# Read-only calls that Terraform's refresh and bgtool's live reads make. Describe/List/Get calls of
# these services accept no resource-level scoping, so they are granted on "*"; the verb wildcards
# cover what each provider release reads without granting anything that changes a resource.
READ_ACTIONS: tuple[str, ...] = (
    "autoscaling:Describe*",
    "cloudwatch:Describe*",
    "cloudwatch:GetMetricData",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:ListTagsForResource",
    "ec2:Describe*",
    "ec2:GetLaunchTemplateData",
    "elasticloadbalancing:Describe*",
    "sts:GetCallerIdentity",
)

# Reads of the access-log bucket's configuration (Terraform refreshes every sub-resource).
LOG_BUCKET_READS: tuple[str, ...] = (
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:ListBucket",
)

LOG_BUCKET_WRITES: tuple[str, ...] = (
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
)

# Terraform's state lock and bgtool's operation lock are items of the lock table. Plans and drift
# checks run without Terraform's lock (`-lock=false`) and never take bgtool's, so the read-only roles
# only read lock items (the state's checksum item, status, drift's stale-lock report): neither role
# can take, hold or clear a lock that an apply or a switch depends on.
LOCK_ITEM_READS: tuple[str, ...] = ("dynamodb:BatchGetItem", "dynamodb:GetItem")
LOCK_ITEM_WRITES: tuple[str, ...] = ("dynamodb:DeleteItem", "dynamodb:PutItem")
LOCK_TABLE_READS: tuple[str, ...] = ("dynamodb:DescribeTable", "dynamodb:Query", "dynamodb:Scan")

EC2_WRITES: tuple[str, ...] = (
    "ec2:AllocateAddress",
    "ec2:AssociateRouteTable",
    "ec2:AttachInternetGateway",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateInternetGateway",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:CreateNatGateway",
    "ec2:CreateRoute",
    "ec2:CreateRouteTable",
    "ec2:CreateSecurityGroup",
    "ec2:CreateSubnet",
    "ec2:CreateTags",
    "ec2:CreateVpc",
    "ec2:CreateVpcEndpoint",
    "ec2:DeleteInternetGateway",
    "ec2:DeleteLaunchTemplate",
    "ec2:DeleteNatGateway",
    "ec2:DeleteRoute",
    "ec2:DeleteRouteTable",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteSubnet",
    "ec2:DeleteTags",
    "ec2:DeleteVpc",
    "ec2:DeleteVpcEndpoints",
    "ec2:DetachInternetGateway",
    "ec2:DisassociateAddress",
    "ec2:DisassociateRouteTable",
    "ec2:ModifySecurityGroupRules",
    "ec2:ModifySubnetAttribute",
    "ec2:ModifyVpcAttribute",
    "ec2:ModifyVpcEndpoint",
    "ec2:ReleaseAddress",
    "ec2:ReplaceRoute",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RunInstances",
    "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
    "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
)

ELB_WRITES: tuple[str, ...] = (
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:RemoveTags",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
)

ASG_WRITES: tuple[str, ...] = (
    "autoscaling:AttachLoadBalancerTargetGroups",
    "autoscaling:CreateAutoScalingGroup",
    "autoscaling:CreateOrUpdateTags",
    "autoscaling:DeleteAutoScalingGroup",
    "autoscaling:DeleteTags",
    "autoscaling:DetachLoadBalancerTargetGroups",
    "autoscaling:SetDesiredCapacity",
    "autoscaling:UpdateAutoScalingGroup",
)

# traffic.mode dns (modules/dns, the base layer's aws_route53_zone): what the provider's
# aws_route53_record and aws_route53_zone call, and what bgtool reads (traffic/dns.py).
ZONE_READS: tuple[str, ...] = ("route53:GetHostedZone", "route53:ListResourceRecordSets", "route53:ListTagsForResource")
# Finds the zone the base layer created by its name; Route 53 scopes no listing to a zone.
ZONE_LOOKUPS: tuple[str, ...] = ("route53:ListHostedZonesByName",)
# Every record change is waited on until Route 53 reports it INSYNC.
CHANGE_READS: tuple[str, ...] = ("route53:GetChange",)
RECORD_WRITES: tuple[str, ...] = ("route53:ChangeResourceRecordSets",)
# Creating a hosted zone takes no resource; changing or deleting one takes its ARN, whose id is
# only known after the apply that creates it.
ZONE_CREATE: tuple[str, ...] = ("route53:CreateHostedZone",)
ZONE_WRITES: tuple[str, ...] = (
    "route53:ChangeTagsForResource",
    "route53:DeleteHostedZone",
    "route53:GetDNSSEC",  # read before deleting a zone with force_destroy
    "route53:UpdateHostedZoneComment",
)
# The weighted records are A (alias) or CNAME (dns.ttl set); a change of dns.ttl swaps one for the other.
RECORD_TYPES: tuple[str, ...] = ("A", "CNAME")

# workers: the base layer's aws_sqs_queue (the worker groups are Auto Scaling groups and launch
# templates named and tagged like the application's).
QUEUE_READS: tuple[str, ...] = ("sqs:GetQueueAttributes", "sqs:ListQueueTags")
QUEUE_WRITES: tuple[str, ...] = (
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:SetQueueAttributes",
    "sqs:TagQueue",  # also needed by CreateQueue with tags (the provider's default_tags)
    "sqs:UntagQueue",
)

# state_store (modules/session-store): the sessions table, or the cache's replication group with
# its users, user group and subnet group; and the instances' role and instance profile.
TABLE_READS: tuple[str, ...] = (
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:ListTagsOfResource",
)
TABLE_WRITES: tuple[str, ...] = (
    "dynamodb:CreateTable",
    "dynamodb:DeleteTable",
    "dynamodb:TagResource",
    "dynamodb:UntagResource",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
)
CACHE_READS: tuple[str, ...] = ("elasticache:Describe*", "elasticache:ListTagsForResource")
CACHE_WRITES: tuple[str, ...] = (
    "elasticache:AddTagsToResource",
    "elasticache:CreateCacheSubnetGroup",
    "elasticache:CreateReplicationGroup",
    "elasticache:CreateUser",
    "elasticache:CreateUserGroup",
    "elasticache:DeleteCacheSubnetGroup",
    "elasticache:DeleteReplicationGroup",
    "elasticache:DeleteUser",
    "elasticache:DeleteUserGroup",
    "elasticache:ModifyCacheSubnetGroup",
    "elasticache:ModifyReplicationGroup",
    "elasticache:ModifyUser",
    "elasticache:ModifyUserGroup",
    "elasticache:RemoveTagsFromResource",
)
APP_ROLE_READS: tuple[str, ...] = (
    "iam:GetInstanceProfile",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
)
APP_ROLE_WRITES: tuple[str, ...] = (
    "iam:AddRoleToInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:CreateRole",
    "iam:DeleteInstanceProfile",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:PassRole",  # launch templates and Auto Scaling groups hand the role to the instances
    "iam:PutRolePolicy",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:TagRole",
    "iam:UntagInstanceProfile",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRoleDescription",
)
KEY_USE: tuple[str, ...] = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey")

# The base layer's dashboard (modules/dashboard): the provider reads it back with GetDashboard after
# every PutDashboard and on every refresh, and deletes it with DeleteDashboards. All three take the
# dashboard's ARN; ListDashboards (resource "*") is never called by the provider nor by bgtool.
DASHBOARD_READS: tuple[str, ...] = ("cloudwatch:GetDashboard",)
DASHBOARD_WRITES: tuple[str, ...] = ("cloudwatch:DeleteDashboards", "cloudwatch:PutDashboard")
# app.compute ecs (modules/ecs-cluster in base, modules/ecs-service per color): the cluster, the
# services, their task definitions and scalable targets, the colors' log groups, and the two roles
# the tasks run with, which are the only roles the apply role may pass.
ECS_READS: tuple[str, ...] = ("ecs:DescribeClusters", "ecs:DescribeServices", "ecs:DescribeTaskDefinition",
                              "ecs:DescribeTasks", "ecs:ListTasks",
                              "ecs:ListTagsForResource", "application-autoscaling:DescribeScalableTargets",
                              "application-autoscaling:ListTagsForResource",
                              "logs:DescribeLogGroups")
ECS_CLUSTER_WRITES: tuple[str, ...] = (
    "ecs:CreateCluster",
    "ecs:DeleteCluster",
    "ecs:PutClusterCapacityProviders",
    "ecs:TagResource",
    "ecs:UntagResource",
    "ecs:UpdateCluster",
    "ecs:UpdateClusterSettings",
)
ECS_SERVICE_WRITES: tuple[str, ...] = (
    "ecs:CreateService",
    "ecs:DeleteService",
    "ecs:TagResource",
    "ecs:UntagResource",
    "ecs:UpdateService",
)
# Task definitions: a revision's ARN is only known once it is registered, and deregistering takes no
# resource, so both are on "*"; registering needs the environment's tag in the request (the color
# layer's tags), as EC2 creations do.
TASK_DEFINITION_WRITES: tuple[str, ...] = ("ecs:RegisterTaskDefinition", "ecs:TagResource")
TASK_DEFINITION_DEREGISTER: tuple[str, ...] = ("ecs:DeregisterTaskDefinition",)
UNSCOPED_ECS_WRITES: tuple[str, ...] = TASK_DEFINITION_WRITES + TASK_DEFINITION_DEREGISTER
"""The only ECS writes on "*" (see above); every other one names the environment's resources."""
SCALABLE_TARGET_WRITES: tuple[str, ...] = (
    "application-autoscaling:DeregisterScalableTarget",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:TagResource",
    "application-autoscaling:UntagResource",
)
LOG_GROUP_READS: tuple[str, ...] = ("logs:ListTagsForResource", "logs:ListTagsLogGroup")
LOG_GROUP_WRITES: tuple[str, ...] = (
    "logs:AssociateKmsKey",
    "logs:CreateLogGroup",
    "logs:DeleteLogGroup",
    "logs:DeleteRetentionPolicy",
    "logs:DisassociateKmsKey",
    "logs:PutRetentionPolicy",
    "logs:TagLogGroup",
    "logs:TagResource",
    "logs:UntagLogGroup",
    "logs:UntagResource",
)
ECS_ROLE_READS: tuple[str, ...] = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
)
ECS_ROLE_WRITES: tuple[str, ...] = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRoleDescription",
)
ECS_ROLES: tuple[str, ...] = ("ecs-execution", "ecs-task")
"""modules/ecs-cluster's roles, <name>-<role>: the task execution role and the application's task role."""

ALARM_WRITES: tuple[str, ...] = (
    "cloudwatch:DeleteAlarms",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
)


@dataclass(frozen=True)
class Scope:
    """Where one environment's resources live, as ARN parts."""

    env: str
    name: str
    dashboard: str
    partition: str
    region: str
    account: str
    state_bucket: str | None
    key_prefix: str
    lock_table: str | None

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )

    @property
    def log_bucket(self) -> str:
        return f"arn:{self.partition}:s3:::{self.name}-alb-logs-{self.account}"

    @property
    def dashboard_arn(self) -> str:
        """Dashboards belong to the account, not to a region: the ARN has no region."""
        return self.arn("cloudwatch", f"dashboard/{self.dashboard}", region=False)

    @property
    def queues(self) -> str:
        """By prefix, not by name: a renamed workers.queue replaces the queue, and the old one must go."""
        return self.arn("sqs", f"{self.name}-*")

    @property
    def store(self) -> str:
        """modules/session-store names everything <name>-sessions (the role and profile with a suffix)."""
        return f"{self.name}-sessions"

    @property
    def table(self) -> str:
        return self.arn("dynamodb", f"table/{self.store}")

    def app_role(self) -> list[str]:
        iam = f"arn:{self.partition}:iam::{self.account}"
        return [f"{iam}:role/{self.store}-app-*", f"{iam}:instance-profile/{self.store}-app-*"]

    def cache(self) -> list[str]:
        kinds = {"replicationgroup": self.store, "cluster": f"{self.store}-*", "subnetgroup": self.store,
                 "usergroup": self.store, "user": f"{self.store}-*"}
        return [self.arn("elasticache", f"{kind}:{name}") for kind, name in kinds.items()]

    def ecs_roles(self) -> list[str]:
        return [f"arn:{self.partition}:iam::{self.account}:role/{self.name}-{role}" for role in ECS_ROLES]

    @property
    def ecs_cluster(self) -> str:
        return self.arn("ecs", f"cluster/{self.name}")

    @property
    def ecs_services(self) -> str:
        """The colors' services, <name>-<color>, in the environment's cluster (ECS's long ARN format)."""
        return self.arn("ecs", f"service/{self.name}/{self.name}-*")

    @property
    def log_groups(self) -> list[str]:
        group = self.arn("logs", f"log-group:/ecs/{self.name}/*")
        return [group, f"{group}:*"]

    def zone(self, zone_id: str | None) -> str:
        """A given zone exactly; a zone the base layer creates has no id before its first apply."""
        return f"arn:{self.partition}:route53:::hostedzone/{zone_id or '*'}"


def scope_of(env: str, config: Environment, *, account: str | None = None) -> Scope:
    region = config.aws.region
    return Scope(
        env=env,
        name=config.name,
        dashboard=dashboard_name(config),
        partition=partition(region),
        region=region,
        account=account or "*",
        state_bucket=config.state.bucket if config.state.backend == "s3" else None,
        key_prefix=config.state.key_prefix,
        lock_table=config.state.lock_table if config.state.backend == "s3" else None,
    )


def policy(env: str, config: Environment, role: Role, *, account: str | None = None) -> dict[str, Any]:
    """The IAM policy document ROLE needs for ENV."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    scope = scope_of(env, config, account=account)
    statements = _reads(scope, config) + _state(scope, write=role == "apply")
    if role == "apply":
        statements += _writes(scope, config)
    return {"Version": "2012-10-17", "Statement": statements}


def policies(env: str, config: Environment, *, account: str | None = None) -> dict[Role, dict[str, Any]]:
    return {role: policy(env, config, role, account=account) for role in ROLES}


def _statement(sid: str, actions: tuple[str, ...] | list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources, **extra}


def _reads(scope: Scope, config: Environment) -> list[dict[str, Any]]:
    out = [_statement("ReadEverythingDescribable", READ_ACTIONS, ["*"]),
           _statement("ReadDashboard", DASHBOARD_READS, [scope.dashboard_arn])]
    if config.alb.access_logs:
        out.append(_statement("ReadAccessLogBucket", LOG_BUCKET_READS, [scope.log_bucket]))
    if config.dns is not None:
        out += _dns_reads(scope, config.dns)
    if config.workers is not None:
        out.append(_statement("ReadWorkerQueue", QUEUE_READS, [scope.queues]))
    if config.state_store is not None:
        out += _store_reads(scope, config.state_store, config.app.compute != "ecs")
    if config.app.compute == "ecs":
        out += _ecs_reads(scope)
    return out


def _ecs_reads(scope: Scope) -> list[dict[str, Any]]:
    return [_statement("ReadEcs", ECS_READS, ["*"]),  # Describe calls the provider makes by id or name
            _statement("ReadEcsLogGroups", LOG_GROUP_READS, scope.log_groups),
            _statement("ReadEcsRoles", ECS_ROLE_READS, scope.ecs_roles())]


def _ecs_writes(scope: Scope, tagging: dict[str, Any], tagged: dict[str, Any]) -> list[dict[str, Any]]:
    """The cluster, services, task definitions, scalable targets, log groups and the two ECS roles, which
    alone may be passed, and to ECS tasks only."""
    return [
        _statement("EcsCluster", ECS_CLUSTER_WRITES, [scope.ecs_cluster]),
        _statement("EcsServices", ECS_SERVICE_WRITES, [scope.ecs_services],
                   Condition={"ArnEquals": {"ecs:cluster": scope.ecs_cluster}}),
        _statement("EcsTaskDefinitions", TASK_DEFINITION_WRITES, ["*"], Condition=tagging),
        _statement("EcsTaskDefinitionsDeregister", TASK_DEFINITION_DEREGISTER, ["*"]),
        _statement("EcsScalableTargetsCreate", ["application-autoscaling:RegisterScalableTarget",
                                                "application-autoscaling:TagResource"],
                   [scope.arn("application-autoscaling", "scalable-target/*")], Condition=tagging),
        _statement("EcsScalableTargetsChange", SCALABLE_TARGET_WRITES,
                   [scope.arn("application-autoscaling", "scalable-target/*")], Condition=tagged),
        _statement("EcsLogGroups", LOG_GROUP_WRITES, scope.log_groups),
        _statement("EcsRoles", ECS_ROLE_WRITES, scope.ecs_roles()),
        _statement("PassEcsRoles", ["iam:PassRole"], scope.ecs_roles(),
                   Condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
    ]


def _store_reads(scope: Scope, store: StateStoreSettings, instances: bool) -> list[dict[str, Any]]:
    """INSTANCES: the store makes an EC2 role and instance profile of its own (with ECS it grants the task role)."""
    out = [_statement("ReadSessionStoreRole", APP_ROLE_READS, scope.app_role())] if instances else []
    if store.kind == "dynamodb":
        out.append(_statement("ReadSessionTable", TABLE_READS, [scope.table]))
    else:  # Describe calls of ElastiCache are not scoped to a resource
        out.append(_statement("ReadSessionCache", CACHE_READS, ["*"]))
    return out


def _store_writes(scope: Scope, store: StateStoreSettings, instances: bool) -> list[dict[str, Any]]:
    out = [_statement("SessionStoreRole", APP_ROLE_WRITES, scope.app_role())] if instances else []
    if store.kind == "dynamodb":
        out.append(_statement("SessionTable", TABLE_WRITES, [scope.table]))
    else:
        out.append(_statement("SessionCache", CACHE_WRITES, scope.cache()))
    if store.kms_key_arn:
        out.append(_statement("SessionStoreKey", KEY_USE, [store.kms_key_arn]))
    return out


def _dns_reads(scope: Scope, dns: DnsSettings) -> list[dict[str, Any]]:
    out = [_statement("ReadHostedZone", ZONE_READS, [scope.zone(dns.zone_id)])]
    if dns.zone_id is None:
        out.append(_statement("FindHostedZoneByName", ZONE_LOOKUPS, ["*"]))
    return out


def _state(scope: Scope, *, write: bool) -> list[dict[str, Any]]:
    """State objects, history and locks of this environment only."""
    if scope.state_bucket is None:
        return []
    bucket = f"arn:{scope.partition}:s3:::{scope.state_bucket}"
    prefix = f"{scope.key_prefix}/{scope.env}/"
    objects = ["s3:GetObject", *(["s3:PutObject", "s3:DeleteObject"] if write else [])]
    table = scope.arn("dynamodb", f"table/{scope.lock_table}")
    # Terraform's lock items are "<bucket>/<key>" (and "<bucket>/<key>-md5"); bgtool's operation
    # lock is "bgtool-operation/<key_prefix>/<env>".
    lock_keys = [f"{scope.state_bucket}/{prefix}*", f"bgtool-operation/{scope.key_prefix}/{scope.env}"]
    return [
        _statement("ListStatePrefix", ["s3:ListBucket"], [bucket],
                   Condition={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}),
        _statement("StateAndHistoryObjects", objects, [f"{bucket}/{prefix}*"]),
        _statement("LockItems", LOCK_ITEM_READS + (LOCK_ITEM_WRITES if write else ()), [table],
                   Condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": lock_keys}}),
        _statement("ReadLockTable", LOCK_TABLE_READS, [table]),
    ]


def _writes(scope: Scope, config: Environment) -> list[dict[str, Any]]:
    name, elb = scope.name, "elasticloadbalancing"
    tagged = {"StringEquals": {"aws:ResourceTag/bgtool:env": scope.env}}
    tagging = {"StringEquals": {"aws:RequestTag/bgtool:env": scope.env}}
    ec2_any = scope.arn("ec2", "*")
    creates = [a for a in EC2_WRITES if a.split(":")[1].startswith(("Create", "Allocate", "RunInstances"))]
    changes = [a for a in EC2_WRITES if a not in creates]
    out = [
        # New EC2 resources must carry the environment's tag (the provider's default_tags add it) ...
        _statement("CreateTaggedNetworkAndTemplates", creates, [ec2_any], Condition=tagging),
        # ... and only resources carrying it can be changed or deleted.
        _statement("ChangeOwnNetworkAndTemplates", changes, [ec2_any], Condition=tagged),
        # Creating into an existing VPC/subnet and launching from images touch resources bgtool
        # does not tag (the image, a VPC of network.existing): named here without conditions.
        _statement("UseImagesAndNetwork", ["ec2:RunInstances", "ec2:CreateSecurityGroup", "ec2:CreateSubnet",
                                            "ec2:CreateRouteTable", "ec2:CreateVpcEndpoint", "ec2:CreateNatGateway"],
                   [scope.arn("ec2", "image/*", account=False), scope.arn("ec2", "vpc/*"),
                    scope.arn("ec2", "subnet/*"), scope.arn("ec2", "elastic-ip/*"),
                    scope.arn("ec2", "network-interface/*"), scope.arn("ec2", "security-group/*"),
                    scope.arn("ec2", "key-pair/*")]),
        _statement("LoadBalancerTargetGroupsListeners", ELB_WRITES,
                   [*_load_balancers(scope, config), scope.arn(elb, f"targetgroup/{name}-*/*")]),
        _statement("AutoScalingGroups", ASG_WRITES,
                   [scope.arn("autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{name}-*")]),
        _statement("Alarms", ALARM_WRITES, [scope.arn("cloudwatch", f"alarm:{name}-*")]),
        _statement("Dashboard", DASHBOARD_WRITES, [scope.dashboard_arn]),
        _statement("ServiceLinkedRoles", ["iam:CreateServiceLinkedRole"],
                   [f"arn:{scope.partition}:iam::{scope.account}:role/aws-service-role/*"],
                   Condition={"StringEquals": {"iam:AWSServiceName": _linked_services(config)}}),
    ]
    if config.alb.access_logs:
        out.append(_statement("AccessLogBucket", LOG_BUCKET_WRITES, [scope.log_bucket]))
    if config.dns is not None:
        out += _dns_writes(scope, config.dns)
    if config.workers is not None:
        out.append(_statement("WorkerQueue", QUEUE_WRITES, [scope.queues]))
    if config.state_store is not None:
        out += _store_writes(scope, config.state_store, config.app.compute != "ecs")
    if config.app.compute == "ecs":
        out += _ecs_writes(scope, tagging, tagged)
    return out


def _linked_services(config: Environment) -> list[str]:
    """Services whose service-linked role the first apply in an account may have to create."""
    services = ["autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com"]
    if config.state_store is not None and config.state_store.kind == "elasticache":
        services.append("elasticache.amazonaws.com")
    if config.app.compute == "ecs":
        services += ["ecs.amazonaws.com", "ecs.application-autoscaling.amazonaws.com"]
    return services


def _load_balancers(scope: Scope, config: Environment) -> list[str]:
    """The shared load balancer, and in DNS mode each color's own (`<name>-blue`, `<name>-green`)."""
    names = [scope.name]
    if config.traffic.mode == "dns":
        names += [f"{scope.name}-{color}" for color in ("blue", "green")]
    kinds = ("loadbalancer", "listener", "listener-rule")
    return [scope.arn("elasticloadbalancing", f"{kind}/app/{n}/*") for n in names for kind in kinds]


def _dns_writes(scope: Scope, dns: DnsSettings) -> list[dict[str, Any]]:
    """The two weighted records only: Route 53 scopes a record change by zone, record name and type."""
    zone = scope.zone(dns.zone_id)
    only_the_record = {"ForAllValues:StringEquals": {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [dns.record.rstrip(".").lower()],
        "route53:ChangeResourceRecordSetsRecordTypes": list(RECORD_TYPES),
    }}
    out = [
        _statement("WeightedRecords", RECORD_WRITES, [zone], Condition=only_the_record),
        _statement("WaitForRecordChanges", CHANGE_READS, [f"arn:{scope.partition}:route53:::change/*"]),
    ]
    if dns.zone_id is None:
        # Route 53 has no tag conditions: the zone's own writes can only be scoped to hosted zones.
        out += [_statement("CreateHostedZone", ZONE_CREATE, ["*"]),
                _statement("OwnHostedZone", ZONE_WRITES, [zone])]
    return out


def wildcard_writes(document: dict[str, Any]) -> list[str]:
    """Actions in DOCUMENT that grant more than reads through a wildcard (what review forbids)."""
    bad = []
    for statement in document["Statement"]:
        for action in statement["Action"]:
            verb = action.split(":", 1)[-1]
            if "*" in action and not verb.startswith(("Describe", "Get", "List")):
                bad.append(action)
    return bad
