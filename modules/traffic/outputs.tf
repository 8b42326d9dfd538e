output "production_listener_arn" {
  description = "ARN of the production listener (weighted forward to both colors)."
  value       = aws_lb_listener.production.arn
}

output "test_listener_arn" {
  description = "ARN of the test listener (all traffic to test_color)."
  value       = aws_lb_listener.test.arn
}

output "redirect_listener_arn" {
  description = "ARN of the HTTP-to-HTTPS redirect listener; null without a certificate."
  value       = one(aws_lb_listener.redirect[*].arn)
}

output "weights" {
  description = "Map of color to the percentage of production traffic it receives."
  value       = { for c in local.colors : c => var.weights[c] }
}

output "test_color" {
  description = "The color the test listener forwards to."
  value       = var.test_color
}
