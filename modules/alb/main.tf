locals {
  colors = toset(["blue", "green"])

  test_cidrs = var.test_port == null ? [] : distinct(var.test_ingress_cidrs)

  # One ingress rule per (port, CIDR) pair, keyed so that adding a port or a CIDR touches nothing else.
  # The test listener (the unreleased color) has its own, narrower CIDR list.
  alb_ingress = merge(
    {
      for pair in setproduct(distinct(var.listener_ports), distinct(var.ingress_cidrs)) :
      "${pair[0]}-${pair[1]}" => { port = pair[0], cidr = pair[1], what = "Listener port ${pair[0]}" }
    },
    {
      for cidr in local.test_cidrs :
      "${var.test_port}-${cidr}" => { port = var.test_port, cidr = cidr, what = "Test listener port ${var.test_port} (idle color)" }
    },
  )

  instance_egress = {
    for pair in setproduct(distinct(var.instance_egress_ports), distinct(var.instance_egress_cidrs)) :
    "${pair[0]}-${pair[1]}" => { port = pair[0], cidr = pair[1] }
  }

  # The embedded AWS (moto) drops the description of a rule that references a security group,
  # which would show as a perpetual diff; a real account keeps it.
  referenced_rule_description = var.embedded_aws ? null : "Application port ${var.app_port}"
}

################################################################################
# Security groups
################################################################################

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Load balancer ${var.name}: listener ports from the allowed CIDR blocks"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-alb" })
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = local.alb_ingress

  security_group_id = aws_security_group.alb.id
  description       = each.value.what
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr

  tags = var.tags
}

# The load balancer talks only to the instances, on the application port (requests and health checks).
resource "aws_vpc_security_group_egress_rule" "alb" {
  security_group_id            = aws_security_group.alb.id
  description                  = local.referenced_rule_description
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.instances.id

  tags = var.tags
}

resource "aws_security_group" "instances" {
  # checkov:skip=CKV2_AWS_5:The color layers attach this group to their launch templates; they are separate Terraform states, so the scan of this layer cannot see it.
  name        = "${var.name}-instances"
  description = "Instances of ${var.name}: the application port from the load balancer only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-instances" })
}

resource "aws_vpc_security_group_ingress_rule" "instances" {
  security_group_id            = aws_security_group.instances.id
  description                  = local.referenced_rule_description
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.alb.id

  tags = var.tags
}

# Outbound from the instances: only the listed ports (by default HTTPS, for packages and the AWS
# APIs through a NAT gateway or VPC endpoints).
resource "aws_vpc_security_group_egress_rule" "instances" {
  for_each = local.instance_egress

  security_group_id = aws_security_group.instances.id
  description       = "Outbound port ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr

  tags = var.tags
}

################################################################################
# Load balancer and the two target groups
################################################################################

resource "aws_lb" "this" {
  # checkov:skip=CKV_AWS_150:Deletion protection is on by default (enable_deletion_protection); only the embedded AWS, rebuilt for every test run, turns it off.
  # checkov:skip=CKV2_AWS_28:A WAF web ACL is chosen and paid for per account (often by a central security team); associate it with aws_wafv2_web_acl_association outside this module.
  # One shared load balancer unless each color has its own (DNS mode); Terraform moves an existing
  # single instance to index 0 by itself.
  count = var.per_color_load_balancers ? 0 : 1

  name               = var.name
  internal           = var.internal
  load_balancer_type = "application"
  security_groups    = [aws_security_group.alb.id]
  subnets            = var.subnet_ids

  idle_timeout               = var.idle_timeout
  enable_deletion_protection = var.enable_deletion_protection
  drop_invalid_header_fields = var.drop_invalid_header_fields

  dynamic "access_logs" {
    for_each = var.access_logs.enabled ? [1] : []

    content {
      bucket  = aws_s3_bucket.access_logs[0].id
      prefix  = var.access_logs.prefix
      enabled = true
    }
  }

  tags = merge(var.tags, { Name = var.name })

  depends_on = [aws_s3_bucket_policy.access_logs]
}

resource "aws_lb_target_group" "this" {
  # checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the targets stays inside the VPC, open only from the load balancer's security group.
  for_each = local.colors

  name                 = "${var.name}-${each.key}"
  port                 = var.app_port
  protocol             = "HTTP"
  target_type          = var.target_type
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.health_check_path
    matcher             = var.health_check_matcher
    interval            = var.health_check_interval
    timeout             = min(5, var.health_check_interval - 1)
    healthy_threshold   = var.healthy_threshold
    unhealthy_threshold = var.unhealthy_threshold
  }

  tags = merge(var.tags, { Name = "${var.name}-${each.key}", "bgtool:color" = each.key })
}

################################################################################
# DNS mode: one load balancer per color, its listener forwarding to the color's target group
################################################################################

resource "aws_lb" "color" {
  # checkov:skip=CKV_AWS_150:Deletion protection is on by default (enable_deletion_protection); only the embedded AWS, rebuilt for every test run, turns it off.
  # checkov:skip=CKV2_AWS_28:A WAF web ACL is chosen and paid for per account (often by a central security team); associate it with aws_wafv2_web_acl_association outside this module.
  # checkov:skip=CKV2_AWS_20:In DNS mode the color's listener is HTTPS whenever listeners.certificate_arn is set; plain HTTP only on the embedded AWS, which has no certificates.
  for_each = var.per_color_load_balancers ? local.colors : toset([])

  name               = "${var.name}-${each.key}"
  internal           = var.internal
  load_balancer_type = "application"
  security_groups    = [aws_security_group.alb.id]
  subnets            = var.subnet_ids

  idle_timeout               = var.idle_timeout
  enable_deletion_protection = var.enable_deletion_protection
  drop_invalid_header_fields = var.drop_invalid_header_fields

  dynamic "access_logs" {
    for_each = var.access_logs.enabled ? [1] : []

    content {
      bucket  = aws_s3_bucket.access_logs[0].id
      prefix  = "${var.access_logs.prefix}-${each.key}"
      enabled = true
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-${each.key}", "bgtool:color" = each.key })

  depends_on = [aws_s3_bucket_policy.access_logs]
}

# The color's own entry point: production traffic reaches it through the weighted Route 53 records,
# and the idle color's load balancer is its test endpoint.
resource "aws_lb_listener" "color" {
  # checkov:skip=CKV_AWS_2:Plain HTTP only without a certificate (the embedded AWS); with certificate_arn the listener is HTTPS.
  # checkov:skip=CKV_AWS_103:With a certificate, the TLS policy is one of the TLS 1.2+ policies (color_listener.tls_policy).
  # checkov:skip=CKV2_AWS_74:The TLS policy comes from listeners.tls_policy, which the environment schema limits to the TLS 1.2+ policies.
  for_each = aws_lb.color

  load_balancer_arn = each.value.arn
  port              = var.color_listener.port
  protocol          = var.color_listener.certificate_arn == null ? "HTTP" : "HTTPS"
  ssl_policy        = var.color_listener.certificate_arn == null ? null : var.color_listener.tls_policy
  certificate_arn   = var.color_listener.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key].arn
  }

  tags = merge(var.tags, { "bgtool:listener" = "color", "bgtool:color" = each.key })
}
