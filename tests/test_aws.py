"""ops/aws (Terraform), checked against the code offline: no provider download, no AWS account.

- The files are formatted and parse; the tasks run real ``ingestro`` commands with variables the code reads.
- One service per consumer group, scaling on the lag and pending gauges of exactly the streams that group
  reads, in the CloudWatch namespace the metrics collector writes them to.
- The CI workflow and the Terraform agree: variables, task definition families, services, OIDC trust.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from ingestro import metrics
from ingestro.cli.main import build_parser
from ingestro.config import ENVIRONMENT, Settings
from ingestro.services.consumer_groups import CONSUMER_NAMES, group_stream_keys
from tests.test_ci import DOC as WORKFLOW
from tests.test_ci import JOBS as WORKFLOW_JOBS
from tests.test_ci import WORKFLOW as WORKFLOW_PATH
from tests.test_deployment import exported_series

ROOT = Path(__file__).resolve().parent.parent
AWS = ROOT / "ops" / "aws"
TERRAFORM_FILES = sorted(AWS.glob("*.tf"))
COLLECTOR_TEMPLATE = AWS / "adot-collector.yaml.tftpl"
#: Set in the Ingestro containers for the S3 client (boto3 reads it), not by Ingestro's own code.
SDK_VARIABLES = {"AWS_REGION"}
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def parse(path: Path) -> dict[str, Any]:
    with path.open() as file:
        parsed: dict[str, Any] = hcl2.load(file, serialization_options=_OPTIONS)
    return parsed


CONFIG = {path.name: parse(path) for path in TERRAFORM_FILES}
LOCALS: dict[str, Any] = {
    name: value for doc in CONFIG.values() for block in doc.get("locals", []) for name, value in block.items()
}


def resources(kind: str) -> dict[str, dict[str, Any]]:
    """Every resource of ``kind``, by name."""
    return {
        name: body
        for doc in CONFIG.values()
        for block in doc.get("resource", [])
        for resource_kind, named in block.items()
        if resource_kind == kind
        for name, body in named.items()
    }


def terraform_text() -> str:
    return "\n".join(path.read_text() for path in TERRAFORM_FILES)


# ------------------------------------------------------------------ the files


def test_terraform_files_are_formatted() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed: `terraform fmt -check` not run (every file still parses, below)")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color"], cwd=AWS, capture_output=True, text=True
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive ops/aws`:\n{result.stdout}"


def test_every_file_parses_and_names_its_provider_versions() -> None:
    assert set(CONFIG) >= {"versions.tf", "services.tf", "database.tf", "redis.tf", "s3.tf", "scaling.tf"}
    [terraform] = CONFIG["versions.tf"]["terraform"]
    [providers] = terraform["required_providers"]
    assert providers["aws"]["source"] == "hashicorp/aws"


# ------------------------------------------------------------------ the tasks


def test_every_variable_a_task_sets_is_one_the_code_reads() -> None:
    environment, secrets = LOCALS["environment"], LOCALS["secrets"]
    assert set(environment) | set(secrets) <= set(ENVIRONMENT) | SDK_VARIABLES
    assert {"INGESTRO_REDIS_URL", "INGESTRO_DATABASE_URL", "INGESTRO_STORAGE_URL"} <= set(environment) | set(secrets)
    assert environment["INGESTRO_STORAGE_URL"].startswith("s3://")
    literal = {name: value for name, value in environment.items() if "${" not in value and name in ENVIRONMENT}
    Settings.from_env(literal)  # every literal value has its variable's type
    # Nowhere in ops/aws is a variable spelled that the code does not know (a typo reads as unset).
    mentioned = set(re.findall(r"\bINGESTRO_[A-Z0-9_]+", terraform_text() + COLLECTOR_TEMPLATE.read_text()))
    assert mentioned <= set(ENVIRONMENT), mentioned - set(ENVIRONMENT)


def test_each_task_runs_a_real_ingestro_command() -> None:
    commands: dict[str, list[str]] = LOCALS["commands"]
    assert set(commands) == {"migrate", "api", *CONSUMER_NAMES}
    for name, argv in commands.items():
        args = build_parser().parse_args(argv)
        if name in CONSUMER_NAMES:
            assert (args.command, args.name) == ("consume", name)
        else:
            assert args.command == name
    api = build_parser().parse_args(commands["api"])
    assert (api.host, api.port) == ("0.0.0.0", LOCALS["api_port"])
    assert resources("aws_ecs_task_definition")["ingestro"]["for_each"] == "${local.commands}"


def test_one_service_per_consumer_group_reading_that_groups_streams() -> None:
    consumers: dict[str, dict[str, Any]] = LOCALS["consumers"]
    assert set(consumers) == set(CONSUMER_NAMES)
    for name, consumer in consumers.items():
        assert tuple(consumer["streams"]) == group_stream_keys(Settings.from_env({}).partitions)[name], name
        assert 1 <= consumer["min_tasks"] <= consumer["max_tasks"], name


def test_the_load_balancer_checks_liveness_on_the_api_port() -> None:
    group = resources("aws_lb_target_group")["api"]
    assert group["port"] == "${local.api_port}"
    [health_check] = group["health_check"]
    assert health_check["path"] == "/healthz"


# ------------------------------------------------------------------ metrics and scaling


def collector_config(api_port: int = 8000) -> dict[str, Any]:
    """The collector's configuration as Terraform renders it (templatefile)."""
    text = COLLECTOR_TEMPLATE.read_text()
    values = {"api_port": str(api_port), "namespace": "Ingestro/test", "log_group": "/test/metrics"}
    rendered = re.sub(r"\$\{(\w+)\}", lambda match: values[match.group(1)], text)
    config: dict[str, Any] = yaml.safe_load(rendered)
    return config


def test_the_collector_scrapes_the_api_and_writes_the_backlog_gauges_by_group_and_stream() -> None:
    config = collector_config(LOCALS["api_port"])
    [scrape] = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    [static] = scrape["static_configs"]
    assert static["targets"] == [f"localhost:{LOCALS['api_port']}"] and scrape["metrics_path"] == "/metrics"
    emf = config["exporters"]["awsemf"]
    assert (emf["namespace"], emf["log_group_name"]) == ("Ingestro/test", "/test/metrics")
    declared = {
        name: declaration["dimensions"]
        for declaration in emf["metric_declarations"]
        for name in declaration["metric_name_selectors"]
    }
    assert set(declared) <= exported_series()
    assert declared[metrics.GROUP_LAG] == declared[metrics.GROUP_PENDING] == [["group", "stream"]]
    assert config["service"]["pipelines"]["metrics"]["exporters"] == ["awsemf"]
    # Terraform fills the template with the namespace the scaling policies read.
    rendering = LOCALS["metrics_collector"]["environment"][1]["value"]
    assert "adot-collector.yaml.tftpl" in rendering and "local.metrics_namespace" in rendering


def test_each_consumer_scales_on_its_groups_lag_and_pending_per_task() -> None:
    policy = resources("aws_appautoscaling_policy")["backlog"]
    assert policy["for_each"] == "${local.consumers}"
    [configuration] = policy["target_tracking_scaling_policy_configuration"]
    assert configuration["target_value"] == "${each.value.backlog_per_task}"
    [specification] = configuration["customized_metric_specification"]
    # Per stream of the group: its lag and pending gauges, as the collector writes them.
    [streams] = [block["metrics"] for block in specification["dynamic"]]
    assert f'"{metrics.GROUP_LAG}"' in streams["for_each"] and f'"{metrics.GROUP_PENDING}"' in streams["for_each"]
    assert "each.value.streams" in streams["for_each"]
    [[gauge]] = [stat["metric"] for stat in streams["content"][0]["metric_stat"]]
    assert gauge["namespace"] == "${local.metrics_namespace}"
    dimensions = {dimension["name"]: dimension["value"] for dimension in gauge["dimensions"]}
    assert dimensions == {"group": "${each.key}", "stream": "${metrics.value.stream}"}
    # Divided by the service's running tasks.
    by_id = {query["id"]: query for query in specification["metrics"]}
    [[tasks]] = [stat["metric"] for stat in by_id["tasks"]["metric_stat"]]
    assert (tasks["namespace"], tasks["metric_name"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert by_id["backlog_per_task"]["return_data"] is True
    assert by_id["backlog_per_task"]["expression"].endswith("/ tasks")


# ------------------------------------------------------------------ storage


def test_the_bucket_aborts_unfinished_uploads_and_expires_only_under_the_upload_prefix() -> None:
    text = (AWS / "s3.tf").read_text()
    assert "abort_incomplete_multipart_upload" in text
    assert LOCALS["environment"]["INGESTRO_STORAGE_URL"].endswith("/${local.upload_prefix}")
    assert text.count('prefix = "${local.upload_prefix}/"') == 2


# ------------------------------------------------------------------ the CI workflow


def workflow_variables() -> set[str]:
    return set(re.findall(r"\bvars\.([A-Z0-9_]+)", WORKFLOW_PATH.read_text()))


def test_the_workflow_reads_exactly_the_variables_terraform_outputs() -> None:
    [output] = [block["github_variables"] for block in CONFIG["outputs.tf"]["output"] if "github_variables" in block]
    assert workflow_variables() == set(output["value"])


def test_the_workflow_deploys_the_families_and_services_defined_here() -> None:
    families = {f"ingestro-{name}" for name in LOCALS["commands"]}  # "${var.name}-${each.key}", name "ingestro"
    assert resources("aws_ecs_task_definition")["ingestro"]["family"] == "${var.name}-${each.key}"
    text = WORKFLOW_PATH.read_text()
    assert "--task-definition ingestro-migrate" in text and "ingestro-${{ matrix.service }}" in text
    rolled = set(WORKFLOW_JOBS["rollout"]["strategy"]["matrix"]["service"])
    assert {f"ingestro-{name}" for name in rolled | {"migrate"}} == families
    # The services: the API and one per consumer (local.services merges the two).
    assert rolled == {"api", *LOCALS["consumers"]}
    assert resources("aws_ecs_service")["ingestro"]["for_each"] == "${local.services}"
    assert LOCALS["services"].startswith("${merge({api = ")


def test_only_the_main_branch_may_assume_the_deploy_role() -> None:
    assert '"repo:${var.github_repository}:ref:refs/heads/main"' in (AWS / "github.tf").read_text()
    # A job naming a GitHub environment would present `environment:NAME` instead, and be refused.
    assert not any("environment" in job for job in WORKFLOW_JOBS.values())
    # A push to main runs the workflow, so the deploying jobs' token says ref:refs/heads/main.
    assert "main" in WORKFLOW[True]["push"]["branches"]
