locals {
  tls      = var.certificate_arn != null
  protocol = local.tls ? "HTTPS" : "HTTP"
  colors   = ["blue", "green"]
}

# Production: a weighted forward to both target groups. A switch, a canary step or a rollback is
# a change of var.weights and nothing else, so `terraform plan` shows exactly the traffic change.
resource "aws_lb_listener" "production" {
  load_balancer_arn = var.alb_arn
  port              = var.production_port
  protocol          = local.protocol
  ssl_policy        = local.tls ? var.tls_policy : null
  certificate_arn   = var.certificate_arn

  default_action {
    type = "forward"

    forward {
      dynamic "target_group" {
        for_each = local.colors

        content {
          arn    = var.target_group_arns[target_group.value]
          weight = var.weights[target_group.value]
        }
      }

      dynamic "stickiness" {
        for_each = var.stickiness_seconds > 0 ? [var.stickiness_seconds] : []

        content {
          enabled  = true
          duration = stickiness.value
        }
      }
    }
  }

  tags = merge(var.tags, { "bgtool:listener" = "production" })

  lifecycle {
    precondition {
      condition     = var.production_port != var.test_port && (!local.tls || !contains([var.production_port, var.test_port], var.http_redirect_port))
      error_message = "The production, test and (with TLS) redirect listeners need distinct ports."
    }
  }
}

# Test: all of its traffic to the test color (normally the idle one), for smoke tests before a switch.
resource "aws_lb_listener" "test" {
  load_balancer_arn = var.alb_arn
  port              = var.test_port
  protocol          = local.protocol
  ssl_policy        = local.tls ? var.tls_policy : null
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = var.target_group_arns[var.test_color]
  }

  tags = merge(var.tags, { "bgtool:listener" = "test" })
}

# With TLS: plain HTTP answers with a permanent redirect to the HTTPS production listener.
# Created after the other listeners' changes, so turning TLS on frees http_redirect_port first
# when the production listener moves away from it.
resource "aws_lb_listener" "redirect" {
  count = local.tls ? 1 : 0

  depends_on = [aws_lb_listener.production, aws_lb_listener.test]

  load_balancer_arn = var.alb_arn
  port              = var.http_redirect_port
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = tostring(var.production_port)
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }

  tags = merge(var.tags, { "bgtool:listener" = "redirect" })
}
