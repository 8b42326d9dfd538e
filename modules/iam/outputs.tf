output "role_arns" {
  description = "Map of role (plan, drift, apply) to role ARN: the values of the repository variables BGTOOL_PLAN_ROLE_ARN, BGTOOL_DRIFT_ROLE_ARN and BGTOOL_APPLY_ROLE_ARN."
  value       = { for role, r in aws_iam_role.this : role => r.arn }
}

output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC identity provider the roles trust."
  value       = local.provider_arn
}
