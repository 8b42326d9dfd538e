output "service_name" {
  description = "Name of the color's worker service (<name>-<color>-workers)."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN of the workers' task definition revision."
  value       = aws_ecs_task_definition.this.arn
}

output "desired" {
  description = "Workers the service runs."
  value       = aws_ecs_service.this.desired_count
}
