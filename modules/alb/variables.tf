variable "name" {
  description = "Name of the load balancer; also the prefix of the security groups (<name>-alb, <name>-instances) and target groups (<name>-blue, <name>-green)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must be 2-21 characters (target group names are <name>-green, at most 32): lower-case letters, digits and '-', starting with a letter."
  }
}

variable "vpc_id" {
  description = "ID of the VPC that holds the load balancer, the target groups and the security groups."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "The vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Subnets of the load balancer, in at least two availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "Give at least two subnet IDs like subnet-0123456789abcdef0."
  }
}

variable "internal" {
  description = "Whether the load balancer is internal (true) or internet-facing (false)."
  type        = bool
  default     = false

  validation {
    condition     = var.internal != null
    error_message = "The internal flag must be true or false."
  }
}

variable "ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the listener ports of the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.ingress_cidrs) >= 1 && alltrue([for c in var.ingress_cidrs : can(cidrnetmask(c))])
    error_message = "Give at least one IPv4 CIDR block, for example 0.0.0.0/0."
  }
}

variable "listener_ports" {
  description = "Ports the listeners use (production, test and, with TLS, the HTTP redirect); the load balancer's security group opens them to ingress_cidrs."
  type        = list(number)

  validation {
    condition     = length(var.listener_ports) >= 1 && alltrue([for p in var.listener_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "Give at least one listener port, each an integer between 1 and 65535."
  }
}

variable "app_port" {
  description = "Port the application listens on in the instances; the target groups forward to it and the instances' security group opens it to the load balancer only."
  type        = number

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535 && floor(var.app_port) == var.app_port
    error_message = "The app_port must be an integer between 1 and 65535."
  }
}

variable "health_check_path" {
  description = "HTTP path of the target groups' health check."
  type        = string
  default     = "/health"

  validation {
    condition     = can(regex("^/[!-~]*$", var.health_check_path)) && length(var.health_check_path) <= 1024
    error_message = "The health_check_path must start with '/' and contain printable characters without spaces (at most 1024)."
  }
}

variable "health_check_matcher" {
  description = "HTTP status code(s) a healthy target answers, for example 200 or 200-299."
  type        = string
  default     = "200"

  validation {
    condition     = can(regex("^[1-5][0-9][0-9](-[1-5][0-9][0-9])?$", var.health_check_matcher))
    error_message = "The health_check_matcher must be a status code like 200 or a range like 200-299."
  }
}

variable "health_check_interval" {
  description = "Seconds between health checks of a target."
  type        = number
  default     = 10

  validation {
    condition     = var.health_check_interval >= 5 && var.health_check_interval <= 300
    error_message = "The health_check_interval must be between 5 and 300 seconds."
  }
}

variable "healthy_threshold" {
  description = "Consecutive successful health checks before a target counts as healthy."
  type        = number
  default     = 2

  validation {
    condition     = var.healthy_threshold >= 2 && var.healthy_threshold <= 10
    error_message = "The healthy_threshold must be between 2 and 10."
  }
}

variable "unhealthy_threshold" {
  description = "Consecutive failed health checks before a target counts as unhealthy."
  type        = number
  default     = 2

  validation {
    condition     = var.unhealthy_threshold >= 2 && var.unhealthy_threshold <= 10
    error_message = "The unhealthy_threshold must be between 2 and 10."
  }
}

variable "deregistration_delay" {
  description = "Seconds the load balancer keeps draining connections to a deregistered target."
  type        = number
  default     = 30

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600
    error_message = "The deregistration_delay must be between 0 and 3600 seconds."
  }
}

variable "idle_timeout" {
  description = "Seconds a connection may be idle before the load balancer closes it."
  type        = number
  default     = 60

  validation {
    condition     = var.idle_timeout >= 1 && var.idle_timeout <= 4000
    error_message = "The idle_timeout must be between 1 and 4000 seconds."
  }
}

variable "enable_deletion_protection" {
  description = "Whether AWS refuses to delete the load balancer until this is turned off."
  type        = bool
  default     = false

  validation {
    condition     = var.enable_deletion_protection != null
    error_message = "The enable_deletion_protection flag must be true or false."
  }
}

variable "tags" {
  description = "Extra tags for every resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be 1-128 characters and tag values at most 256 characters."
  }
}
