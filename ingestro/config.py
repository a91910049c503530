"""Configuration from the environment: every ``INGESTRO_*`` variable is read here and only here."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from ingestro.domain.limits import DEFAULT_LIMITS, DEPTH_CEILING, Limits

#: Most stream keys per row stream (INGESTRO_PARTITIONS): a partition per 32 of Redis Cluster's 16384 slots.
MAX_PARTITIONS = 512
#: Most replicas INGESTRO_REDIS_WAIT_REPLICAS may require.
MAX_WAIT_REPLICAS = 5

#: Each setting: environment variable -> (Settings attribute, default, meaning); `ingestro --help` lists them.
ENVIRONMENT: dict[str, tuple[str, str, str]] = {
    "INGESTRO_REDIS_URL": (
        "redis_url",
        "redis://127.0.0.1:6379/0",
        "Redis server holding the event streams (in cluster mode: any one node of the cluster)",
    ),
    "INGESTRO_REDIS_MODE": (
        "redis_mode",
        "single",
        "single: one Redis server (or a primary with replicas); cluster: a Redis Cluster, discovered from"
        " INGESTRO_REDIS_URL",
    ),
    "INGESTRO_PARTITIONS": (
        "partitions",
        "8",
        "Stream keys per row stream, spread over the cluster's slots (1 to 512; fixed for the life of a"
        " deployment: see the README's Redis Cluster section)",
    ),
    "INGESTRO_REDIS_WAIT_REPLICAS": (
        "redis_wait_replicas",
        "0",
        "Replicas every event must reach (Redis WAIT) before the entry that produced it is acked, so a failover"
        " loses nothing acknowledged (0 to 5; 0: no wait; see the README's Redis Cluster section)",
    ),
    "INGESTRO_DATABASE_URL": (
        "database_url",
        "postgresql://ingestro@127.0.0.1:5432/ingestro",
        "PostgreSQL database holding the projections",
    ),
    "INGESTRO_UPLOAD_DIR": (
        "upload_dir",
        "./uploads",
        "Upload storage shared by the API and the parser, when INGESTRO_STORAGE_URL is unset",
    ),
    "INGESTRO_STORAGE_URL": (
        "storage_url",
        "",
        "Upload storage on S3 or an S3-compatible server: s3://bucket/prefix (unset: INGESTRO_UPLOAD_DIR)",
    ),
    "INGESTRO_S3_ENDPOINT_URL": (
        "s3_endpoint_url",
        "",
        "S3 endpoint other than AWS's, e.g. MinIO; credentials and region from the standard AWS_* variables",
    ),
    "INGESTRO_MAX_UPLOAD_BYTES": ("max_upload_bytes", str(2 * 1024**3), "Largest accepted upload (413 above)"),
    "INGESTRO_IMPORT_ALLOW": (
        "import_allow",
        "",
        "Non-public networks pull imports may reach, comma-separated (10.0.0.0/8,192.168.1.5); unset: public"
        " addresses only (metadata addresses are never reached)",
    ),
    "INGESTRO_WEBHOOK_ATTEMPTS": (
        "webhook_attempts",
        "5",
        "Attempts at delivering a job event to a webhook endpoint (backoff 1, 2, 4… s) before it is dead-lettered",
    ),
    "INGESTRO_IDEMPOTENCY_TTL_S": (
        "idempotency_ttl_s",
        str(24 * 3600),
        "How long an upload's Idempotency-Key is remembered (a reuse after that is a new upload)",
    ),
    "INGESTRO_RATE_LIMIT": (
        "rate_limit",
        "50",
        "Requests per second each API key may make, on average, over every API process (0: no limit)",
    ),
    "INGESTRO_RATE_BURST": ("rate_burst", "100", "Requests an API key may make at once, above the rate (at least 1)"),
    "INGESTRO_MAX_CONCURRENT_UPLOADS": (
        "max_concurrent_uploads",
        "4",
        "Uploads each API key may be sending at once, over every API process (0: no limit)",
    ),
    "INGESTRO_BODY_IDLE_TIMEOUT_S": (
        "body_idle_timeout_s",
        "30",
        "Seconds a request body may send nothing before it is cut off with a 408 (more than 0)",
    ),
    "INGESTRO_BODY_MIN_RATE": (
        "body_min_rate",
        "1024",
        "Bytes per second a request body must average once it has taken INGESTRO_BODY_IDLE_TIMEOUT_S seconds,"
        " or be cut off with a 408 (0: no minimum)",
    ),
    "INGESTRO_MAX_EVENT_STREAMS": (
        "max_event_streams",
        "100",
        "GET /jobs/{id}/events streams one API process serves at once (each holds a Redis connection)",
    ),
    "INGESTRO_EVENTS_HEARTBEAT_S": (
        "events_heartbeat_s",
        "15",
        "Seconds between keepalive comments on an idle event stream (more than 0, at most 25)",
    ),
    "INGESTRO_BATCH_SIZE": (
        "batch_size",
        "2000",
        "Rows per RowsAccepted / RowsRejected event at most (fewer where rows are large: 16 MiB of text at most)",
    ),
    "INGESTRO_PARSE_RANGE_BYTES": (
        "parse_range_bytes",
        str(64 * 1024 * 1024),
        "Bytes per range when one CSV or NDJSON file of twice as many or more is parsed by the whole parser group"
        " (0: one parser per file)",
    ),
    "INGESTRO_MAX_FIELD_CHARS": (
        "max_field_chars",
        str(DEFAULT_LIMITS.field_chars),
        "Longest CSV field or JSON string; a longer one rejects its row",
    ),
    "INGESTRO_MAX_ROW_CHARS": (
        "max_row_chars",
        str(DEFAULT_LIMITS.row_chars),
        "Longest CSV record or JSON element; a longer one is rejected",
    ),
    "INGESTRO_MAX_LINE_CHARS": (
        "max_line_chars",
        str(DEFAULT_LIMITS.line_chars),
        "Longest physical line of a CSV or NDJSON file; a longer one is rejected",
    ),
    "INGESTRO_MAX_COLUMNS": (
        "max_columns",
        str(DEFAULT_LIMITS.columns),
        "Most CSV header columns (more fails the job) or JSON object keys (more rejects the row)",
    ),
    "INGESTRO_MAX_JSON_DEPTH": (
        "max_json_depth",
        str(DEFAULT_LIMITS.json_depth),
        f"Deepest JSON row (at most {DEPTH_CEILING}); a deeper one is rejected",
    ),
    "INGESTRO_MAX_DECOMPRESSED_BYTES": (
        "max_decompressed_bytes",
        str(DEFAULT_LIMITS.decompressed_bytes),
        "Largest decompressed size of a gzip upload (more fails the job)",
    ),
    "INGESTRO_MAX_COMPRESSION_RATIO": (
        "max_compression_ratio",
        str(DEFAULT_LIMITS.compression_ratio),
        "Largest decompressed/compressed size ratio of a gzip upload (more fails the job)",
    ),
    "INGESTRO_MAX_SHARED_STRINGS_BYTES": (
        "max_shared_strings_bytes",
        str(DEFAULT_LIMITS.shared_strings_bytes),
        "Largest shared-string table of an XLSX workbook, in memory (more fails the job)",
    ),
    "INGESTRO_MAX_ROW_GROUP_BYTES": (
        "max_row_group_bytes",
        str(DEFAULT_LIMITS.row_group_bytes),
        "Largest uncompressed row group of a Parquet file, in the columns read (more fails the job)",
    ),
    "INGESTRO_BLOCK_MS": ("block_ms", "2000", "How long a consumer's XREADGROUP blocks waiting for entries"),
    "INGESTRO_VISIBILITY_TIMEOUT_S": (
        "visibility_timeout_s",
        "60",
        "Idle time after which another consumer reclaims a pending entry",
    ),
    "INGESTRO_MAX_DELIVERIES": ("max_deliveries", "5", "Deliveries before an entry goes to the dead-letter stream"),
    "INGESTRO_CONCURRENCY": ("concurrency", "2", "Entries (or groups of entries) a consumer process handles at once"),
    "INGESTRO_GROUP_SIZE": (
        "group_size",
        "8",
        "Fresh entries a projection applies in one transaction (1: each alone)",
    ),
    "INGESTRO_GROUP_LINGER_MS": (
        "group_linger_ms",
        "20",
        "When a projection's read brings fewer entries than a full group, wait this long and read again (0: never)",
    ),
    "INGESTRO_MAX_BACKLOG": (
        "max_backlog",
        "250",
        "Entries of a row stream not yet acked by a group that reads it, above which the parser pauses until"
        " they drain (0: no bound)",
    ),
    "INGESTRO_STREAM_RETENTION_S": (
        "stream_retention_s",
        str(7 * 24 * 3600),
        "Keep stream entries every group acked this long before trimming them (0: trim once acked; DLQ never)",
    ),
    "INGESTRO_RETENTION_INTERVAL_S": (
        "retention_interval_s",
        "60",
        "How often the `jobs` consumer trims the streams",
    ),
    "INGESTRO_FILE_RETENTION_DAYS": (
        "file_retention_days",
        "",
        "Delete the uploaded files of finished jobs received more than this many days ago, beside stream"
        " retention (unset: keep every file)",
    ),
    "INGESTRO_CONSUMER_NAME": (
        "consumer_name",
        "",
        "Consumer name within its group (unset: HOSTNAME-SLOT, stable across restarts)",
    ),
    "INGESTRO_LOG_LEVEL": ("log_level", "INFO", "Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    "INGESTRO_METRICS_PORT": (
        "metrics_port",
        "0",
        "Port `ingestro consume` serves Prometheus metrics on (0: none; the API serves them at /metrics)",
    ),
    "INGESTRO_CONSUMER_SLOT": ("consumer_slot", "0", "Default --slot of `ingestro consume`"),
    "INGESTRO_DATASETS_DIR": (
        "datasets_dir",
        "",
        "Directory of dataset declarations (one *.json or *.toml per dataset) that `ingestro migrate` and"
        " `ingestro dev` declare, beside the built-in ones (unset: the built-in ones only)",
    ),
    "INGESTRO_URL": (
        "api_url",
        "http://127.0.0.1:8000",
        "The API `ingestro upload`, `jobs` and `errors` call (or --url)",
    ),
    "INGESTRO_API_KEY": ("api_key", "", "The API key `ingestro upload`, `jobs` and `errors` send (a token)"),
}


class NotAccepted(ValueError):
    """A setting's value outside what it accepts; the message says what it accepts ("must be ...")."""


class InvalidSetting(ValueError):
    """A variable's value refused, in one line naming the variable and what it accepts."""


def _whole(raw: str | int, minimum: int, maximum: int | None = None) -> int:
    accepts = (
        f"a whole number from {minimum} to {maximum}" if maximum is not None else f"a whole number, at least {minimum}"
    )
    try:
        value = int(raw)
    except ValueError:
        raise NotAccepted(f"must be {accepts}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise NotAccepted(f"must be {accepts}")
    return value


def _number(raw: str | float, minimum: float, *, above: bool = False, maximum: float | None = None) -> float:
    accepts = "a number, " + (f"more than {minimum:g}" if above else f"at least {minimum:g}")
    if maximum is not None:
        accepts += f" and at most {maximum:g}"
    try:
        value = float(raw)
    except ValueError:
        raise NotAccepted(f"must be {accepts}") from None
    # NaN fails every comparison, so it is refused too.
    if not (value > minimum if above else value >= minimum) or (maximum is not None and not value <= maximum):
        raise NotAccepted(f"must be {accepts}")
    return value


def _positive_int(raw: str | int) -> int:
    """At least 1: sizes, counts and timeouts where 0 means nothing (or, for Redis's BLOCK, forever)."""
    return _whole(raw, 1)


def _non_negative_int(raw: str | int) -> int:
    return _whole(raw, 0)


def _port(raw: str | int) -> int:
    return _whole(raw, 0, 65535)


def _json_depth(raw: str | int) -> int:
    return _whole(raw, 1, DEPTH_CEILING)


def _non_negative_float(raw: str | float) -> float:
    return _number(raw, 0.0)


def _positive_float(raw: str | float) -> float:
    return _number(raw, 0.0, above=True)


def _ratio(raw: str | float) -> float:
    """At least 1: gzip never inflates a file to less than its compressed size's worth of bytes."""
    return _number(raw, 1.0)


def _optional_days(raw: str | float | None) -> float | None:
    """Unset (empty): None, keep forever; otherwise a number of days, at least 0."""
    if raw is None or raw == "":
        return None
    return _number(raw, 0.0)


def _heartbeat(raw: str | float) -> float:
    """More than 0 and at most 25 s: a stream's blocking read must end well within the API's 30 s socket timeout."""
    return _number(raw, 0.0, above=True, maximum=25.0)


def _url(raw: str, schemes: tuple[str, ...], example: str, optional: bool = False) -> str:
    if optional and raw == "":
        return raw
    parsed = urlsplit(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path.strip("/")) or raw != raw.strip():
        spelled = " or ".join(f"{scheme}://" for scheme in schemes)
        raise NotAccepted(f"must be {'unset or ' if optional else ''}a {spelled} URL, e.g. {example}")
    return raw


def _redis_url(raw: str) -> str:
    return _url(raw, ("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0")


def _redis_mode(raw: str) -> str:
    if raw not in ("single", "cluster"):
        raise NotAccepted("must be single or cluster")
    return raw


def _partitions(raw: str | int) -> int:
    return _whole(raw, 1, MAX_PARTITIONS)


def _wait_replicas(raw: str | int) -> int:
    return _whole(raw, 0, MAX_WAIT_REPLICAS)


def _database_url(raw: str) -> str:
    return _url(raw, ("postgresql", "postgres"), "postgresql://ingestro@127.0.0.1:5432/ingestro")


def _storage_url(raw: str) -> str:
    return _url(raw, ("s3",), "s3://bucket/prefix", optional=True)


def _s3_endpoint_url(raw: str) -> str:
    return _url(raw, ("http", "https"), "http://127.0.0.1:9000", optional=True)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(raw: str | tuple[Network, ...]) -> tuple[Network, ...]:
    """Comma-separated networks or addresses (an address is its /32 or /128); empty: none."""
    if isinstance(raw, tuple):
        return raw
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise NotAccepted(
                f"must be networks or addresses, comma-separated (10.0.0.0/8,::1); {item!r} is not one"
            ) from None
    return tuple(networks)


def _api_url(raw: str) -> str:
    return _url(raw, ("http", "https"), "http://127.0.0.1:8000")


def _directory(raw: str | Path) -> Path:
    if isinstance(raw, Path):
        return raw
    if not raw.strip() or not raw.isprintable():
        raise NotAccepted("must be a directory path (not empty)")
    return Path(raw)


def _optional_directory(raw: str) -> str:
    if raw and (not raw.strip() or not raw.isprintable()):
        raise NotAccepted("must be unset or a directory path")
    return raw


def _consumer_name(raw: str) -> str:
    if raw and (len(raw) > 200 or not raw.isprintable() or any(char.isspace() for char in raw)):
        raise NotAccepted("must be unset or a name of at most 200 printable characters without spaces")
    return raw


#: How `ingestro keys create` spells a token (ingestro.database.keys.new_token).
_TOKEN = re.compile(r"ingestro_[0-9a-f]+_[A-Za-z0-9_-]+")


def _api_key(raw: str) -> str:
    if raw and not _TOKEN.fullmatch(raw):
        raise NotAccepted("must be unset or a token as `ingestro keys create` prints it (ingestro_<id>_<secret>)")
    return raw


def _log_level(raw: str) -> str:
    """One of the logging module's level names, any case; kept in upper case."""
    names = [name for name in logging.getLevelNamesMapping() if name != "NOTSET"]
    if raw.upper() not in names:
        raise NotAccepted(f"must be one of {', '.join(names)}")
    return raw.upper()


@attrs.frozen
class Settings:
    """Every setting, each converted and checked when built (``from_env``): a bad value raises ``InvalidSetting``."""

    redis_url: str = attrs.field(converter=_redis_url)
    redis_mode: str = attrs.field(converter=_redis_mode)
    partitions: int = attrs.field(converter=_partitions)
    redis_wait_replicas: int = attrs.field(converter=_wait_replicas)
    database_url: str = attrs.field(converter=_database_url)
    upload_dir: Path = attrs.field(converter=_directory)
    storage_url: str = attrs.field(converter=_storage_url)
    s3_endpoint_url: str = attrs.field(converter=_s3_endpoint_url)
    max_upload_bytes: int = attrs.field(converter=_positive_int)
    import_allow: tuple[Network, ...] = attrs.field(converter=_networks)
    webhook_attempts: int = attrs.field(converter=_positive_int)
    idempotency_ttl_s: int = attrs.field(converter=_positive_int)
    rate_limit: float = attrs.field(converter=_non_negative_float)
    rate_burst: int = attrs.field(converter=_positive_int)
    max_concurrent_uploads: int = attrs.field(converter=_non_negative_int)
    body_idle_timeout_s: float = attrs.field(converter=_positive_float)
    body_min_rate: float = attrs.field(converter=_non_negative_float)
    max_event_streams: int = attrs.field(converter=_positive_int)
    events_heartbeat_s: float = attrs.field(converter=_heartbeat)
    batch_size: int = attrs.field(converter=_positive_int)
    parse_range_bytes: int = attrs.field(converter=_non_negative_int)
    max_field_chars: int = attrs.field(converter=_positive_int)
    max_row_chars: int = attrs.field(converter=_positive_int)
    max_line_chars: int = attrs.field(converter=_positive_int)
    max_columns: int = attrs.field(converter=_positive_int)
    max_json_depth: int = attrs.field(converter=_json_depth)
    max_decompressed_bytes: int = attrs.field(converter=_positive_int)
    max_compression_ratio: float = attrs.field(converter=_ratio)
    max_shared_strings_bytes: int = attrs.field(converter=_positive_int)
    max_row_group_bytes: int = attrs.field(converter=_positive_int)
    block_ms: int = attrs.field(converter=_positive_int)
    visibility_timeout_s: float = attrs.field(converter=_positive_float)
    max_deliveries: int = attrs.field(converter=_positive_int)
    concurrency: int = attrs.field(converter=_positive_int)
    group_size: int = attrs.field(converter=_positive_int)
    group_linger_ms: int = attrs.field(converter=_non_negative_int)
    max_backlog: int = attrs.field(converter=_non_negative_int)
    stream_retention_s: float = attrs.field(converter=_non_negative_float)
    retention_interval_s: float = attrs.field(converter=_positive_float)
    file_retention_days: float | None = attrs.field(converter=_optional_days)
    consumer_name: str = attrs.field(converter=_consumer_name)
    log_level: str = attrs.field(converter=_log_level)
    metrics_port: int = attrs.field(converter=_port)
    consumer_slot: int = attrs.field(converter=_non_negative_int)
    datasets_dir: str = attrs.field(converter=_optional_directory)
    api_url: str = attrs.field(converter=_api_url)
    api_key: str = attrs.field(converter=_api_key)

    @property
    def limits(self) -> Limits:
        return Limits(
            field_chars=self.max_field_chars,
            row_chars=self.max_row_chars,
            line_chars=self.max_line_chars,
            columns=self.max_columns,
            json_depth=self.max_json_depth,
            decompressed_bytes=self.max_decompressed_bytes,
            compression_ratio=self.max_compression_ratio,
            shared_strings_bytes=self.max_shared_strings_bytes,
            row_group_bytes=self.max_row_group_bytes,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); keyword overrides win.

        Raises ``InvalidSetting`` (a ``ValueError``), one line naming the variable and what it accepts,
        when a value is refused.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for variable, (attribute, default, _meaning) in ENVIRONMENT.items():
            raw = environ.get(variable, default)
            try:
                values[attribute] = _CONVERTERS[attribute](raw)
            except NotAccepted as refused:
                raise InvalidSetting(f"{variable}={raw!r} is not a valid value: {refused}") from None
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


#: Each attribute's converter, which also checks the value.
_CONVERTERS: dict[str, Any] = {name: field.converter for name, field in attrs.fields_dict(Settings).items()}


def given(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings variables set (not empty) in ``environ`` (default ``os.environ``), as set.

    For a process that starts others (``ingestro dev``) and must pass on what its user chose.
    """
    environ = os.environ if environ is None else environ
    return {variable: environ[variable] for variable in ENVIRONMENT if environ.get(variable)}
