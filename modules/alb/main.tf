locals {
  colors = toset(["blue", "green"])

  # One ingress rule per (port, CIDR) pair, keyed so that adding a port or a CIDR touches nothing else.
  alb_ingress = {
    for pair in setproduct(distinct(var.listener_ports), distinct(var.ingress_cidrs)) :
    "${pair[0]}-${pair[1]}" => { port = pair[0], cidr = pair[1] }
  }
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
  description       = "Listener port ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "alb" {
  security_group_id = aws_security_group.alb.id
  description       = "All outbound traffic"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

resource "aws_security_group" "instances" {
  name        = "${var.name}-instances"
  description = "Instances of ${var.name}: the application port from the load balancer only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-instances" })
}

# No description on this rule: the embedded AWS (moto) drops descriptions of rules that reference
# a security group, which would show as a perpetual diff.
resource "aws_vpc_security_group_ingress_rule" "instances" {
  security_group_id            = aws_security_group.instances.id
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.alb.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "instances" {
  security_group_id = aws_security_group.instances.id
  description       = "All outbound traffic"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

################################################################################
# Load balancer and the two target groups
################################################################################

resource "aws_lb" "this" {
  name               = var.name
  internal           = var.internal
  load_balancer_type = "application"
  security_groups    = [aws_security_group.alb.id]
  subnets            = var.subnet_ids

  idle_timeout               = var.idle_timeout
  enable_deletion_protection = var.enable_deletion_protection

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_lb_target_group" "this" {
  for_each = local.colors

  name                 = "${var.name}-${each.key}"
  port                 = var.app_port
  protocol             = "HTTP"
  target_type          = "instance"
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
