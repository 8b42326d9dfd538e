variable "name" {
  description = "Name of the dashboard (bgtool names it after the environment's load balancer: <name>). Dashboard names are unique per account, not per region."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.name))
    error_message = "The name must be 1-255 characters: letters, digits, '-' and '_'."
  }
}

variable "region" {
  description = "Region of the load balancer metrics the graphs show (a dashboard itself belongs to no region)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1."
  }
}

variable "colors" {
  description = "Per color (blue and green): the CloudWatch dimensions of its traffic, load_balancer_arn_suffix (LoadBalancer: the shared load balancer, or the color's own in DNS mode) and target_group_arn_suffix (TargetGroup)."
  type = map(object({
    load_balancer_arn_suffix = string
    target_group_arn_suffix  = string
  }))
  nullable = false

  validation {
    condition     = toset(keys(var.colors)) == toset(["blue", "green"])
    error_message = "Give exactly the two colors: blue and green."
  }

  validation {
    condition = alltrue([
      for c in values(var.colors) :
      can(regex("^app/[^/]+/[^/]+$", c.load_balancer_arn_suffix)) && can(regex("^targetgroup/[^/]+/[^/]+$", c.target_group_arn_suffix))
    ])
    error_message = "load_balancer_arn_suffix must look like app/NAME/ID and target_group_arn_suffix like targetgroup/NAME/ID (the arn_suffix attributes)."
  }
}

variable "period_seconds" {
  description = "Period of every graph's datapoints: load balancer metrics are published per 60 s, so a shorter period shows nothing more."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.period_seconds >= 60 && var.period_seconds % 60 == 0 && var.period_seconds <= 86400
    error_message = "The period_seconds must be a multiple of 60 between 60 and 86400."
  }
}
