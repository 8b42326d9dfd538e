data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  colors = toset(["blue", "green"])

  # An ECR repository (ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/PATH) is pulled with the execution
  # role's rights on exactly that repository; any other registry is public (no pull rights needed).
  ecr = try(regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/(.+)$", var.image_repository), null)
  ecr_repository_arn = local.ecr == null ? null : format(
    "arn:%s:ecr:%s:%s:repository/%s", data.aws_partition.current.partition, local.ecr[1], local.ecr[0], local.ecr[2]
  )

  secretsmanager_arns = [for arn in values(var.secrets) : arn if can(regex(":secretsmanager:", arn))]
  ssm_parameter_arns  = [for arn in values(var.secrets) : arn if can(regex(":ssm:", arn))]
}

################################################################################
# Cluster: Fargate only, Container Insights on
################################################################################

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]
}

################################################################################
# Log groups: one per color, kept when the color's service or task definition is replaced
################################################################################

resource "aws_cloudwatch_log_group" "color" {
  # checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts every log group at rest; a customer managed key is a setting (ecs.log_kms_key_arn), whose key policy must admit the logs service first.
  for_each = local.colors

  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn

  tags = merge(var.tags, { "bgtool:color" = each.key })
}

################################################################################
# Roles: the execution role (ECS itself: pull, logs, secrets) and the task role (the application)
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Only tasks of this account may use the roles (no confused deputy).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  description        = "ECS task execution of ${var.name} (both colors): pull the image, write the logs, read the named secrets"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.color : "${group.arn}:log-stream:*"]
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [local.ecr_repository_arn]

    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    # ECR's registry login token is not scoped to a repository (the action takes no resource).
    for_each = local.ecr_repository_arn == null ? [] : [1]

    content {
      sid       = "RegistryLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = length(local.secretsmanager_arns) == 0 ? [] : [1]

    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secretsmanager_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.ssm_parameter_arns) == 0 ? [] : [1]

    content {
      sid       = "ReadParameters"
      actions   = ["ssm:GetParameters"]
      resources = local.ssm_parameter_arns
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# The application's own role: no rights until the application needs some (attach them here).
resource "aws_iam_role" "task" {
  name               = "${var.name}-ecs-task"
  description        = "The application tasks of ${var.name} (both colors)"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

# The workers (workers in the environment file) consume the queue with the tasks' role: receive,
# delete, extend and give back their messages, and nothing else.
data "aws_iam_policy_document" "queues" {
  count = length(var.queue_arns) > 0 ? 1 : 0

  statement {
    sid       = "ConsumeQueues"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = var.queue_arns
  }
}

resource "aws_iam_role_policy" "queues" {
  count = length(var.queue_arns) > 0 ? 1 : 0

  name   = "queues"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.queues[0].json
}
