output "asg_name" {
  description = "Name of the color's worker Auto Scaling group."
  value       = aws_autoscaling_group.this.name
}

output "desired" {
  description = "Workers the group runs."
  value       = aws_autoscaling_group.this.desired_capacity
}
