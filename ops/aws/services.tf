# The ECS Fargate side: one image (ECR), one task definition per `ingestro` command, the API behind a
# load balancer, one service per consumer, and the one-shot migrate task the deploy runs first.
# tests/test_aws.py checks these against the code: commands, variables, streams and groups.

locals {
  api_port = 8000

  # The `ingestro` command each task definition runs (the image's entrypoint is `ingestro`).
  commands = {
    migrate       = ["migrate"]
    api           = ["api", "--host", "0.0.0.0", "--port", "8000"]
    parser        = ["consume", "parser"]
    fetcher       = ["consume", "fetcher"]
    data          = ["consume", "data"]
    errors        = ["consume", "errors"]
    jobs          = ["consume", "jobs"]
    notifications = ["consume", "notifications"]
  }

  # One service per consumer group (ingestro/services/consumer_groups.py), with the streams the group reads: the backlog it
  # scales on (scaling.tf) is its lag plus its pending entries on those streams, per running task.
  consumers = {
    # A task parses a whole file per handler (INGESTRO_CONCURRENCY, 2): CPU-bound Python.
    parser = { streams = ["ingestro:{core}:files"], cpu = 1024, memory = 2048, min_tasks = 1, max_tasks = 6, backlog_per_task = 2 }
    # Pull imports: network-bound, streams each source into the upload storage.
    fetcher = { streams = ["ingestro:{core}:imports"], cpu = 256, memory = 512, min_tasks = 1, max_tasks = 4, backlog_per_task = 2 }
    # A batch is 500 rows; PostgreSQL's write capacity bounds how many tasks help.
    data   = { streams = ["ingestro:rows-accepted:{p0.1}", "ingestro:rows-accepted:{p1.19}", "ingestro:rows-accepted:{p2.20}", "ingestro:rows-accepted:{p3.9}", "ingestro:rows-accepted:{p4.21}", "ingestro:rows-accepted:{p5.53}", "ingestro:rows-accepted:{p6.40}", "ingestro:rows-accepted:{p7.18}"], cpu = 512, memory = 1024, min_tasks = 1, max_tasks = 4, backlog_per_task = 20 }
    errors = { streams = ["ingestro:rows-rejected:{p0.1}", "ingestro:rows-rejected:{p1.19}", "ingestro:rows-rejected:{p2.20}", "ingestro:rows-rejected:{p3.9}", "ingestro:rows-rejected:{p4.21}", "ingestro:rows-rejected:{p5.53}", "ingestro:rows-rejected:{p6.40}", "ingestro:rows-rejected:{p7.18}"], cpu = 256, memory = 512, min_tasks = 1, max_tasks = 4, backlog_per_task = 20 }
    # Events of one job update the same row: more tasks mostly wait on each other.
    jobs = { streams = ["ingestro:{core}:files", "ingestro:{core}:job-events", "ingestro:{core}:dlq"], cpu = 256, memory = 512, min_tasks = 1, max_tasks = 2, backlog_per_task = 200 }
    # Webhooks: deliveries wait on receivers (bounded timeouts), not on CPU.
    notifications = { streams = ["ingestro:{core}:job-status"], cpu = 256, memory = 512, min_tasks = 1, max_tasks = 4, backlog_per_task = 50 }
  }

  services = merge(
    { api = { cpu = 512, memory = 1024, min_tasks = var.api_tasks.min, max_tasks = var.api_tasks.max } },
    { for name, consumer in local.consumers : name => {
      cpu       = consumer.cpu
      memory    = consumer.memory
      min_tasks = consumer.min_tasks
      max_tasks = consumer.max_tasks
    } },
  )
  tasks = merge(local.services, { migrate = { cpu = 256, memory = 512, min_tasks = 0, max_tasks = 0 } })

  # Every Ingestro container's environment: only variables ingestro/config.py reads, plus AWS_REGION for
  # the S3 client (boto3). The URLs holding passwords come from Secrets Manager.
  environment = {
    AWS_REGION           = var.region
    INGESTRO_STORAGE_URL = "s3://${aws_s3_bucket.uploads.bucket}/${local.upload_prefix}"
    INGESTRO_LOG_LEVEL   = "INFO"
    INGESTRO_REDIS_MODE  = "cluster" # redis.tf: ElastiCache with cluster mode on
  }
  secrets = {
    INGESTRO_DATABASE_URL = aws_secretsmanager_secret.database_url.arn
    INGESTRO_REDIS_URL    = aws_secretsmanager_secret.redis_url.arn
  }

  image = "${aws_ecr_repository.ingestro.repository_url}:${var.image_tag}"
}

resource "aws_ecr_repository" "ingestro" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE" # a tag is a commit: a rollback redeploys a known image

  image_scanning_configuration {
    scan_on_push = true
  }
}

resource "aws_ecr_lifecycle_policy" "ingestro" {
  repository = aws_ecr_repository.ingestro.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 100 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 100 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "main" {
  name = var.name

  # Container Insights publishes RunningTaskCount, which the consumers' scaling divides the backlog by.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "task" {
  for_each          = local.commands
  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_task_definition" "ingestro" {
  for_each                 = local.commands
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = local.tasks[each.key].cpu
  memory                   = local.tasks[each.key].memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = try(aws_iam_role.task[each.key].arn, null)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64" # what the CI workflow builds
  }

  container_definitions = jsonencode(concat(
    [{
      name         = "ingestro" # the container the CI workflow puts the new image in
      image        = local.image
      essential    = true
      command      = each.value
      environment  = [for name, value in local.environment : { name = name, value = value }]
      secrets      = [for name, arn in local.secrets : { name = name, valueFrom = arn }]
      portMappings = each.key == "api" ? [{ containerPort = local.api_port, protocol = "tcp" }] : []
      # SIGTERM, then this long before SIGKILL: a consumer finishes and acks the entries in hand
      # (Fargate allows at most 120 s; whatever is still unfinished is reclaimed by the other tasks).
      stopTimeout = each.key == "api" ? 30 : 120
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.task[each.key].name
          awslogs-region        = var.region
          awslogs-stream-prefix = each.key
        }
      }
    }],
    each.key == "api" ? [local.metrics_collector] : [],
  ))
}

resource "aws_ecs_service" "ingestro" {
  for_each        = local.services
  name            = each.key
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.ingestro[each.key].arn
  desired_count   = each.value.min_tasks
  launch_type     = "FARGATE"

  # Rolling update: new tasks start before old ones stop; a release whose tasks keep failing is rolled back.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = each.key == "api" ? [aws_lb_target_group.api.arn] : []
    content {
      target_group_arn = load_balancer.value
      container_name   = "ingestro"
      container_port   = local.api_port
    }
  }
  health_check_grace_period_seconds = each.key == "api" ? 30 : null

  propagate_tags = "SERVICE"

  # The CI workflow registers each release's task definition revision, and autoscaling sets the count.
  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_lb_listener.api]
}

# ------------------------------------------------------------------ load balancer

resource "aws_lb" "api" {
  name                       = var.name
  load_balancer_type         = "application"
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  idle_timeout               = 300 # a slow client's upload may pause; the API streams it, never buffers
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "api" {
  name                 = "${var.name}-api"
  port                 = local.api_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = aws_vpc.main.id
  deregistration_delay = 60

  # /healthz (the process answers), not /readyz: when Redis or PostgreSQL is down, every task would fail
  # /readyz and ECS would replace healthy tasks in a loop; the API answers 503 by itself meanwhile.
  health_check {
    path                = "/healthz"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# HTTPS when a certificate is given (HTTP then redirects), plain HTTP otherwise.
resource "aws_lb_listener" "api" {
  load_balancer_arn = aws_lb.api.arn
  port              = var.certificate_arn == "" ? 80 : 443
  protocol          = var.certificate_arn == "" ? "HTTP" : "HTTPS"
  certificate_arn   = var.certificate_arn == "" ? null : var.certificate_arn
  ssl_policy        = var.certificate_arn == "" ? null : "ELBSecurityPolicy-TLS13-1-2-2021-06"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

resource "aws_lb_listener" "http_to_https" {
  count             = var.certificate_arn == "" ? 0 : 1
  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}
