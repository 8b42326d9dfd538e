locals {
  dynamodb    = var.kind == "dynamodb"
  elasticache = var.kind == "elasticache"
  store_name  = "${var.name}-sessions"
  instances   = var.task_role_name == null
}

################################################################################
# DynamoDB: one item per session, expiring by TTL
################################################################################

resource "aws_dynamodb_table" "this" {
  # checkov:skip=CKV_AWS_119:Encrypted at rest always; with the AWS owned key unless kms_key_arn names a customer managed key (a setting, state_store.kms_key_arn).
  # checkov:skip=CKV2_AWS_16:On-demand capacity (PAY_PER_REQUEST) scales by itself; Application Auto Scaling applies to provisioned tables only.
  count = local.dynamodb ? 1 : 0

  name                        = local.store_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = var.tags
}

################################################################################
# ElastiCache: a replication group in the instances' subnets, IAM authentication
################################################################################

resource "aws_security_group" "cache" {
  count = local.elasticache ? 1 : 0

  name_prefix = "${local.store_name}-"
  description = "Session store of ${var.name}: reachable from the application instances only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "cache" {
  count = local.elasticache ? 1 : 0

  description                  = "Sessions from the application instances"
  security_group_id            = aws_security_group.cache[0].id
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_subnet_group" "this" {
  count = local.elasticache ? 1 : 0

  name       = local.store_name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

# The "default" user must belong to every user group; it is switched off, so only IAM-authenticated
# users connect.
resource "aws_elasticache_user" "default" {
  count = local.elasticache ? 1 : 0

  user_id       = "${local.store_name}-default"
  user_name     = "default"
  engine        = "redis"
  access_string = "off -@all"

  authentication_mode {
    type = "no-password-required"
  }

  tags = var.tags
}

resource "aws_elasticache_user" "app" {
  count = local.elasticache ? 1 : 0

  user_id       = "${local.store_name}-app"
  user_name     = "${local.store_name}-app"
  engine        = "redis"
  access_string = "on ~session:* +@all -@dangerous"

  authentication_mode {
    type = "iam"
  }

  tags = var.tags
}

resource "aws_elasticache_user_group" "this" {
  count = local.elasticache ? 1 : 0

  user_group_id = local.store_name
  engine        = "redis"
  user_ids      = [aws_elasticache_user.default[0].user_id, aws_elasticache_user.app[0].user_id]
  tags          = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  # checkov:skip=CKV_AWS_31:Clients authenticate with IAM (an RBAC user group with authentication_mode iam), not with a shared AUTH token.
  # checkov:skip=CKV_AWS_191:Encrypted at rest always; with the AWS managed key unless kms_key_arn names a customer managed key (a setting, state_store.kms_key_arn).
  count = local.elasticache ? 1 : 0

  replication_group_id       = local.store_name
  description                = "Sessions shared by the blue and green colors of ${var.name}"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.node_type
  num_cache_clusters         = var.nodes
  port                       = 6379
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this[0].name
  security_group_ids         = [aws_security_group.cache[0].id]
  user_group_ids             = [aws_elasticache_user_group.this[0].user_group_id]
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auto_minor_version_upgrade = true
  snapshot_retention_limit   = 7
  apply_immediately          = false
  tags                       = var.tags
}

################################################################################
# The application instances' role: read and write sessions, nothing else
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "sessions" {
  dynamic "statement" {
    for_each = local.dynamodb ? [1] : []

    content {
      sid       = "Sessions"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [aws_dynamodb_table.this[0].arn]
    }
  }

  dynamic "statement" {
    for_each = local.elasticache ? [1] : []

    content {
      sid       = "Sessions"
      actions   = ["elasticache:Connect"]
      resources = [aws_elasticache_replication_group.this[0].arn, aws_elasticache_user.app[0].arn]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "SessionsKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

# EC2 instances: a role and instance profile of the store's own. ECS tasks: the cluster's task role
# (task_role_name) gets the same access, and no EC2 role is made.
resource "aws_iam_role" "app" {
  count = local.instances ? 1 : 0

  name_prefix        = "${local.store_name}-app-"
  description        = "Application instances of ${var.name} (both colors): the shared session store"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "sessions" {
  name   = "sessions"
  role   = local.instances ? one(aws_iam_role.app[*].id) : var.task_role_name
  policy = data.aws_iam_policy_document.sessions.json
}

resource "aws_iam_instance_profile" "app" {
  count = local.instances ? 1 : 0

  name_prefix = "${local.store_name}-app-"
  role        = aws_iam_role.app[0].name
  tags        = var.tags
}

moved {
  from = aws_iam_role.app
  to   = aws_iam_role.app[0]
}

moved {
  from = aws_iam_instance_profile.app
  to   = aws_iam_instance_profile.app[0]
}
