"""The deployment files, checked against the code without Docker, Prometheus or Grafana.

- The dashboard and the alert rules query only metrics the code exports, so they cannot silently break.
- docker-compose.yml runs real ``ingestro`` commands with real options and variables, and Prometheus
  scrapes every process it defines on the port that process serves.
- Grafana's provisioning points at the Prometheus service and at the dashboards compose mounts.
- The Dockerfile copies everything the image runs.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from ingestro import metrics
from ingestro.api.metrics import SERVER_FAILURES
from ingestro.cli.main import build_parser
from ingestro.config import ENVIRONMENT, Settings
from ingestro.services.consumer_groups import CONSUMER_NAMES, group_stream_keys
from ingestro.streams.collector import SharedStateCollector, streams_read

ROOT = Path(__file__).resolve().parent.parent
OPS = ROOT / "ops"
DASHBOARD = OPS / "grafana" / "dashboards" / "ingestro.json"
PROMETHEUS = OPS / "prometheus" / "prometheus.yml"
ALERTS = OPS / "prometheus" / "alerts.yml"
#: Series Prometheus makes itself for every target rather than reading them from one.
PROMETHEUS_SERIES = {"up"}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# ------------------------------------------------------------------ PromQL names


def exported_series() -> set[str]:
    """Every series name the code exports: its counters and histograms, and the scrape-time gauges."""
    wrappers = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    families = [family for wrapper in wrappers for family in wrapper.describe()]
    families += SharedStateCollector(streams_read(group_stream_keys(8))).describe()
    return {family.name + suffix for family in families for suffix in _SUFFIXES[family.type]}


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_NAME_MATCHER = re.compile(r'\b(stream|group)\s*(!?=)\s*"([^"]*)"')


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left once strings, label matchers,
    ranges and grouping clauses are gone, except functions (followed by a parenthesis) and keywords."""
    rest = _GROUPING.sub(" ", _RANGE.sub(" ", _MATCHERS.sub(" ", _STRING.sub('""', expr))))
    return {
        match.group()
        for match in _IDENTIFIER.finditer(rest)
        if not rest[match.end() :].lstrip().startswith("(") and match.group().lower() not in _KEYWORDS
    }


def dashboard_exprs() -> list[str]:
    def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for item in items for p in [item, *panels(item.get("panels", []))]]

    every = panels(json.loads(DASHBOARD.read_text())["panels"])
    return [target["expr"] for panel in every for target in panel.get("targets", [])]


def alert_exprs() -> list[str]:
    return [rule["expr"] for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def test_the_name_extraction_sees_through_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (group, le) (rate(a_bucket{group!="x", stream=~"b|c"}[$__rate_interval])))'
        " > 1e3 and on(group) up offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "up"}


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_queried_metric_is_one_the_code_exports(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else alert_exprs()
    assert exprs
    known = exported_series() | PROMETHEUS_SERIES
    unknown = {(name, expr) for expr in exprs for name in metric_names(expr) if name not in known}
    assert not unknown, f"queried but not exported: {sorted(unknown)}"
    # Streams and groups named in matchers are real ones.
    for expr in exprs:
        for label, _op, value in _NAME_MATCHER.findall(expr):
            keys = group_stream_keys(Settings.from_env({}).partitions)
            assert value in (streams_read(keys) if label == "stream" else keys), (label, value, expr)


def alert(name: str) -> dict[str, Any]:
    [rule] = [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if rule.get("alert") == name]
    return dict(rule)


def test_the_upload_failure_alert_counts_server_failures_only() -> None:
    [matcher] = re.findall(r'ingestro_uploads_total\{outcome=~"([^"]*)"\}', alert("IngestroUploadsFailing")["expr"])
    assert set(matcher.split("|")) == set(SERVER_FAILURES), "the 5xx outcomes, no client refusal"


_ABSENT = re.compile(r"absent\(up\{([^}]*)\}\)")


def test_a_service_whose_last_process_died_is_alerted_on() -> None:
    # up == 0 needs a target; a service with no replica left has none in DNS service discovery.
    expected: set[frozenset[tuple[str, str]]] = set()
    for job in load_yaml(PROMETHEUS)["scrape_configs"]:
        if not job["job_name"].startswith("ingestro-"):
            continue
        per_service = any(r.get("target_label") == "service" for r in job.get("relabel_configs", []))
        for name in (n for sd in job["dns_sd_configs"] for n in sd["names"]):
            labels = {("job", job["job_name"])} | ({("service", name)} if per_service else set())
            expected.add(frozenset(labels))
    rule = alert("IngestroServiceAbsent")
    found = {
        frozenset((label, value) for label, _, value in re.findall(r'(\w+)\s*(=)\s*"([^"]*)"', matchers))
        for matchers in _ABSENT.findall(rule["expr"])
    }
    assert found == expected
    assert rule["labels"]["severity"] == "page"
    assert rule["for"] == alert("IngestroProcessDown")["for"]


def test_the_dashboard_shows_what_operators_watch() -> None:
    queried = {name for expr in dashboard_exprs() for name in metric_names(expr)}
    assert {
        "ingestro_rows_parsed_total",
        "ingestro_uploads_total",
        "ingestro_upload_bytes_total",
        "ingestro_entry_handling_seconds_bucket",
        "ingestro_group_lag",
        "ingestro_group_pending",
        "ingestro_group_oldest_pending_idle_seconds",
        "ingestro_redeliveries_total",
        "ingestro_entries_dead_lettered_total",
        "ingestro_jobs",
    } <= queried
    styles = [
        panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {}).get("thresholdsStyle", {}).get("mode", "off")
        for panel in json.loads(DASHBOARD.read_text())["panels"]
    ]
    marked = [style for style in styles if style != "off"]
    assert len(marked) >= 4, "alert thresholds are drawn on the panels they concern"


def test_metric_names_follow_prometheus_conventions() -> None:
    for name in exported_series():
        assert re.fullmatch(r"ingestro_[a-z][a-z0-9_]*", name), name


# ---------------------------------------------------------------- docker-compose

COMPOSE = load_yaml(ROOT / "docker-compose.yml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
#: The services that run the Ingestro image.
INGESTRO = {name: service for name, service in SERVICES.items() if "build" in service}


def command_of(service: dict[str, Any]) -> Any:
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"not a valid ingestro command: {argv}")


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def metrics_port_of(service: dict[str, Any]) -> int:
    args = command_of(service)
    if args.command == "api":
        return int(args.port)
    settings = Settings.from_env(environment_of(service))
    return int(settings.metrics_port if args.metrics_port is None else args.metrics_port)


def test_every_ingestro_service_runs_a_real_command_with_real_variables() -> None:
    assert set(INGESTRO) >= {"migrate", "api", *CONSUMER_NAMES}
    for name, service in INGESTRO.items():
        args = command_of(service)
        environment = environment_of(service)
        assert set(environment) <= set(ENVIRONMENT), f"{name} sets variables the code does not read"
        Settings.from_env(environment)  # every value has its type
        if args.command == "consume":
            assert name == args.name, "a consumer's service is named after it"
            assert service["deploy"]["replicas"] >= 1
            assert metrics_port_of(service) > 0 and args.metrics_host == "0.0.0.0", f"{name} serves no metrics"
            assert "ports" not in service, "replicas cannot share a published port"


def test_one_service_per_consumer_and_the_api_published_on_its_port() -> None:
    consumers = sorted(command_of(s).name for s in INGESTRO.values() if command_of(s).command == "consume")
    assert consumers == sorted(CONSUMER_NAMES)
    api = command_of(SERVICES["api"])
    assert api.host == "0.0.0.0"
    assert [str(p).rsplit(":", 1)[-1] for p in SERVICES["api"]["ports"]] == [str(api.port)]


def test_the_api_and_the_parser_share_the_upload_volume() -> None:
    mounts = {}
    for name in ("api", "parser"):
        upload_dir = Settings.from_env(environment_of(SERVICES[name])).upload_dir
        [volume] = [v.split(":")[0] for v in SERVICES[name]["volumes"] if v.split(":")[1] == str(upload_dir)]
        mounts[name] = volume
    assert mounts["api"] == mounts["parser"] and mounts["api"] in COMPOSE["volumes"]


def test_migrations_run_once_before_the_services_that_need_them() -> None:
    assert command_of(SERVICES["migrate"]).command == "migrate"
    assert SERVICES["migrate"]["restart"] == "no"
    for name, service in INGESTRO.items():
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_redis_keeps_an_append_only_file() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


#: A compose variable with a default (``${NAME:-default}``) or a required one (``${NAME:?message}``).
_DEFAULTED = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*):-(?P<default>[^}]+)\}")
_REQUIRED = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*):\?(?P<message>[^}]+)\}")


def test_redis_refuses_writes_when_full_under_a_configurable_maxmemory() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    # noeviction means nothing without maxmemory: Redis would grow until the kernel kills it.
    assert "--maxmemory" in command, "maxmemory-policy applies only under a maxmemory"
    maxmemory = _DEFAULTED.fullmatch(command[command.index("--maxmemory") + 1])
    assert maxmemory, "the operator sizes maxmemory with a variable (with a default)"
    assert re.fullmatch(r"[1-9][0-9]*(?:[kmg]b?)?", maxmemory["default"], re.IGNORECASE), "a size Redis reads"
    assert maxmemory["name"] in (OPS / "README.md").read_text(), "ops/README.md says how to size it"


def test_only_loopback_publishes_a_port() -> None:
    published = [(name, str(port)) for name, service in SERVICES.items() for port in service.get("ports", [])]
    assert {name for name, _ in published} >= {"api", "prometheus", "grafana"}
    for name, port in published:
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_grafana_has_no_default_admin_password() -> None:
    password = environment_of(SERVICES["grafana"])["GF_SECURITY_ADMIN_PASSWORD"]
    required = _REQUIRED.fullmatch(password)
    assert required, f"compose must refuse to start without a password, not fall back to one: {password}"
    assert required["name"] in (OPS / "README.md").read_text()
    for ignore in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignore).read_text().split(), f"{ignore}: compose's .env holds the passwords"


# ------------------------------------------------------------ Prometheus, Grafana


def mounted(service: str, source: Path) -> str:
    """Where compose mounts the repository path ``source`` in ``service``."""
    for volume in SERVICES[service]["volumes"]:
        host, container = volume.split(":")[:2]
        if host.startswith(".") and (ROOT / host).resolve() == source.resolve():
            return str(container)
    raise AssertionError(f"{service} does not mount {source.relative_to(ROOT)}")


def test_prometheus_scrapes_every_ingestro_process_on_the_port_it_serves() -> None:
    config = load_yaml(PROMETHEUS)
    scraped: set[tuple[str, int]] = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            scraped |= {(name, int(sd["port"])) for name in sd["names"]}
        for static in job.get("static_configs", []):
            scraped |= {(host, int(port)) for host, port in (t.rsplit(":", 1) for t in static["targets"])}
        assert job.get("metrics_path", "/metrics") == "/metrics"
    expected = {(name, metrics_port_of(service)) for name, service in INGESTRO.items() if name != "migrate"}
    assert scraped - {("localhost", 9090)} == expected
    config_dir = mounted("prometheus", PROMETHEUS.parent)
    assert f"--config.file={config_dir}/{PROMETHEUS.name}" in SERVICES["prometheus"]["command"]
    for rules in config["rule_files"]:
        assert (PROMETHEUS.parent / rules).is_file()


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboards() -> None:
    provisioning = OPS / "grafana" / "provisioning"
    assert mounted("grafana", provisioning) == "/etc/grafana/provisioning"
    [datasource] = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in SERVICES
    [provider] = load_yaml(provisioning / "dashboards" / "ingestro.yml")["providers"]
    assert provider["options"]["path"] == mounted("grafana", DASHBOARD.parent)
    # The dashboard's datasource variable starts on the provisioned one: by name here (its value is the
    # import's input, which provisioning leaves unresolved), by uid after an import.
    [variable] = [v for v in variables() if v["type"] == "datasource"]
    assert variable["query"] == datasource["type"] and variable["current"]["text"] == datasource["name"]
    assert datasource["isDefault"] is True, "and Grafana falls back to the default one"


# ------------------------------------------------------------------ the dashboard

DATASOURCE_VARIABLE = {"type": "prometheus", "uid": "${datasource}"}


def variables() -> list[dict[str, Any]]:
    return list(json.loads(DASHBOARD.read_text())["templating"]["list"])


def test_the_dashboard_imports_into_any_grafana_without_edits() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    [source] = dashboard["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "prometheus")
    assert {("datasource", "prometheus"), ("grafana", "grafana")} <= {
        (r["type"], r["id"]) for r in dashboard["__requires"]
    }
    by_name = {variable["name"]: variable for variable in variables()}
    # The import asks for a Prometheus and the datasource variable starts on the one chosen.
    assert by_name["datasource"]["type"] == "datasource" and by_name["datasource"]["query"] == "prometheus"
    assert by_name["datasource"]["current"]["value"] == f"${{{source['name']}}}"
    # Every panel and every query reads from that variable: no uid of one particular Grafana.
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE_VARIABLE, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"] == DATASOURCE_VARIABLE, panel["title"]
    for variable in variables():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_VARIABLE, variable["name"]
    uids = re.findall(r'"uid":\s*"([^"]*)"', DASHBOARD.read_text())
    assert set(uids) == {dashboard["uid"], "${datasource}"}


_GROUPING_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"\b(ingestro_\w+|up)\b(\{[^}]*\})?")


def test_the_panels_per_group_or_per_service_follow_the_group_and_job_variables() -> None:
    by_name = {variable["name"]: variable for variable in variables()}
    label_values = re.compile(r"label_values\((\w+)(\{[^}]*\})?,\s*(\w+)\)")
    for name in ("group", "job"):
        variable = by_name[name]
        assert variable["type"] == "query" and variable["multi"] and variable["includeAll"], name
        query = label_values.fullmatch(variable["query"])
        assert query, variable["query"]
        metric, _, label = query.groups()
        assert label == name and metric in exported_series() | PROMETHEUS_SERIES
    jobs = [job["job_name"] for job in load_yaml(PROMETHEUS)["scrape_configs"]]
    assert [job for job in jobs if re.fullmatch(by_name["job"]["allValue"], job)] == [
        job for job in jobs if job.startswith("ingestro-")
    ]
    scoped = {"group": 0, "job": 0}
    for expr in dashboard_exprs():
        grouped = {label.strip() for clause in _GROUPING_BY.findall(expr) for label in clause.split(",")}
        for name, series in (("group", "ingestro_"), ("job", "up")):
            if name not in grouped:
                continue
            for metric, matchers in _SELECTOR.findall(expr):
                if metric.startswith(series):
                    assert f'{name}=~"${name}"' in matchers, f"{expr} shows every {name}, not the chosen ones"
                    scoped[name] += 1
    assert scoped["group"] >= 8 and scoped["job"] >= 1


# ------------------------------------------------------------------- Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_holds_every_package_the_migrations_and_the_command() -> None:
    instructions = dockerfile()
    copied = {src for op, args in instructions if op == "COPY" for src in args.split()[:-1]}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {package.split(".")[0] for package in pyproject["tool"]["setuptools"]["packages"]}
    assert packages | {"db", "pyproject.toml", pyproject["project"]["readme"]} <= copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not copied & set(ignored)
    environment = dict(
        pair.split("=", 1) for op, args in instructions if op == "ENV" for pair in args.split() if "=" in pair
    )
    ingestro_variables = {name for name in environment if name.startswith("INGESTRO_")}
    assert ingestro_variables <= set(ENVIRONMENT)
    assert [args for op, args in instructions if op == "ENTRYPOINT"] == ['["ingestro"]']
    exposed = {int(port) for op, args in instructions if op == "EXPOSE" for port in args.split()}
    assert {metrics_port_of(service) for name, service in INGESTRO.items() if name != "migrate"} <= exposed
