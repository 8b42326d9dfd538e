variable "name" {
  description = "Name of the load balancer; also the prefix of the security groups (<name>-alb, <name>-instances) and target groups (<name>-blue, <name>-green)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must be 2-21 characters (target group names are <name>-green, at most 32): lower-case letters, digits and '-', starting with a letter."
  }
}

variable "vpc_id" {
  description = "ID of the VPC that holds the load balancer, the target groups and the security groups."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "The vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Subnets of the load balancer, in at least two availability zones."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "Give at least two subnet IDs like subnet-0123456789abcdef0."
  }
}

variable "internal" {
  description = "Whether the load balancer is internal (true) or internet-facing (false)."
  type        = bool
  default     = false
  nullable    = false
}

variable "ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the listener ports of the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
  nullable    = false

  validation {
    condition     = length(var.ingress_cidrs) >= 1 && alltrue([for c in var.ingress_cidrs : can(cidrnetmask(c))])
    error_message = "Give at least one IPv4 CIDR block, for example 203.0.113.0/24 or 0.0.0.0/0."
  }
}

variable "listener_ports" {
  description = "Public listener ports (production and, with TLS, the HTTP redirect); the load balancer's security group opens them to ingress_cidrs. The test listener's port is test_port."
  type        = list(number)
  nullable    = false

  validation {
    condition     = length(var.listener_ports) >= 1 && alltrue([for p in var.listener_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "Give at least one listener port, each an integer between 1 and 65535."
  }
}

variable "app_port" {
  description = "Port the application listens on in the instances; the target groups forward to it and the instances' security group opens it to the load balancer only."
  type        = number
  nullable    = false

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535 && floor(var.app_port) == var.app_port
    error_message = "The app_port must be an integer between 1 and 65535."
  }
}

variable "target_type" {
  description = "What the target groups register: instance (EC2 Auto Scaling groups) or ip (ECS tasks on Fargate, network mode awsvpc). A change replaces both target groups."
  type        = string
  default     = "instance"
  nullable    = false

  validation {
    condition     = contains(["instance", "ip"], var.target_type)
    error_message = "The target_type must be \"instance\" or \"ip\"."
  }
}

variable "health_check_path" {
  description = "HTTP path of the target groups' health check."
  type        = string
  default     = "/health"
  nullable    = false

  validation {
    condition     = can(regex("^/[!-~]*$", var.health_check_path)) && length(var.health_check_path) <= 1024
    error_message = "The health_check_path must start with '/' and contain printable characters without spaces (at most 1024)."
  }
}

variable "health_check_matcher" {
  description = "HTTP status code(s) a healthy target answers, for example 200 or 200-299."
  type        = string
  default     = "200"
  nullable    = false

  validation {
    condition     = can(regex("^[1-5][0-9][0-9](-[1-5][0-9][0-9])?$", var.health_check_matcher))
    error_message = "The health_check_matcher must be a status code like 200 or a range like 200-299."
  }
}

variable "health_check_interval" {
  description = "Seconds between health checks of a target."
  type        = number
  default     = 10
  nullable    = false

  validation {
    condition     = var.health_check_interval >= 5 && var.health_check_interval <= 300
    error_message = "The health_check_interval must be between 5 and 300 seconds."
  }
}

variable "healthy_threshold" {
  description = "Consecutive successful health checks before a target counts as healthy."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = var.healthy_threshold >= 2 && var.healthy_threshold <= 10
    error_message = "The healthy_threshold must be between 2 and 10."
  }
}

variable "unhealthy_threshold" {
  description = "Consecutive failed health checks before a target counts as unhealthy."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = var.unhealthy_threshold >= 2 && var.unhealthy_threshold <= 10
    error_message = "The unhealthy_threshold must be between 2 and 10."
  }
}

variable "deregistration_delay" {
  description = "Seconds the load balancer keeps draining connections to a deregistered target."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600
    error_message = "The deregistration_delay must be between 0 and 3600 seconds."
  }
}

variable "idle_timeout" {
  description = "Seconds a connection may be idle before the load balancer closes it."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.idle_timeout >= 1 && var.idle_timeout <= 4000
    error_message = "The idle_timeout must be between 1 and 4000 seconds."
  }
}

variable "enable_deletion_protection" {
  description = "Whether AWS refuses to delete the load balancer until this is turned off (on by default; bgtool turns it off only for the embedded AWS unless alb.deletion_protection says otherwise)."
  type        = bool
  default     = true
  nullable    = false
}

variable "drop_invalid_header_fields" {
  description = "Whether the load balancer removes HTTP header fields whose names are not valid (request smuggling and header injection defence) before forwarding."
  type        = bool
  default     = true
  nullable    = false
}

variable "access_logs" {
  description = "Access logs: when enabled, the module creates a private, encrypted, versioned bucket <name>-alb-logs-<account> with a lifecycle (objects expire after retention_days) and the load balancer writes to it under prefix. force_destroy lets `terraform destroy` remove a bucket that still holds logs."
  type = object({
    enabled        = optional(bool, false)
    retention_days = optional(number, 90)
    prefix         = optional(string, "alb")
    force_destroy  = optional(bool, false)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.access_logs.retention_days >= 1 && var.access_logs.retention_days <= 3650 && floor(var.access_logs.retention_days) == var.access_logs.retention_days
    error_message = "The access_logs.retention_days must be an integer between 1 and 3650."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,100}$", var.access_logs.prefix))
    error_message = "The access_logs.prefix must be 1-100 characters: letters, digits, '_', '.', '-' (no slashes; AWS adds AWSLogs/<account>/...)."
  }
}

variable "test_port" {
  description = "Port of the test listener (forwards to the idle color); opened to test_ingress_cidrs only. null when the caller opens no test port."
  type        = number
  default     = null

  validation {
    condition     = var.test_port == null ? true : (var.test_port >= 1 && var.test_port <= 65535 && floor(var.test_port) == var.test_port)
    error_message = "The test_port must be null or an integer between 1 and 65535."
  }
}

variable "test_ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the test listener: the unreleased version, so normally the VPC or the office only."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.test_ingress_cidrs : can(cidrnetmask(c))])
    error_message = "Every test_ingress_cidrs entry must be an IPv4 CIDR block like 10.0.0.0/16."
  }
}

variable "instance_egress_ports" {
  description = "TCP ports the instances may connect to outside the VPC's load balancer path (by default HTTPS only: packages and the AWS APIs)."
  type        = list(number)
  default     = [443]
  nullable    = false

  validation {
    condition     = alltrue([for p in var.instance_egress_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "Every instance egress port must be an integer between 1 and 65535."
  }
}

variable "instance_egress_cidrs" {
  description = "IPv4 CIDR blocks the instances may reach on instance_egress_ports."
  type        = list(string)
  default     = ["0.0.0.0/0"]
  nullable    = false

  validation {
    condition     = alltrue([for c in var.instance_egress_cidrs : can(cidrnetmask(c))])
    error_message = "Every instance_egress_cidrs entry must be an IPv4 CIDR block."
  }
}

variable "embedded_aws" {
  description = "Emulator-only: set true only for bgtool's embedded AWS (moto), which drops the description of security group rules that reference another group (a perpetual diff otherwise). Never set it for a real account."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Extra tags for every resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be 1-128 characters and tag values at most 256 characters."
  }
}

variable "per_color_load_balancers" {
  description = "DNS mode: one load balancer per color (<name>-blue, <name>-green), each with a listener forwarding to its own target group, instead of one shared load balancer whose listeners the traffic module weights."
  type        = bool
  default     = false
  nullable    = false
}

variable "color_listener" {
  description = "DNS mode: the listener of each color's load balancer (port; HTTPS with certificate_arn and tls_policy)."
  type = object({
    port            = optional(number, 80)
    certificate_arn = optional(string)
    tls_policy      = optional(string, "ELBSecurityPolicy-TLS13-1-2-2021-06")
  })
  default  = {}
  nullable = false
}
