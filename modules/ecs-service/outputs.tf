output "color" {
  description = "The color of this stack (blue or green)."
  value       = var.color
}

output "version" {
  description = "The application version the tasks run (the image tag)."
  value       = var.app_version
}

output "image" {
  description = "The container image the tasks run (REPOSITORY:VERSION)."
  value       = "${var.image_repository}:${var.app_version}"
}

output "service_name" {
  description = "Name of the ECS service (<name>-<color>)."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN of the task definition revision the service runs."
  value       = aws_ecs_task_definition.this.arn
}

output "alarm_names" {
  description = "Names of the color's alarms: <name>-<color>-5xx, -latency, -unhealthy-hosts."
  value       = [for a in aws_cloudwatch_metric_alarm.this : a.alarm_name]
}

output "alarm_arns" {
  description = "ARNs of the color's alarms."
  value       = [for a in aws_cloudwatch_metric_alarm.this : a.arn]
}
