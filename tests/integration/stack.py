"""A minimal load balancer stack made with boto3 alone, for data plane checks that need no Terraform.

Two target groups (blue, green) with an Auto Scaling group each, a weighted production listener and
a test listener, tagged like bgtool's own instances: what the data plane follows, in a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from bgtool.aws.session import EMBEDDED_CREDENTIALS


@dataclass(frozen=True)
class Stack:
    lb_arn: str
    production_arn: str
    test_arn: str
    groups: dict[str, str]
    """color -> target group arn"""

    def forward(self, blue: int, green: int) -> list[dict[str, Any]]:
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": self.groups["blue"], "Weight": blue},
            {"TargetGroupArn": self.groups["green"], "Weight": green}]}}]


def clients(endpoint: str, region: str = "us-east-1") -> dict[str, Any]:
    session = boto3.session.Session(aws_access_key_id=EMBEDDED_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=EMBEDDED_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                    region_name=region)
    return {name: session.client(name, endpoint_url=endpoint) for name in ("ec2", "elbv2", "autoscaling")}


def create_stack(endpoint: str, name: str, env: str, versions: dict[str, str], *, size: int = 2,
                 interval: int = 5, production_port: int = 80, test_port: int = 8080) -> Stack:
    c = clients(endpoint)
    ec2, elb, asg = c["ec2"], c["elbv2"], c["autoscaling"]
    vpc = ec2.create_vpc(CidrBlock="10.250.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.250.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    groups = {}
    for color, version in versions.items():
        groups[color] = elb.create_target_group(
            Name=f"{name}-{color}", Protocol="HTTP", Port=8000, VpcId=vpc, HealthCheckPath="/health",
            HealthCheckIntervalSeconds=interval, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        tags = [{"Key": "bgtool:env", "Value": env}, {"Key": "bgtool:color", "Value": color},
                {"Key": "bgtool:version", "Value": version}]
        ec2.create_launch_template(LaunchTemplateName=f"{name}-{color}", LaunchTemplateData={
            "ImageId": "ami-1e749f67", "InstanceType": "t3.micro",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}]})
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"{name}-{color}", LaunchTemplate={"LaunchTemplateName": f"{name}-{color}"},
            MinSize=0, MaxSize=8, DesiredCapacity=size, VPCZoneIdentifier=",".join(subnets),
            TargetGroupARNs=[groups[color]])
    stack = Stack(lb, "", "", groups)
    production = elb.create_listener(LoadBalancerArn=lb, Port=production_port, Protocol="HTTP",
                                     DefaultActions=stack.forward(100, 0))["Listeners"][0]["ListenerArn"]
    test = elb.create_listener(LoadBalancerArn=lb, Port=test_port, Protocol="HTTP", DefaultActions=[
        {"Type": "forward", "TargetGroupArn": groups["green"]}])["Listeners"][0]["ListenerArn"]
    return Stack(lb, production, test, groups)
