output "color" {
  description = "The color of this stack (blue or green)."
  value       = var.color
}

output "version" {
  description = "The application version the instances run."
  value       = var.app_version
}

output "asg_name" {
  description = "Name of the Auto Scaling group (<name>-<color>-<suffix>; changes with every new launch template)."
  value       = aws_autoscaling_group.this.name
}

output "asg_arn" {
  description = "ARN of the Auto Scaling group."
  value       = aws_autoscaling_group.this.arn
}

output "launch_template_id" {
  description = "ID of the launch template."
  value       = aws_launch_template.this.id
}

output "launch_template_name" {
  description = "Name of the launch template (<name>-<color>-<version>-<suffix>)."
  value       = aws_launch_template.this.name
}

output "alarm_names" {
  description = "Names of the color's alarms: <name>-<color>-5xx, -latency, -unhealthy-hosts."
  value       = [for a in aws_cloudwatch_metric_alarm.this : a.alarm_name]
}

output "alarm_arns" {
  description = "ARNs of the color's alarms."
  value       = [for a in aws_cloudwatch_metric_alarm.this : a.arn]
}
