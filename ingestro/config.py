"""Configuration from the environment: every ``INGESTRO_*`` variable is read here and only here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

#: Each setting: environment variable -> (Settings attribute, default, meaning); `ingestro --help` lists them.
#: An empty attribute marks a variable read where it is used (a command's option default, the migrations).
ENVIRONMENT: dict[str, tuple[str, str, str]] = {
    "INGESTRO_REDIS_URL": ("redis_url", "redis://127.0.0.1:6379/0", "Redis server holding the event streams"),
    "INGESTRO_DATABASE_URL": (
        "database_url",
        "postgresql://ingestro@127.0.0.1:5432/ingestro",
        "PostgreSQL database holding the projections",
    ),
    "INGESTRO_UPLOAD_DIR": ("upload_dir", "./uploads", "Upload storage shared by the API and the parser"),
    "INGESTRO_MAX_UPLOAD_BYTES": ("max_upload_bytes", str(2 * 1024**3), "Largest accepted upload (413 above)"),
    "INGESTRO_BATCH_SIZE": ("batch_size", "500", "Rows per RowsAccepted / RowsRejected event"),
    "INGESTRO_BLOCK_MS": ("block_ms", "2000", "How long a consumer's XREADGROUP blocks waiting for entries"),
    "INGESTRO_VISIBILITY_TIMEOUT_S": (
        "visibility_timeout_s",
        "60",
        "Idle time after which another consumer reclaims a pending entry",
    ),
    "INGESTRO_MAX_DELIVERIES": ("max_deliveries", "5", "Deliveries before an entry goes to the dead-letter stream"),
    "INGESTRO_CONCURRENCY": ("concurrency", "2", "Entries a consumer process handles at once"),
    "INGESTRO_CONSUMER_NAME": (
        "consumer_name",
        "",
        "Consumer name within its group (default: HOSTNAME-SLOT, stable across restarts)",
    ),
    "INGESTRO_LOG_LEVEL": ("log_level", "INFO", "Logging level"),
    "INGESTRO_CONSUMER_SLOT": ("", "0", "Default --slot of `ingestro consume`"),
    "INGESTRO_MIGRATIONS_DIR": ("", "db/ of the source tree", "Where the SQL migrations are"),
}


@attrs.frozen
class Settings:
    redis_url: str
    database_url: str
    upload_dir: Path = attrs.field(converter=Path)
    max_upload_bytes: int = attrs.field(converter=int)
    batch_size: int = attrs.field(converter=int)
    block_ms: int = attrs.field(converter=int)
    visibility_timeout_s: float = attrs.field(converter=float)
    max_deliveries: int = attrs.field(converter=int)
    concurrency: int = attrs.field(converter=int)
    consumer_name: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); keyword overrides win.

        Raises ``ValueError`` naming the variable when a value is not of its type.
        """
        environ = os.environ if environ is None else environ
        fields = attrs.fields_dict(cls)
        values: dict[str, object] = {}
        for variable, (attribute, default, _meaning) in ENVIRONMENT.items():
            if attribute not in fields:
                continue  # read where it is used (e.g. a command's default option)
            raw = environ.get(variable, default)
            converter = fields[attribute].converter
            try:
                values[attribute] = converter(raw) if callable(converter) else raw
            except ValueError:
                raise ValueError(f"{variable}={raw!r} is not a valid value") from None
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
