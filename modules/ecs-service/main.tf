locals {
  container_name = "app"

  color_tags = {
    "bgtool:env"   = var.environment
    "bgtool:color" = var.color
  }
  tags = merge(var.tags, local.color_tags)

  dimensions = {
    LoadBalancer = var.alb_arn_suffix
    TargetGroup  = var.target_group_arn_suffix
  }

  # The same three alarms, names and metrics as modules/color: the gate and the bakes read a color's
  # alarms by name (<name>-<color>-<kind>) whatever runs it.
  alarms = {
    "5xx" = {
      description = "Targets of ${var.name} ${var.color} answer 5xx"
      metric_name = "HTTPCode_Target_5XX_Count"
      statistic   = "Sum"
      threshold   = var.target_5xx_count
    }
    "latency" = {
      description = "Targets of ${var.name} ${var.color} answer slowly (average seconds)"
      metric_name = "TargetResponseTime"
      statistic   = "Average"
      threshold   = var.response_time_seconds
    }
    "unhealthy-hosts" = {
      description = "Targets of ${var.name} ${var.color} fail their health checks"
      metric_name = "UnHealthyHostCount"
      statistic   = "Maximum"
      threshold   = var.unhealthy_hosts
    }
  }
}

################################################################################
# Task definition: one revision per version and configuration
################################################################################

resource "aws_ecs_task_definition" "this" {
  # checkov:skip=CKV_AWS_249:The execution and task roles are two roles by construction (modules/ecs-cluster's <name>-ecs-execution and <name>-ecs-task, passed from the base layer's outputs); checkov cannot resolve the remote state and compares two unknowns.
  family                   = "${var.name}-${var.color}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = "${var.image_repository}:${var.app_version}"
    essential              = true
    readonlyRootFilesystem = true
    privileged             = false
    portMappings           = [{ containerPort = var.container_port, protocol = "tcp" }]
    environment            = [for k in sort(keys(var.environment_variables)) : { name = k, value = var.environment_variables[k] }]
    secrets                = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = var.log_group_name
        "awslogs-region"        = var.log_region
        "awslogs-stream-prefix" = var.app_version
      }
    }
  }])

  tags = merge(local.tags, { "bgtool:version" = var.app_version })
}

################################################################################
# Service: the color's tasks in its target group
################################################################################

# ECS rolls a new task definition out in place (deployment controller ECS) and rolls back by
# itself when the new tasks never become healthy (the circuit breaker). Blue/green between the
# colors stays bgtool's: each color is its own service in its own target group. Terraform does not
# wait for a steady state; bgtool's gate judges the color's targets.
resource "aws_ecs_service" "this" {
  name             = "${var.name}-${var.color}"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = var.health_check_grace_period
  wait_for_steady_state              = false
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  deployment_controller {
    type = "ECS"
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = local.container_name
    container_port   = var.container_port
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  tags = merge(local.tags, { Name = "${var.name}-${var.color}" })

  lifecycle {
    precondition {
      condition     = var.min_size <= var.desired && var.desired <= var.max_size
      error_message = "Needs min_size <= desired <= max_size (got ${var.min_size}, ${var.desired}, ${var.max_size})."
    }
  }
}

# The color's capacity bounds: any scaling of the service (a policy, a scheduled action, a later
# release) stays within min_size..max_size, as an Auto Scaling group's would.
resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this.name}"
  min_capacity       = var.min_size
  max_capacity       = var.max_size

  tags = local.tags
}

################################################################################
# Alarms: what the health gate and the bake watch (as modules/color)
################################################################################

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name}-${var.color}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value.metric_name
  statistic           = each.value.statistic
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  period              = var.alarm_period_seconds
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  dimensions          = local.dimensions

  alarm_actions = var.alarm_actions
  ok_actions    = var.alarm_actions

  tags = local.tags
}
