output "api_url" {
  description = "The API, behind the load balancer."
  value       = "${var.certificate_arn == "" ? "http" : "https"}://${aws_lb.api.dns_name}"
}

output "github_variables" {
  description = "Repository variables .github/workflows/ci.yml reads (Settings > Secrets and variables > Actions > Variables)."
  value = {
    AWS_REGION          = var.region
    AWS_DEPLOY_ROLE_ARN = aws_iam_role.deploy.arn
    ECR_REPOSITORY      = aws_ecr_repository.ingestro.name
    ECS_CLUSTER         = aws_ecs_cluster.main.name
    ECS_SUBNETS         = join(",", aws_subnet.private[*].id)
    ECS_SECURITY_GROUPS = aws_security_group.tasks.id
  }
}

output "uploads_bucket" {
  value = aws_s3_bucket.uploads.bucket
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the backlog gauges (dimensions group and stream)."
  value       = local.metrics_namespace
}
