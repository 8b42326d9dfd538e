output "record" {
  description = "The weighted name."
  value       = var.record
}

output "weights" {
  description = "Map of color to the share of DNS answers it receives."
  value       = { for color, r in aws_route53_record.color : color => r.weighted_routing_policy[0].weight }
}

output "effective_ttl" {
  description = "How long resolvers may cache an answer: 60 s for an alias to a load balancer, var.ttl for a CNAME."
  value       = var.ttl == null ? 60 : var.ttl
}
