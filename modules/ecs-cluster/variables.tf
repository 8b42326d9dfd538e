variable "name" {
  description = "Name prefix (the environment's `name`): the cluster is <name>, the roles <name>-ecs-execution and <name>-ecs-task, the log groups /ecs/<name>/<color>."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must be 2-21 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "image_repository" {
  description = "Container image repository without a tag (the colors' versions are the tags); an ECR repository gets pull rights on exactly that repository."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", var.image_repository))
    error_message = "The image_repository must be a repository without tag or digest, like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop."
  }
}

variable "secrets" {
  description = "Environment variable -> ARN of a Secrets Manager secret or an SSM parameter; the execution role may read exactly these."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+|ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+)$", arn))])
    error_message = "Every secret must be the full ARN of a Secrets Manager secret or an SSM parameter."
  }
}

variable "log_retention_days" {
  description = "How long the colors' log groups keep events (a CloudWatch Logs retention period)."
  type        = number
  default     = 365
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be a CloudWatch Logs retention period: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "log_kms_key_arn" {
  description = "Customer managed KMS key for the log groups (its key policy must allow the logs service); null: CloudWatch Logs' own encryption."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.log_kms_key_arn))
    error_message = "The log_kms_key_arn must be null or a KMS key ARN."
  }
}

variable "queue_arns" {
  description = "SQS queues the workers consume with the task role (the workers section's queue); [] without workers."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for arn in var.queue_arns : can(regex("^arn:aws[a-z-]*:sqs:", arn))])
    error_message = "Each queue ARN must be an SQS queue ARN (arn:aws:sqs:...)."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be 1-128 characters and tag values at most 256 characters."
  }
}
