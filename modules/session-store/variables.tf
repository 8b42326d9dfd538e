variable "name" {
  description = "Resource name prefix (the environment's `name`); the store is <name>-sessions."
  type        = string
  nullable    = false
}

variable "kind" {
  description = "dynamodb (a table; AWS and the embedded AWS) or elasticache (a replication group; a real AWS account)."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["dynamodb", "elasticache"], var.kind)
    error_message = "The kind must be \"dynamodb\" or \"elasticache\"."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for encryption at rest; null for the AWS owned/managed key."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "The kms_key_arn must be null or a KMS key ARN."
  }
}

variable "deletion_protection" {
  description = "dynamodb: AWS refuses to delete the table (off for the embedded AWS, rebuilt freely)."
  type        = bool
  default     = true
  nullable    = false
}

variable "vpc_id" {
  description = "elasticache: the VPC of the instances."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "elasticache: the subnets the cache nodes run in (the instances' subnets)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "client_security_group_id" {
  description = "elasticache: the instances' security group, the only one allowed to connect."
  type        = string
  default     = null
}

variable "node_type" {
  description = "elasticache: the node type."
  type        = string
  default     = "cache.t4g.small"
  nullable    = false

  validation {
    condition     = can(regex("^cache\\.[a-z0-9]+\\.[a-z0-9]+$", var.node_type))
    error_message = "The node_type must look like cache.t4g.small."
  }
}

variable "nodes" {
  description = "elasticache: primary plus replicas (automatic failover needs at least 2)."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = var.nodes >= 2 && var.nodes <= 6 && floor(var.nodes) == var.nodes
    error_message = "The nodes must be a whole number from 2 to 6."
  }
}

variable "task_role_name" {
  description = "ECS (app.compute ecs): the task role whose tasks use the store; it gets the store's access. null: the store makes an EC2 role and instance profile for the instances."
  type        = string
  default     = null

  validation {
    condition     = var.task_role_name == null || can(regex("^[\\w+=,.@-]{1,64}$", var.task_role_name))
    error_message = "The task role name must be an IAM role name (1-64 of letters, digits and +=,.@_-)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}
