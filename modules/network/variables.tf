variable "name" {
  description = "Name prefix for every resource (the environment's `name`)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must be 2-21 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC, for example 10.20.0.0/16."
  type        = string
  nullable    = false

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && can(regex("/(1[6-9]|2[0-8])$", var.vpc_cidr))
    error_message = "The vpc_cidr must be an IPv4 CIDR block with a prefix length between /16 and /28."
  }
}

variable "public_subnets" {
  description = "Public subnets, one per availability zone (at least two for an ALB)."
  type = list(object({
    cidr = string
    az   = string
  }))
  nullable = false

  validation {
    condition     = length(var.public_subnets) >= 2 && length(distinct([for s in var.public_subnets : s.az])) == length(var.public_subnets)
    error_message = "Give at least two public subnets, each in a distinct availability zone."
  }

  validation {
    condition     = alltrue([for s in var.public_subnets : can(cidrnetmask(s.cidr)) && can(regex("^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$", s.az))])
    error_message = "Every public subnet needs an IPv4 CIDR block (cidr) and an availability zone name (az) like us-east-1a."
  }
}

variable "private_subnets" {
  description = "Private subnets for the instances, one per availability zone; empty to run the instances in the public subnets."
  type = list(object({
    cidr = string
    az   = string
  }))
  default  = []
  nullable = false

  validation {
    condition     = length(distinct([for s in var.private_subnets : s.az])) == length(var.private_subnets)
    error_message = "Give each private subnet a distinct availability zone."
  }

  validation {
    condition     = alltrue([for s in var.private_subnets : can(cidrnetmask(s.cidr)) && can(regex("^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$", s.az))])
    error_message = "Every private subnet needs an IPv4 CIDR block (cidr) and an availability zone name (az) like us-east-1a."
  }
}

variable "nat_gateway" {
  description = "Outbound internet access of the private subnets: \"single\" (one NAT gateway), \"per_az\" (one per zone, survives a zone outage) or \"none\" (VPC endpoints only)."
  type        = string
  default     = "single"
  nullable    = false

  validation {
    condition     = contains(["single", "per_az", "none"], var.nat_gateway)
    error_message = "The nat_gateway must be \"single\", \"per_az\" or \"none\"."
  }
}

variable "vpc_endpoints" {
  description = "AWS services reached privately from the private subnets: s3 and dynamodb as gateway endpoints, the others (ssm, ssmmessages, ec2messages, logs, monitoring, ecr.api, ecr.dkr, sts) as interface endpoints."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for e in var.vpc_endpoints : contains(["s3", "dynamodb", "ssm", "ssmmessages", "ec2messages", "logs", "monitoring", "ecr.api", "ecr.dkr", "sts"], e)])
    error_message = "Each VPC endpoint must be one of s3, dynamodb, ssm, ssmmessages, ec2messages, logs, monitoring, ecr.api, ecr.dkr, sts."
  }
}

variable "map_public_ip_on_launch" {
  description = "Whether instances launched in the public subnets get a public IPv4 address. Off: the load balancer is the only public entry."
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
