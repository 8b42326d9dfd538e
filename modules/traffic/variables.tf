variable "alb_arn" {
  description = "ARN of the load balancer the listeners belong to."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:elasticloadbalancing:[^:]+:[0-9]{12}:loadbalancer/app/", var.alb_arn))
    error_message = "The alb_arn must be an application load balancer ARN."
  }
}

variable "target_group_arns" {
  description = "Map of color (blue, green) to target group ARN."
  type        = map(string)
  nullable    = false

  validation {
    condition     = length(var.target_group_arns) == 2 && alltrue([for c in ["blue", "green"] : can(regex("^arn:aws[a-z-]*:elasticloadbalancing:", var.target_group_arns[c]))])
    error_message = "The target_group_arns must map exactly blue and green to target group ARNs."
  }
}

variable "weights" {
  description = "Map of color (blue, green) to the share (percent) of production traffic it receives; the two sum to 100."
  type        = map(number)
  nullable    = false

  validation {
    condition     = length(var.weights) == 2 && alltrue([for c in ["blue", "green"] : can(var.weights[c])])
    error_message = "The weights must map exactly blue and green to a percentage."
  }

  validation {
    condition     = alltrue([for c, w in var.weights : w >= 0 && w <= 100 && floor(w) == w]) && sum(values(var.weights)) == 100
    error_message = "Each weight must be an integer between 0 and 100, and the weights must sum to 100."
  }
}

variable "test_color" {
  description = "The color the test listener forwards all its traffic to (normally the idle color)."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["blue", "green"], var.test_color)
    error_message = "The test_color must be \"blue\" or \"green\"."
  }
}

variable "production_port" {
  description = "Port of the production listener."
  type        = number
  default     = 80
  nullable    = false

  validation {
    condition     = var.production_port >= 1 && var.production_port <= 65535 && floor(var.production_port) == var.production_port
    error_message = "The production_port must be an integer between 1 and 65535."
  }
}

variable "test_port" {
  description = "Port of the test listener (reaches the test color only)."
  type        = number
  default     = 8080
  nullable    = false

  validation {
    condition     = var.test_port >= 1 && var.test_port <= 65535 && floor(var.test_port) == var.test_port
    error_message = "The test_port must be an integer between 1 and 65535."
  }
}

variable "certificate_arn" {
  description = "ACM certificate ARN; when set, the production and test listeners speak HTTPS and an HTTP listener on http_redirect_port redirects to HTTPS."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "The certificate_arn must be null or an ACM certificate ARN."
  }
}

variable "tls_policy" {
  description = "SSL policy of the HTTPS listeners (used only with a certificate): one of the predefined policies that allow TLS 1.2 or newer only."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  nullable    = false

  validation {
    condition = contains([
      "ELBSecurityPolicy-TLS13-1-2-2021-06",
      "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
      "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
      "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
      "ELBSecurityPolicy-TLS13-1-3-2021-06",
      "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
      "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
      "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
      "ELBSecurityPolicy-TLS-1-2-2017-01",
      "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
      "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    ], var.tls_policy)
    error_message = "The tls_policy must be a predefined ELB policy that allows TLS 1.2 or newer only, for example ELBSecurityPolicy-TLS13-1-2-2021-06 (see the traffic module's README for the list)."
  }
}

variable "http_redirect_port" {
  description = "Port of the HTTP listener that redirects to HTTPS (created only with a certificate)."
  type        = number
  default     = 80
  nullable    = false

  validation {
    condition     = var.http_redirect_port >= 1 && var.http_redirect_port <= 65535 && floor(var.http_redirect_port) == var.http_redirect_port
    error_message = "The http_redirect_port must be an integer between 1 and 65535."
  }
}

variable "stickiness_seconds" {
  description = "Target group stickiness of the production listener in seconds: a client stays on one color for this long (0 turns it off)."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.stickiness_seconds >= 0 && var.stickiness_seconds <= 604800 && floor(var.stickiness_seconds) == var.stickiness_seconds
    error_message = "The stickiness_seconds must be an integer between 0 and 604800 (7 days)."
  }
}

variable "tags" {
  description = "Extra tags for the listeners (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be 1-128 characters and tag values at most 256 characters."
  }
}
