variable "name" {
  description = "Resource name prefix (the environment's `name`)."
  type        = string
  nullable    = false
}

variable "environment" {
  description = "Environment name (the bgtool:env tag)."
  type        = string
  nullable    = false
}

variable "color" {
  description = "blue or green."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["blue", "green"], var.color)
    error_message = "The color must be \"blue\" or \"green\"."
  }
}

variable "app_version" {
  description = "Version the workers run (the bgtool:version tag and the {version} placeholder)."
  type        = string
  nullable    = false
}

variable "command" {
  description = "What a worker runs; {queue_url}, {version}, {color}, {python} are filled in, {worker} is the instance id."
  type        = string
  nullable    = false
}

variable "queue_url" {
  description = "URL of the SQS queue the workers consume."
  type        = string
  nullable    = false
}

variable "desired" {
  description = "Workers running: the worker size while the color is live, 0 while it is idle."
  type        = number
  nullable    = false

  validation {
    condition     = var.desired >= 0 && floor(var.desired) == var.desired
    error_message = "The desired must be a whole number >= 0."
  }
}

variable "max_size" {
  description = "Upper bound of the worker group."
  type        = number
  nullable    = false
}

variable "ami_id" {
  description = "Image of the worker instances."
  type        = string
  nullable    = false
}

variable "instance_type" {
  description = "Instance type of the workers."
  type        = string
  nullable    = false
}

variable "subnet_ids" {
  description = "Subnets the workers run in."
  type        = list(string)
  nullable    = false
}

variable "security_group_ids" {
  description = "Security groups of the workers."
  type        = list(string)
  nullable    = false
}

variable "wait_for_capacity_timeout" {
  description = "How long an apply waits for the workers to be in service."
  type        = string
  default     = "10m"
  nullable    = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}
