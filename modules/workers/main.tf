locals {
  version_slug = replace(var.app_version, "/[^A-Za-z0-9._-]/", "-")

  worker_tags = merge(var.tags, {
    "bgtool:env"       = var.environment
    "bgtool:color"     = var.color
    "bgtool:version"   = var.app_version
    "bgtool:role"      = "worker"
    "bgtool:queue-url" = var.queue_url
    Name               = "${var.name}-${var.color}-workers"
  })

  # The command with everything known here filled in; {worker} is the instance's own id at boot.
  command = replace(replace(replace(replace(replace(var.command,
    "{queue_url}", var.queue_url), "{version}", var.app_version), "{color}", var.color),
  "{python}", "python3"), "{worker}", "$WORKER")

  user_data = <<-EOT
    #!/bin/sh
    # ${var.name} ${var.color} worker ${var.app_version}: consumes ${var.queue_url}
    TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")
    WORKER=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)
    export WORKER
    exec ${local.command}
  EOT
}

# One launch template per version (never a second version of one template: the embedded AWS
# cannot scale a group whose template has two), replaced with its group.
resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-${var.color}-workers-${local.version_slug}-"
  description            = "${var.name} ${var.color} workers ${var.app_version}"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  user_data              = base64encode(local.user_data)
  vpc_security_group_ids = var.security_group_ids

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      encrypted             = true
      volume_size           = 8
      volume_type           = "gp3"
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.worker_tags
  }

  lifecycle {
    create_before_destroy = true
  }
}

# The color's worker group: `desired` workers while the color is live, none while it is idle. A
# switch changes `desired` of both colors' layers in the order of the handover (overlap: the new
# color's workers first; exclusive: the old color's to zero first).
resource "aws_autoscaling_group" "this" {
  name_prefix         = "${var.name}-${var.color}-workers-"
  min_size            = var.desired
  max_size            = var.max_size
  desired_capacity    = var.desired
  vpc_zone_identifier = var.subnet_ids

  # min_size = desired: an apply returns once the workers are in service.
  wait_for_capacity_timeout = var.wait_for_capacity_timeout

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  dynamic "tag" {
    for_each = local.worker_tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [aws_launch_template.this.id]

    precondition {
      condition     = var.desired <= var.max_size
      error_message = "Needs desired <= max_size (got ${var.desired}, ${var.max_size})."
    }
  }
}
