# PostgreSQL on RDS: Multi-AZ (a synchronous standby in the other zone, automatic failover), encrypted,
# with automated backups (point-in-time recovery for db_backup_retention_days) and a final snapshot.

resource "aws_db_subnet_group" "main" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "postgres" {
  name   = "${var.name}-postgres16"
  family = "postgres16"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

resource "random_password" "database" {
  length  = 40
  special = false
}

resource "aws_db_instance" "postgres" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.db_instance_class

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_allocated_storage_gb * 5
  storage_type          = "gp3"
  storage_encrypted     = true

  db_name  = "ingestro"
  username = "ingestro"
  password = random_password.database.result

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.database.id]
  parameter_group_name   = aws_db_parameter_group.postgres.name
  publicly_accessible    = false

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade   = true
  performance_insights_enabled = true
}

# The whole URL is the secret: INGESTRO_DATABASE_URL is injected from it (services.tf), never in plain text.
resource "aws_secretsmanager_secret" "database_url" {
  name_prefix = "${var.name}/database-url-"
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgresql://ingestro:${random_password.database.result}@${aws_db_instance.postgres.address}:${aws_db_instance.postgres.port}/ingestro?sslmode=require"
}
