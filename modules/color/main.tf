locals {
  # Launch template names allow [A-Za-z0-9().\-/_]: a version like 1.2.0+build7 becomes 1.2.0-build7.
  version_slug = replace(var.app_version, "/[^A-Za-z0-9._-]/", "-")

  color_tags = {
    "bgtool:env"   = var.environment
    "bgtool:color" = var.color
  }
  instance_tags = merge(var.tags, var.instance_tags, local.color_tags, {
    "bgtool:version" = var.app_version
    Name             = "${var.name}-${var.color}"
  })

  dimensions = {
    LoadBalancer = var.alb_arn_suffix
    TargetGroup  = var.target_group_arn_suffix
  }

  alarms = {
    "5xx" = {
      description = "Targets of ${var.name} ${var.color} answer 5xx"
      metric_name = "HTTPCode_Target_5XX_Count"
      statistic   = "Sum"
      threshold   = var.target_5xx_count
    }
    "latency" = {
      description = "Targets of ${var.name} ${var.color} answer slowly (average seconds)"
      metric_name = "TargetResponseTime"
      statistic   = "Average"
      threshold   = var.response_time_seconds
    }
    "unhealthy-hosts" = {
      description = "Targets of ${var.name} ${var.color} fail their health checks"
      metric_name = "UnHealthyHostCount"
      statistic   = "Maximum"
      threshold   = var.unhealthy_hosts
    }
  }
}

################################################################################
# Launch template: immutable, one per version and configuration
################################################################################

# Everything that defines an instance. When it changes, the launch template is replaced (never
# given a second version) and the Auto Scaling group with it, so a deploy always gets fresh
# instances and the old group is destroyed only once the new one is healthy.
resource "terraform_data" "instance_config" {
  input = sha256(jsonencode({
    ami_id               = var.ami_id
    instance_type        = var.instance_type
    user_data            = var.user_data
    security_group_ids   = sort(var.security_group_ids)
    key_name             = var.key_name
    iam_instance_profile = var.iam_instance_profile_name
    imds_hop_limit       = var.imds_hop_limit
    root_volume          = var.root_volume
  }))
}

# No `tags` on the template itself: instances and volumes are tagged through tag_specifications.
# (The embedded AWS echoes a provider's default_tags back as a "launch-template" tag specification,
# a perpetual diff; bgtool therefore renders the color layers of the embedded AWS without
# default_tags, passing the same tags through var.tags. See the README.)
resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-${var.color}-${local.version_slug}-"
  description            = "${var.name} ${var.color} ${var.app_version}"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  key_name               = var.key_name
  user_data              = base64encode(var.user_data)
  vpc_security_group_ids = var.security_group_ids

  # IMDSv2 only: a token is required, and with a hop limit of 1 a container or a forwarded
  # request on the instance cannot reach the metadata service.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.imds_hop_limit
    instance_metadata_tags      = "disabled"
  }

  # The root volume is always encrypted (with the account's default EBS key unless kms_key_id is set).
  block_device_mappings {
    device_name = var.root_volume.device_name

    ebs {
      encrypted             = true
      kms_key_id            = var.root_volume.kms_key_id
      volume_size           = var.root_volume.size_gb
      volume_type           = var.root_volume.type
      delete_on_termination = true
    }
  }

  dynamic "iam_instance_profile" {
    for_each = var.iam_instance_profile_name == null ? [] : [var.iam_instance_profile_name]

    content {
      name = iam_instance_profile.value
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.instance_tags
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.instance_tags
  }

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [terraform_data.instance_config]
  }
}

################################################################################
# Auto Scaling group: replaced with its launch template
################################################################################

resource "aws_autoscaling_group" "this" {
  name_prefix         = "${var.name}-${var.color}-"
  min_size            = var.min_size
  max_size            = var.max_size
  desired_capacity    = var.desired
  vpc_zone_identifier = var.subnet_ids
  target_group_arns   = [var.target_group_arn]

  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_period

  # Create and update wait until `desired` instances are healthy in the target group, so with
  # create_before_destroy the old group (old version) is destroyed only after the new one serves.
  # A desired of 0 waits for nothing.
  wait_for_capacity_timeout = var.wait_for_capacity_timeout
  wait_for_elb_capacity     = var.desired

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  dynamic "tag" {
    for_each = local.instance_tags

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
      condition     = var.min_size <= var.desired && var.desired <= var.max_size
      error_message = "Needs min_size <= desired <= max_size (got ${var.min_size}, ${var.desired}, ${var.max_size})."
    }
  }
}

################################################################################
# Alarms: what the health gate and the bake watch
################################################################################

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name}-${var.color}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value.metric_name
  statistic           = each.value.statistic
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  period              = var.alarm_period_seconds
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  dimensions          = local.dimensions

  alarm_actions = var.alarm_actions
  ok_actions    = var.alarm_actions

  tags = merge(var.tags, local.color_tags)
}
