"""ops/k8s, checked against the code without a cluster.

- Valid YAML of known kinds; every container runs a real ``ingestro`` subcommand with variables the code reads.
- One Deployment per consumer group, and a KEDA ScaledObject for it whose ``redis-streams`` triggers
  watch exactly the streams that group reads, for that group, on the Redis the containers use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ingestro.cli.main import build_parser
from ingestro.config import ENVIRONMENT, Settings
from ingestro.services.consumer_groups import CONSUMER_NAMES, group_stream_keys

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "ops" / "k8s"
KUSTOMIZATION: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
DOCS: list[dict[str, Any]] = [
    doc for name in KUSTOMIZATION["resources"] for doc in yaml.safe_load_all((K8S / name).read_text()) if doc
]
#: Read by boto3, the S3 client: the standard region and credential variables.
SDK_VARIABLES = {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in DOCS if doc["kind"] == kind}


CONFIG: dict[str, str] = of_kind("ConfigMap")["ingestro"]["data"]
WORKLOADS = {**of_kind("Deployment"), **of_kind("Job")}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    [only] = workload["spec"]["template"]["spec"]["containers"]
    assert only["image"] == "ingestro", "kustomization.yaml's `images:` sets the real one"
    return only


def environment(workload: dict[str, Any]) -> set[str]:
    """Every variable the container gets: its ConfigMaps' keys and its own entries."""
    spec = container(workload)
    names = {entry["name"] for entry in spec.get("env", [])}
    for source in spec.get("envFrom", []):
        names |= set(of_kind("ConfigMap")[source["configMapRef"]["name"]]["data"])
    return names


def test_every_file_is_in_the_kustomization_and_of_a_known_kind() -> None:
    assert set(KUSTOMIZATION["resources"]) == {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert {doc["kind"] for doc in DOCS} == {"Namespace", "ConfigMap", "Job", "Deployment", "Service", "ScaledObject"}
    assert all(doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ingestro" for doc in DOCS)


def test_every_container_runs_a_real_command_with_variables_the_code_reads() -> None:
    assert set(CONFIG) <= set(ENVIRONMENT) | SDK_VARIABLES
    Settings.from_env({name: value for name, value in CONFIG.items() if name in ENVIRONMENT})
    assert CONFIG["INGESTRO_STORAGE_URL"].startswith("s3://"), "pods share no volume: uploads go to S3"
    for name, workload in WORKLOADS.items():
        build_parser().parse_args(container(workload)["args"])
        variables = environment(workload)
        assert variables <= set(ENVIRONMENT) | SDK_VARIABLES, (name, variables - set(ENVIRONMENT))
        assert {"INGESTRO_REDIS_URL", "INGESTRO_DATABASE_URL"} <= variables, name


def test_migrations_run_as_a_job() -> None:
    [job] = of_kind("Job").values()
    assert container(job)["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")


def test_one_deployment_per_consumer_serving_its_metrics() -> None:
    consumers = {}
    for name, deployment in of_kind("Deployment").items():
        args = build_parser().parse_args(container(deployment)["args"])
        if args.command == "consume":
            consumers[args.name] = name
            env = {entry["name"]: entry.get("value") for entry in container(deployment)["env"]}
            [port] = container(deployment)["ports"]
            assert int(env["INGESTRO_METRICS_PORT"]) == port["containerPort"], name
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(port["containerPort"]), name
    assert consumers == {name: f"ingestro-{name}" for name in CONSUMER_NAMES}


def test_the_api_is_probed_and_served_on_the_port_it_listens_on() -> None:
    api = of_kind("Deployment")["ingestro-api"]
    spec = container(api)
    args = build_parser().parse_args(spec["args"])
    assert args.command == "api" and args.host == "0.0.0.0"
    [port] = spec["ports"]
    assert port["containerPort"] == args.port
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    [service_port] = of_kind("Service")["ingestro-api"]["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    assert of_kind("Service")["ingestro-api"]["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]


def test_each_consumer_scales_on_the_lag_and_pending_entries_of_exactly_its_groups_streams() -> None:
    redis = urlsplit(CONFIG["INGESTRO_REDIS_URL"])
    scaled = of_kind("ScaledObject")
    assert set(scaled) == {f"ingestro-{name}" for name in CONSUMER_NAMES}
    for group in CONSUMER_NAMES:
        spec = scaled[f"ingestro-{group}"]["spec"]
        assert spec["scaleTargetRef"]["name"] == f"ingestro-{group}"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        watched: dict[str, set[str]] = {}
        for trigger in spec["triggers"]:
            assert trigger["type"] == "redis-streams"
            meta = trigger["metadata"]
            assert meta["consumerGroup"] == group
            assert meta["address"] == f"{redis.hostname}:{redis.port}"
            assert meta["databaseIndex"] == redis.path.strip("/")
            kinds = {"lagCount", "pendingEntriesCount"} & set(meta)
            assert len(kinds) == 1, meta  # KEDA reads one of them per trigger
            if "lagCount" in meta:
                assert "activationLagCount" in meta, "KEDA's lag trigger wants it set"
            watched.setdefault(meta["stream"], set()).update(kinds)
        assert watched == {
            stream: {"lagCount", "pendingEntriesCount"}
            for stream in group_stream_keys(Settings.from_env({}).partitions)[group]
        }, group
