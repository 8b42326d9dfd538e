output "alb_arn" {
  description = "ARN of the load balancer."
  value       = one(aws_lb.this[*].arn)
}

output "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (the CloudWatch LoadBalancer dimension)."
  value       = one(aws_lb.this[*].arn_suffix)
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = one(aws_lb.this[*].dns_name)
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the load balancer (for alias records)."
  value       = one(aws_lb.this[*].zone_id)
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

output "color_load_balancers" {
  description = "Map of color to its load balancer's arn, arn_suffix, dns_name and zone_id: its own in DNS mode, the shared one otherwise."
  value = {
    for color in local.colors : color => {
      arn        = var.per_color_load_balancers ? aws_lb.color[color].arn : aws_lb.this[0].arn
      arn_suffix = var.per_color_load_balancers ? aws_lb.color[color].arn_suffix : aws_lb.this[0].arn_suffix
      dns_name   = var.per_color_load_balancers ? aws_lb.color[color].dns_name : aws_lb.this[0].dns_name
      zone_id    = var.per_color_load_balancers ? aws_lb.color[color].zone_id : aws_lb.this[0].zone_id
    }
  }
}
