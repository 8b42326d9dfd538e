locals {
  container_name = "worker"

  tags = merge(var.tags, {
    "bgtool:env"       = var.environment
    "bgtool:color"     = var.color
    "bgtool:role"      = "worker"
    "bgtool:queue-url" = var.queue_url
  })

  # The command with everything known here filled in; {worker} is the task's own hostname at start.
  command = replace(replace(replace(replace(replace(var.command,
    "{queue_url}", var.queue_url), "{version}", var.app_version), "{color}", var.color),
  "{python}", "python3"), "{worker}", "$HOSTNAME")
}

################################################################################
# Task definition: the application's image, the worker's command
################################################################################

resource "aws_ecs_task_definition" "this" {
  # checkov:skip=CKV_AWS_249:The execution and task roles are two roles by construction (modules/ecs-cluster's <name>-ecs-execution and <name>-ecs-task, passed from the base layer's outputs); checkov cannot resolve the remote state and compares two unknowns.
  family                   = "${var.name}-${var.color}-workers"
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
    command                = ["sh", "-c", "exec ${local.command}"]
    environment            = [for k in sort(keys(var.environment_variables)) : { name = k, value = var.environment_variables[k] }]
    secrets                = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = var.log_group_name
        "awslogs-region"        = var.log_region
        "awslogs-stream-prefix" = "workers-${var.app_version}"
      }
    }
  }])

  tags = merge(local.tags, { "bgtool:version" = var.app_version })
}

################################################################################
# Service: the color's workers, in no target group
################################################################################

# `desired` workers while the color is live, none while it is idle: a switch changes `desired` of
# both colors' layers in the order of the handover (overlap: the new color's first; exclusive: the
# old color's to zero first). Terraform does not wait for a steady state; bgtool waits for the
# workers itself.
resource "aws_ecs_service" "this" {
  name             = "${var.name}-${var.color}-workers"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
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

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  tags = merge(local.tags, { Name = "${var.name}-${var.color}-workers" })

  lifecycle {
    precondition {
      condition     = var.desired <= var.max_size
      error_message = "Needs desired <= max_size (got ${var.desired}, ${var.max_size})."
    }
  }
}
