# Redis on ElastiCache, holding the event streams. What its durability means for Ingestro: ops/aws/README.md.
#
# - No AOF: ElastiCache offers none on Redis 7. Durability comes from Multi-AZ replication with automatic
#   failover (asynchronous: a failover may lose the writes the replica had not received yet) and daily
#   snapshots (a restore loses everything since the snapshot).
# - Cluster mode on (INGESTRO_REDIS_MODE=cluster, services.tf): every multi-key command names keys of one
#   hash slot (ingestro/streams/names.py), and each row stream's INGESTRO_PARTITIONS partitions spread over
#   the shards, so capacity grows with var.redis_shards (README: Redis Cluster). One replica per shard.
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

  parameter {
    name  = "cluster-enabled"
    value = "yes"
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

  num_node_groups            = var.redis_shards
  replicas_per_node_group    = 1
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

# rediss://: TLS to the configuration endpoint, from which the cluster client discovers every shard.
resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.redis.configuration_endpoint_address}:6379"
}
