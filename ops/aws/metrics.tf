# How the backlog reaches CloudWatch: Ingestro exports Prometheus metrics; an ADOT collector sidecar in each
# API task scrapes them (adot-collector.yaml.tftpl) and sends the stream/group gauges to CloudWatch as
# Embedded Metric Format. The metrics land in the namespace below, dimensioned like the Prometheus labels.

locals {
  metrics_namespace = "Ingestro/${var.name}"

  metrics_collector = {
    name      = "metrics-collector"
    image     = var.adot_image
    essential = false # a collector that dies must not take the API down with it
    environment = [
      { name = "AWS_REGION", value = var.region },
      {
        name = "AOT_CONFIG_CONTENT"
        value = templatefile("${path.module}/adot-collector.yaml.tftpl", {
          api_port  = local.api_port
          namespace = local.metrics_namespace
          log_group = aws_cloudwatch_log_group.metrics.name
        })
      },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.task["api"].name
        awslogs-region        = var.region
        awslogs-stream-prefix = "metrics-collector"
      }
    }
  }
}

# The EMF records themselves; CloudWatch keeps the metrics made from them for 15 months regardless.
resource "aws_cloudwatch_log_group" "metrics" {
  name              = "/${var.name}/metrics"
  retention_in_days = 7
}
