variable "name" {
  description = "Name prefix (the environment's `name`): the service and task family are <name>-<color>-workers."
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
  description = "Application version this color runs: the image tag; a new version registers a new task definition revision."
  type        = string
  nullable    = false

  # The full version pattern is the environment schema's; an image tag allows no '+'.
  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.app_version))
    error_message = "The app_version must be an image tag: 1-128 letters, digits, '_', '.', '-', not starting with '.' or '-'."
  }
}

variable "command" {
  description = "What a worker runs (the container's command, through sh -c); {queue_url}, {version}, {color}, {python} are filled in, {worker} is the task's hostname."
  type        = string
  nullable    = false

  validation {
    condition     = length(trimspace(var.command)) > 0
    error_message = "The command must not be empty."
  }
}

variable "queue_url" {
  description = "URL of the SQS queue the workers consume."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^https?://", var.queue_url))
    error_message = "The queue_url must be an SQS queue URL (http:// or https://)."
  }
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
  description = "Upper bound of the workers: desired may not exceed it."
  type        = number
  nullable    = false

  validation {
    condition     = var.max_size >= 1 && floor(var.max_size) == var.max_size
    error_message = "The max_size must be a whole number >= 1."
  }
}

variable "cluster_arn" {
  description = "ARN of the cluster the service runs in (modules/ecs-cluster)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecs:[^:]+:[0-9]{12}:cluster/", var.cluster_arn))
    error_message = "The cluster_arn must be an ECS cluster ARN."
  }
}

variable "image_repository" {
  description = "Container image repository without a tag: the tasks run <image_repository>:<app_version>."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", var.image_repository))
    error_message = "The image_repository must be a repository without tag or digest."
  }
}

variable "cpu" {
  description = "Task CPU units (a Fargate size)."
  type        = number
  default     = 256
  nullable    = false

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "The cpu must be a Fargate size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "memory" {
  description = "Task memory in MiB; Fargate allows per cpu: 256: 512, 1024, 2048; 512: 1024-4096; 1024: 2048-8192; 2048: 4096-16384; 4096: 8192-30720 (steps of 1024); 8192: 16384-61440 (steps of 4096); 16384: 32768-122880 (steps of 8192)."
  type        = number
  default     = 512
  nullable    = false

  validation {
    condition = (
      var.cpu == 256 ? contains([512, 1024, 2048], var.memory) :
      var.cpu == 512 ? var.memory >= 1024 && var.memory <= 4096 && var.memory % 1024 == 0 :
      var.cpu == 1024 ? var.memory >= 2048 && var.memory <= 8192 && var.memory % 1024 == 0 :
      var.cpu == 2048 ? var.memory >= 4096 && var.memory <= 16384 && var.memory % 1024 == 0 :
      var.cpu == 4096 ? var.memory >= 8192 && var.memory <= 30720 && var.memory % 1024 == 0 :
      var.cpu == 8192 ? var.memory >= 16384 && var.memory <= 61440 && var.memory % 4096 == 0 :
      var.memory >= 32768 && var.memory <= 122880 && var.memory % 8192 == 0
    )
    error_message = "The memory is not a Fargate size for this cpu."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the tasks: the image must be built for it."
  type        = string
  default     = "X86_64"
  nullable    = false

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64."
  }
}

variable "environment_variables" {
  description = "Plain environment variables of the container (never secrets: they are visible in the task definition)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k in keys(var.environment_variables) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "Environment variable names must be letters, digits and '_', not starting with a digit."
  }
}

variable "secrets" {
  description = "Environment variable -> ARN of a Secrets Manager secret or an SSM parameter, read by the execution role at task start."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:aws[a-z-]*:(secretsmanager|ssm):", arn))])
    error_message = "Every secret must be the ARN of a Secrets Manager secret or an SSM parameter."
  }
}

variable "execution_role_arn" {
  description = "The task execution role (modules/ecs-cluster): image pull, log writes, the secrets."
  type        = string
  nullable    = false
}

variable "task_role_arn" {
  description = "The application's task role (modules/ecs-cluster)."
  type        = string
  nullable    = false
}

variable "log_group_name" {
  description = "This color's log group (modules/ecs-cluster); the awslogs driver writes the container's output there."
  type        = string
  nullable    = false
}

variable "log_region" {
  description = "Region of the log group."
  type        = string
  nullable    = false
}

variable "subnet_ids" {
  description = "Subnets of the tasks (private ones: the tasks get no public IP)."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "Give at least one subnet ID."
  }
}

variable "security_group_ids" {
  description = "Security groups of the tasks (the application's: the workers reach the queue, nothing reaches them)."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.security_group_ids) >= 1
    error_message = "Give at least one security group ID like sg-0123456789abcdef0."
  }
}

variable "tags" {
  description = "Extra tags for every resource, also propagated to the tasks."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be 1-128 characters and tag values at most 256 characters."
  }
}
