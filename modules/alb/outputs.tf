output "alb_arn" {
  description = "ARN of the load balancer."
  value       = aws_lb.this.arn
}

output "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (the CloudWatch LoadBalancer dimension)."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the load balancer (for alias records)."
  value       = aws_lb.this.zone_id
}

output "alb_security_group_id" {
  description = "ID of the load balancer's security group (<name>-alb)."
  value       = aws_security_group.alb.id
}

output "instance_security_group_id" {
  description = "ID of the instances' security group (<name>-instances)."
  value       = aws_security_group.instances.id
}

output "target_group_arns" {
  description = "Map of color (blue, green) to target group ARN."
  value       = { for color, tg in aws_lb_target_group.this : color => tg.arn }
}

output "target_group_arn_suffixes" {
  description = "Map of color (blue, green) to target group ARN suffix (the CloudWatch TargetGroup dimension)."
  value       = { for color, tg in aws_lb_target_group.this : color => tg.arn_suffix }
}

output "target_group_names" {
  description = "Map of color (blue, green) to target group name."
  value       = { for color, tg in aws_lb_target_group.this : color => tg.name }
}
