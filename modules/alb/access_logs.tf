################################################################################
# Access logs: a private, encrypted bucket the load balancer writes to (alb.access_logs)
################################################################################

data "aws_caller_identity" "current" {
  count = var.access_logs.enabled ? 1 : 0
}

# The regional Elastic Load Balancing account (older regions) and the log delivery service
# (newer regions) are the writers AWS documents; the policy names both.
data "aws_elb_service_account" "current" {
  count = var.access_logs.enabled ? 1 : 0
}

locals {
  access_logs_bucket = var.access_logs.enabled ? "${var.name}-alb-logs-${data.aws_caller_identity.current[0].account_id}" : null
}

resource "aws_s3_bucket" "access_logs" {
  # checkov:skip=CKV_AWS_18:This is the log bucket; logging its own access would log forever.
  # checkov:skip=CKV_AWS_144:Access logs are operational data kept for days; a replica in a second region is not worth its cost.
  # checkov:skip=CKV_AWS_145:Load balancer access logs can only be written with SSE-S3 (AES256), not with a KMS key.
  # checkov:skip=CKV2_AWS_62:Nothing consumes events of new log objects.
  count = var.access_logs.enabled ? 1 : 0

  bucket        = local.access_logs_bucket
  force_destroy = var.access_logs.force_destroy

  tags = merge(var.tags, { Name = local.access_logs_bucket })
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  count = var.access_logs.enabled ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  count = var.access_logs.enabled ? 1 : 0

  bucket                  = aws_s3_bucket.access_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  count = var.access_logs.enabled ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  count = var.access_logs.enabled ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  count = var.access_logs.enabled ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {
      prefix = ""
    }

    expiration {
      days = var.access_logs.retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  count = var.access_logs.enabled ? 1 : 0

  statement {
    sid       = "LoadBalancerWrites"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs[0].arn}/*"]

    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current[0].arn]
    }
  }

  statement {
    sid       = "LogDeliveryWrites"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs[0].arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs[0].arn, "${aws_s3_bucket.access_logs[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  count = var.access_logs.enabled ? 1 : 0

  bucket = aws_s3_bucket.access_logs[0].id
  policy = data.aws_iam_policy_document.access_logs[0].json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
