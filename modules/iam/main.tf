locals {
  oidc_host = "token.actions.githubusercontent.com"

  provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : var.oidc_provider_arn

  # Who may assume each role: the `sub` claim GitHub puts in the job's OIDC token.
  #   plan:  a pull request of the repository (pr.yml)
  #   drift: a run on the default branch (drift.yml, scheduled or dispatched)
  #   apply: a job bound to one of the GitHub environments whose reviewers guard applies (apply.yml)
  subjects = {
    plan  = ["repo:${var.github_repository}:pull_request"]
    drift = [for b in var.drift_branches : "repo:${var.github_repository}:ref:refs/heads/${b}"]
    apply = [for e in var.apply_environments : "repo:${var.github_repository}:environment:${e}"]
  }

  roles = { for role, policy in var.policies : role => policy if policy != null }
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]

  tags = var.tags
}

data "aws_iam_policy_document" "trust" {
  for_each = local.roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = local.subjects[each.key]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name                 = "${var.name_prefix}-${each.key}"
  description          = "bgtool ${each.key} role, assumed by GitHub Actions of ${var.github_repository}"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = var.max_session_seconds

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.create_oidc_provider || var.oidc_provider_arn != null
      error_message = "Give oidc_provider_arn when create_oidc_provider is false."
    }
  }
}

# The policy is what `bgtool iam ENV --role ROLE --json` prints (scoped to the environment's
# resources); one inline policy per role, so the role and its rights live and die together.
resource "aws_iam_role_policy" "this" {
  for_each = local.roles

  name   = "bgtool-${each.key}"
  role   = aws_iam_role.this[each.key].id
  policy = each.value
}
