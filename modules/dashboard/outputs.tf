output "name" {
  description = "Name of the dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "arn" {
  description = "ARN of the dashboard (arn:PARTITION:cloudwatch::ACCOUNT:dashboard/NAME)."
  value       = aws_cloudwatch_dashboard.this.dashboard_arn
}
