output "cluster_name" {
  description = "Name of the cluster (the environment's name)."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the cluster."
  value       = aws_ecs_cluster.this.arn
}

output "execution_role_arn" {
  description = "ARN of the task execution role (<name>-ecs-execution): image pull, log writes, the named secrets."
  value       = aws_iam_role.execution.arn
}

output "task_role_name" {
  description = "Name of the application's task role (<name>-ecs-task): what a shared session store grants its access to."
  value       = aws_iam_role.task.name
}

output "task_role_arn" {
  description = "ARN of the application's task role (<name>-ecs-task)."
  value       = aws_iam_role.task.arn
}

output "log_group_names" {
  description = "Map of color to its log group (/ecs/<name>/<color>)."
  value       = { for color, group in aws_cloudwatch_log_group.color : color => group.name }
}

output "region" {
  description = "Region of the cluster and the log groups (the awslogs driver's region)."
  value       = data.aws_region.current.name
}
