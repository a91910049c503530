# Upload storage: the API streams each upload here (multipart), the parser streams it back.
# INGESTRO_STORAGE_URL = s3://BUCKET/uploads (services.tf).

locals {
  upload_prefix = "uploads"
}

resource "aws_s3_bucket" "uploads" {
  bucket_prefix = "${var.name}-uploads-"
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "uploads" {
  statement {
    sid       = "TLSOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.uploads.arn, "${aws_s3_bucket.uploads.arn}/*"]

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

resource "aws_s3_bucket_policy" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  policy = data.aws_iam_policy_document.uploads.json
}

# File retention. Ingestro keeps uploaded files by default (a kept file can be parsed again, and a
# redriven FileReceived needs its file); set upload_retention_days to expire them. Expire no sooner than
# you would redrive a dead-lettered upload: its file must still be there.
resource "aws_s3_bucket_lifecycle_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  # An API task that dies mid-upload cannot abort its multipart upload: S3 does it a day later.
  rule {
    id     = "abort-unfinished-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  dynamic "rule" {
    for_each = var.upload_infrequent_access_days > 0 ? [var.upload_infrequent_access_days] : []

    content {
      id     = "kept-uploads-to-infrequent-access"
      status = "Enabled"

      filter {
        prefix = "${local.upload_prefix}/"
      }

      transition {
        days          = rule.value
        storage_class = "STANDARD_IA"
      }
    }
  }

  dynamic "rule" {
    for_each = var.upload_retention_days > 0 ? [var.upload_retention_days] : []

    content {
      id     = "expire-uploads"
      status = "Enabled"

      filter {
        prefix = "${local.upload_prefix}/"
      }

      expiration {
        days = rule.value
      }
    }
  }
}
