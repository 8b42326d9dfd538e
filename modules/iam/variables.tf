variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the roles."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "The github_repository must look like owner/name."
  }
}

variable "name_prefix" {
  description = "Role names are <name_prefix>-plan, -drift and -apply."
  type        = string
  default     = "bgtool"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,56}$", var.name_prefix))
    error_message = "The name_prefix must be 1-56 characters allowed in IAM role names."
  }
}

variable "policies" {
  description = "Policy document (JSON) per role: plan, drift, apply. Generate them with `bgtool iam ENV --role ROLE --json` (the `policy` field); a null entry creates no role."
  type = object({
    plan  = optional(string)
    drift = optional(string)
    apply = optional(string)
  })
  nullable = false

  validation {
    condition     = alltrue([for p in [var.policies.plan, var.policies.drift, var.policies.apply] : p == null || can(jsondecode(p).Statement)])
    error_message = "Each policy must be null or a JSON IAM policy document with a Statement."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC identity provider (there is at most one per account; set false and give oidc_provider_arn when it exists)."
  type        = bool
  default     = true
  nullable    = false
}

variable "oidc_provider_arn" {
  description = "ARN of an existing GitHub OIDC identity provider (used when create_oidc_provider is false)."
  type        = string
  default     = null

  validation {
    condition     = var.oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token.actions.githubusercontent.com$", var.oidc_provider_arn))
    error_message = "The oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com identity provider."
  }
}

variable "drift_branches" {
  description = "Branches whose runs may assume the drift role (the scheduled run is on the default branch)."
  type        = list(string)
  default     = ["main"]
  nullable    = false

  validation {
    condition     = length(var.drift_branches) >= 1
    error_message = "Give at least one branch."
  }
}

variable "apply_environments" {
  description = "GitHub environments whose jobs may assume the apply role; give each required reviewers in the repository settings."
  type        = list(string)
  default     = ["production"]
  nullable    = false

  validation {
    condition     = length(var.apply_environments) >= 1 && alltrue([for e in var.apply_environments : can(regex("^[^*]+$", e))])
    error_message = "Give at least one GitHub environment name, without wildcards."
  }
}

variable "max_session_seconds" {
  description = "Longest session of a role, in seconds (a slow switch with long bakes needs more than the default hour)."
  type        = number
  default     = 3600
  nullable    = false

  validation {
    condition     = var.max_session_seconds >= 3600 && var.max_session_seconds <= 43200
    error_message = "The max_session_seconds must be between 3600 and 43200."
  }
}

variable "tags" {
  description = "Tags for the roles and the identity provider."
  type        = map(string)
  default     = {}
  nullable    = false
}
