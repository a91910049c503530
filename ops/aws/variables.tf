variable "region" {
  description = "AWS region of everything here."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name; also the ECS cluster and the task definition families (NAME-api, ...)."
  type        = string
  default     = "ingestro"
}

variable "github_repository" {
  description = "OWNER/REPO whose main branch may deploy (GitHub OIDC); see github.tf."
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's existing GitHub OIDC provider (there is one per account); empty: create it."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Image tag the task definitions start with. Deploys (the CI workflow) register new revisions on top."
  type        = string
  default     = "bootstrap"
}

variable "vpc_cidr" {
  description = "Address range of the VPC: two public and two private /24 subnets are cut from it."
  type        = string
  default     = "10.40.0.0/16"
}

variable "nat_gateways" {
  description = "NAT gateways for the private subnets' way out (ECR, CloudWatch, Secrets Manager): 1 is cheaper, 2 survives an AZ."
  type        = number
  default     = 1

  validation {
    condition     = var.nat_gateways >= 1 && var.nat_gateways <= 2
    error_message = "nat_gateways is 1 or 2."
  }
}

variable "allowed_cidrs" {
  description = "Who may reach the API's load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS on the load balancer; empty: plain HTTP on port 80 (test setups only)."
  type        = string
  default     = ""
}

variable "api_tasks" {
  description = "Smallest and largest number of API tasks (scaled on CPU)."
  type        = object({ min = number, max = number })
  default     = { min = 2, max = 6 }
}

variable "upload_retention_days" {
  description = "Days an uploaded file is kept in S3; 0 keeps files (Ingestro's default: a file can be parsed again while kept)."
  type        = number
  default     = 0
}

variable "upload_infrequent_access_days" {
  description = "Days after which a kept upload moves to S3 Standard-IA (read again only to re-parse); 0 never."
  type        = number
  default     = 30
}

variable "db_instance_class" {
  type    = string
  default = "db.m7g.large"
}

variable "db_allocated_storage_gb" {
  type    = number
  default = 100
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window)."
  type        = number
  default     = 14
}

variable "redis_shards" {
  description = "ElastiCache shards (node groups). At most INGESTRO_PARTITIONS (8) of them hold row streams: see the README's Redis Cluster section."
  type        = number
  default     = 2
}

variable "redis_node_type" {
  description = "ElastiCache node type. Size its memory for ~3.5x the CSV bytes kept in the streams (ops/README.md)."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_snapshot_retention_days" {
  description = "Days of daily ElastiCache snapshots."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "adot_image" {
  description = "The AWS Distro for OpenTelemetry collector that ships the API's Prometheus metrics to CloudWatch."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
}
