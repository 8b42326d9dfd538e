variable "name" {
  description = "Name prefix (the environment's `name`): the group is <name>-<color>-*, the alarms <name>-<color>-<kind>."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must be 2-21 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "environment" {
  description = "bgtool environment (the environments/ENV.yaml file name); tagged as bgtool:env."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.environment))
    error_message = "The environment must be 1-31 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "color" {
  description = "The color this stack is: blue or green."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["blue", "green"], var.color)
    error_message = "The color must be \"blue\" or \"green\"."
  }
}

variable "app_version" {
  description = "Application version this color runs; a new version replaces the launch template and the Auto Scaling group (fresh instances)."
  type        = string
  nullable    = false

  # The full version pattern is the environment schema's, rendered into the color layer's own
  # validation (one rule); the module only guards what its resource names need.
  validation {
    condition     = length(var.app_version) > 0 && length(var.app_version) <= 64
    error_message = "The app_version must be 1-64 characters."
  }
}

variable "desired" {
  description = "Desired number of instances (0 for a retired color)."
  type        = number
  nullable    = false

  validation {
    condition     = var.desired >= 0 && var.desired <= 1000 && floor(var.desired) == var.desired
    error_message = "The desired capacity must be an integer between 0 and 1000."
  }
}

variable "min_size" {
  description = "Minimum number of instances of the Auto Scaling group."
  type        = number
  nullable    = false

  validation {
    condition     = var.min_size >= 0 && var.min_size <= 1000 && floor(var.min_size) == var.min_size
    error_message = "The min_size must be an integer between 0 and 1000."
  }
}

variable "max_size" {
  description = "Maximum number of instances of the Auto Scaling group."
  type        = number
  nullable    = false

  validation {
    condition     = var.max_size >= 1 && var.max_size <= 1000 && floor(var.max_size) == var.max_size
    error_message = "The max_size must be an integer between 1 and 1000."
  }
}

variable "ami_id" {
  description = "AMI the instances boot from."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "The ami_id must look like ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  description = "EC2 instance type, for example t3.micro."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "The instance_type must look like t3.micro."
  }
}

variable "subnet_ids" {
  description = "Subnets the Auto Scaling group launches instances in."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) >= 1 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "Give at least one subnet ID like subnet-0123456789abcdef0."
  }
}

variable "security_group_ids" {
  description = "Security groups of the instances."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.security_group_ids) >= 1 && alltrue([for s in var.security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", s))])
    error_message = "Give at least one security group ID like sg-0123456789abcdef0."
  }
}

variable "target_group_arn" {
  description = "ARN of this color's target group; the Auto Scaling group registers its instances there."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:elasticloadbalancing:[^:]+:[0-9]{12}:targetgroup/", var.target_group_arn))
    error_message = "The target_group_arn must be an Elastic Load Balancing target group ARN."
  }
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of this color's target group (the CloudWatch TargetGroup dimension)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^targetgroup/", var.target_group_arn_suffix))
    error_message = "The target_group_arn_suffix must look like targetgroup/<name>/<id>."
  }
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (the CloudWatch LoadBalancer dimension)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^app/", var.alb_arn_suffix))
    error_message = "The alb_arn_suffix must look like app/<name>/<id>."
  }
}

variable "user_data" {
  description = "User data script (plain text; the module base64-encodes it)."
  type        = string
  nullable    = false

  validation {
    condition     = length(var.user_data) >= 1 && length(base64encode(var.user_data)) <= 16384
    error_message = "The user_data must be non-empty and at most 16 KiB once base64-encoded."
  }
}

variable "key_name" {
  description = "EC2 key pair for SSH access to the instances (host checks); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.key_name == null || can(regex("^.{1,255}$", var.key_name))
    error_message = "The key_name must be null or 1-255 characters."
  }
}

variable "iam_instance_profile_name" {
  description = "Name of an IAM instance profile for the instances; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.iam_instance_profile_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,128}$", var.iam_instance_profile_name))
    error_message = "The iam_instance_profile_name must be null or a valid instance profile name."
  }
}

variable "imds_hop_limit" {
  description = "Hop limit of the instance metadata service's PUT response (IMDSv2 is always required). 1 keeps the token on the instance; 2 lets containers on the instance reach it."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = var.imds_hop_limit >= 1 && var.imds_hop_limit <= 64 && floor(var.imds_hop_limit) == var.imds_hop_limit
    error_message = "The imds_hop_limit must be an integer between 1 and 64."
  }
}

variable "root_volume" {
  description = "Root EBS volume of the instances, always encrypted: device_name (the AMI's root device), size_gb, type, and kms_key_id (null: the account's default EBS key)."
  type = object({
    device_name = optional(string, "/dev/xvda")
    size_gb     = optional(number, 8)
    type        = optional(string, "gp3")
    kms_key_id  = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = can(regex("^/dev/[a-z0-9]+$", var.root_volume.device_name))
    error_message = "The root_volume.device_name must look like /dev/xvda."
  }

  validation {
    condition     = var.root_volume.size_gb >= 1 && var.root_volume.size_gb <= 16384 && floor(var.root_volume.size_gb) == var.root_volume.size_gb
    error_message = "The root_volume.size_gb must be an integer between 1 and 16384."
  }

  validation {
    condition     = contains(["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"], var.root_volume.type)
    error_message = "The root_volume.type must be one of gp3, gp2, io1, io2, st1, sc1, standard."
  }

  validation {
    condition     = var.root_volume.kms_key_id == null || can(regex("^arn:aws[a-z-]*:kms:", var.root_volume.kms_key_id))
    error_message = "The root_volume.kms_key_id must be null or a KMS key ARN."
  }
}

variable "health_check_grace_period" {
  description = "Seconds after launch before the Auto Scaling group trusts the load balancer's health checks."
  type        = number
  default     = 120
  nullable    = false

  validation {
    condition     = var.health_check_grace_period >= 0 && var.health_check_grace_period <= 7200
    error_message = "The health_check_grace_period must be between 0 and 7200 seconds."
  }
}

variable "wait_for_capacity_timeout" {
  description = "How long Terraform waits for the new group's instances to be in service and healthy in the target group before failing (and keeping the old group)."
  type        = string
  default     = "10m"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9]+[smh]$", var.wait_for_capacity_timeout))
    error_message = "The wait_for_capacity_timeout must be a duration like 600s, 10m or 1h."
  }
}

variable "target_5xx_count" {
  description = "The 5xx alarm fires when the target group's HTTPCode_Target_5XX_Count sum in a period exceeds this."
  type        = number
  nullable    = false

  validation {
    condition     = var.target_5xx_count >= 1
    error_message = "The target_5xx_count must be at least 1."
  }
}

variable "response_time_seconds" {
  description = "The latency alarm fires when the target group's average TargetResponseTime in a period exceeds this many seconds."
  type        = number
  nullable    = false

  validation {
    condition     = var.response_time_seconds > 0 && var.response_time_seconds <= 60
    error_message = "The response_time_seconds must be greater than 0 and at most 60."
  }
}

variable "unhealthy_hosts" {
  description = "The unhealthy-hosts alarm fires when the target group's maximum UnHealthyHostCount in a period exceeds this."
  type        = number
  nullable    = false

  validation {
    condition     = var.unhealthy_hosts >= 0
    error_message = "The unhealthy_hosts threshold must be 0 or more."
  }
}

variable "alarm_period_seconds" {
  description = "Period of the alarms' metric statistics, in seconds."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = contains([10, 30, 60, 120, 300, 600, 900, 3600], var.alarm_period_seconds)
    error_message = "The alarm_period_seconds must be one of 10, 30, 60, 120, 300, 600, 900, 3600."
  }
}

variable "alarm_evaluation_periods" {
  description = "Number of periods an alarm's condition must hold before it fires."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = var.alarm_evaluation_periods >= 1 && var.alarm_evaluation_periods <= 100
    error_message = "The alarm_evaluation_periods must be between 1 and 100."
  }
}

variable "alarm_actions" {
  description = "ARNs (for example SNS topics) notified when an alarm fires or recovers."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for a in var.alarm_actions : can(regex("^arn:", a))])
    error_message = "Every alarm action must be an ARN."
  }
}

variable "tags" {
  description = "Extra tags for every resource, also propagated to the instances and their volumes."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be 1-128 characters and tag values at most 256 characters."
  }
}

variable "instance_tags" {
  description = "Extra tags for the instances only (e.g. the shared session store's name, which the embedded AWS's data plane reads)."
  type        = map(string)
  default     = {}
  nullable    = false
}
