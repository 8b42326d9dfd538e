output "kind" {
  description = "dynamodb or elasticache."
  value       = var.kind
}

output "name" {
  description = "The table name (dynamodb) or the replication group ID (elasticache)."
  value       = local.store_name
}

output "arn" {
  description = "ARN of the table or the replication group."
  value       = local.dynamodb ? aws_dynamodb_table.this[0].arn : aws_elasticache_replication_group.this[0].arn
}

output "endpoint" {
  description = "elasticache: the primary endpoint (TLS, port 6379); dynamodb: null (the regional endpoint)."
  value       = local.elasticache ? aws_elasticache_replication_group.this[0].primary_endpoint_address : null
}

output "user" {
  description = "elasticache: the IAM-authenticated user the instances connect as; dynamodb: null."
  value       = local.elasticache ? aws_elasticache_user.app[0].user_name : null
}

output "instance_profile_name" {
  description = "Instance profile for both colors' instances: access to the store and nothing else (null with task_role_name)."
  value       = try(aws_iam_instance_profile.app[0].name, null)
}
