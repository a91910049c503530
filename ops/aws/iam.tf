data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# ECS itself: pull the image, write the logs, read the two URL secrets into the environment.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = values(local.secrets)
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# What the code calls AWS for: only the API (writes uploads; its collector ships the metrics), the fetcher
# (writes pulled imports) and the parser (reads uploads). The other tasks have no role at all.
data "aws_iam_policy_document" "task" {
  for_each = toset(["api", "fetcher", "parser"])

  statement {
    sid       = "Uploads"
    actions   = each.key != "parser" ? ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"] : ["s3:GetObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/${local.upload_prefix}/*"]
  }

  # Without it S3 answers 403 instead of 404 for a missing object, which the storage reads as "absent".
  statement {
    sid       = "MissingIsNotFound"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.uploads.arn]
  }

  dynamic "statement" {
    for_each = each.key == "api" ? [aws_cloudwatch_log_group.metrics.arn] : []
    content {
      sid       = "MetricsAsEmbeddedMetricFormat"
      actions   = ["logs:PutLogEvents", "logs:CreateLogStream", "logs:DescribeLogStreams"]
      resources = ["${statement.value}:*"]
    }
  }
}

resource "aws_iam_role" "task" {
  for_each           = data.aws_iam_policy_document.task
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task" {
  for_each = data.aws_iam_policy_document.task
  name     = "ingestro"
  role     = aws_iam_role.task[each.key].id
  policy   = each.value.json
}
