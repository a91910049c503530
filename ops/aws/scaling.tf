# Each consumer service scales on its group's backlog per running task: (lag + pending entries over the
# streams the group reads) / RunningTaskCount, held at the consumer's backlog_per_task (services.tf).
# Lag says work is waiting (add tasks); pending says work is in hand (do not take tasks away under it).
# Lag is absent when Redis cannot tell (entries deleted past the group): FILL counts it as 0 then.
# The API scales on CPU.

resource "aws_appautoscaling_target" "service" {
  for_each           = local.services
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.ingestro[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.min_tasks
  max_capacity       = each.value.max_tasks
}

resource "aws_appautoscaling_policy" "backlog" {
  for_each           = local.consumers
  name               = "${var.name}-${each.key}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.service[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.service[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.backlog_per_task
    scale_out_cooldown = 60
    # A task scaled in gets SIGTERM and up to 120 s to finish; a parser in the middle of a large file is
    # cut off and its file parsed again elsewhere. Scale in slowly.
    scale_in_cooldown = each.key == "parser" ? 900 : 300

    customized_metric_specification {
      dynamic "metrics" {
        for_each = { for pair in setproduct(["lag", "pending"], range(length(each.value.streams))) : "${pair[0]}${pair[1]}" => {
          metric = pair[0] == "lag" ? "ingestro_group_lag" : "ingestro_group_pending"
          stream = each.value.streams[pair[1]]
        } }
        content {
          id          = metrics.key
          return_data = false
          metric_stat {
            stat = "Maximum" # every API task reports the same value
            metric {
              namespace   = local.metrics_namespace
              metric_name = metrics.value.metric
              dimensions {
                name  = "group"
                value = each.key
              }
              dimensions {
                name  = "stream"
                value = metrics.value.stream
              }
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.main.name
            }
            dimensions {
              name  = "ServiceName"
              value = each.key
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "${each.key}: entries waiting or in hand per task"
        expression  = "(${join(" + ", [for i in range(length(each.value.streams)) : "FILL(lag${i}, 0) + FILL(pending${i}, 0)"])}) / tasks"
        return_data = true
      }
    }
  }
}

resource "aws_appautoscaling_policy" "api_cpu" {
  name               = "${var.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service["api"].service_namespace
  resource_id        = aws_appautoscaling_target.service["api"].resource_id
  scalable_dimension = aws_appautoscaling_target.service["api"].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
