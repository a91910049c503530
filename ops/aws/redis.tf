# Redis on ElastiCache, holding the event streams. What its durability means for Ingestro: ops/aws/README.md.
#
# - No AOF: ElastiCache offers none on Redis 7. Durability comes from Multi-AZ replication with automatic
#   failover (asynchronous: a failover may lose the writes the replica had not received yet) and daily
#   snapshots (a restore loses everything since the snapshot).
# - Cluster mode off: the `jobs` group reads three streams in one XREADGROUP, and the stream names share
#   no hash slot. One shard, scaled up (node type), not out.
# - noeviction, as in docker-compose.yml: a full Redis refuses writes instead of evicting stream entries.

resource "aws_elasticache_subnet_group" "main" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_elasticache_parameter_group" "redis" {
  name   = "${var.name}-redis7"
  family = "redis7"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "random_password" "redis" {
  length  = 48
  special = false
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = var.name
  description          = "Ingestro event streams"
  engine               = "redis"
  engine_version       = "7.1"
  node_type            = var.redis_node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.redis.name
  subnet_group_name    = aws_elasticache_subnet_group.main.name
  security_group_ids   = [aws_security_group.redis.id]

  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true

  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result

  snapshot_retention_limit = var.redis_snapshot_retention_days
  snapshot_window          = "02:00-03:00"
  maintenance_window       = "sun:05:30-sun:06:30"

  auto_minor_version_upgrade = true
}

resource "aws_secretsmanager_secret" "redis_url" {
  name_prefix = "${var.name}/redis-url-"
}

# rediss://: TLS to the primary endpoint, which follows a failover.
resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379/0"
}
