"""Every setting is read in ingestro/config.py and checked when read: a bad value is one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingestro.config import ENVIRONMENT, InvalidSetting, Settings, given

#: A value each setting refuses. Every variable of ENVIRONMENT must have one: a new setting comes with its check.
BAD = {
    "INGESTRO_REDIS_URL": "http://127.0.0.1:6379",
    "INGESTRO_REDIS_MODE": "sentinel",
    "INGESTRO_PARTITIONS": "0",
    "INGESTRO_REDIS_WAIT_REPLICAS": "6",
    "INGESTRO_DATABASE_URL": "mysql://db/ingestro",
    "INGESTRO_UPLOAD_DIR": " ",
    "INGESTRO_STORAGE_URL": "/var/uploads",
    "INGESTRO_S3_ENDPOINT_URL": "minio:9000",
    "INGESTRO_MAX_UPLOAD_BYTES": "0",
    "INGESTRO_IMPORT_ALLOW": "10.0.0.0/33",
    "INGESTRO_WEBHOOK_ATTEMPTS": "0",
    "INGESTRO_IDEMPOTENCY_TTL_S": "-5",
    "INGESTRO_RATE_LIMIT": "-1",
    "INGESTRO_RATE_BURST": "0",
    "INGESTRO_MAX_CONCURRENT_UPLOADS": "-2",
    "INGESTRO_MAX_EVENT_STREAMS": "0",
    "INGESTRO_PARSE_RANGE_BYTES": "-1",
    "INGESTRO_EVENTS_HEARTBEAT_S": "30",
    "INGESTRO_BODY_IDLE_TIMEOUT_S": "0",
    "INGESTRO_BODY_MIN_RATE": "-1",
    "INGESTRO_BATCH_SIZE": "0",
    "INGESTRO_MAX_FIELD_CHARS": "0",
    "INGESTRO_MAX_ROW_CHARS": "many",
    "INGESTRO_MAX_LINE_CHARS": "-1",
    "INGESTRO_MAX_COLUMNS": "0",
    "INGESTRO_MAX_JSON_DEPTH": "129",
    "INGESTRO_MAX_DECOMPRESSED_BYTES": "0",
    "INGESTRO_MAX_COMPRESSION_RATIO": "0.5",
    "INGESTRO_MAX_SHARED_STRINGS_BYTES": "0",
    "INGESTRO_MAX_ROW_GROUP_BYTES": "lots",
    "INGESTRO_BLOCK_MS": "0",
    "INGESTRO_VISIBILITY_TIMEOUT_S": "0",
    "INGESTRO_MAX_DELIVERIES": "0",
    "INGESTRO_CONCURRENCY": "-1",
    "INGESTRO_GROUP_SIZE": "0",
    "INGESTRO_GROUP_LINGER_MS": "-1",
    "INGESTRO_MAX_BACKLOG": "-5",
    "INGESTRO_STREAM_RETENTION_S": "nan",
    "INGESTRO_RETENTION_INTERVAL_S": "0",
    "INGESTRO_FILE_RETENTION_DAYS": "soon",
    "INGESTRO_CONSUMER_NAME": "two words",
    "INGESTRO_LOG_LEVEL": "bogus",
    "INGESTRO_METRICS_PORT": "65536",
    "INGESTRO_CONSUMER_SLOT": "-1",
    "INGESTRO_DATASETS_DIR": "  ",
    "INGESTRO_URL": "127.0.0.1:8000",
    "INGESTRO_API_KEY": "secret",
}


def test_every_setting_has_a_bad_value_here() -> None:
    assert set(BAD) == set(ENVIRONMENT)


def test_the_defaults_are_valid() -> None:
    settings = Settings.from_env({})
    assert (settings.batch_size, settings.log_level, settings.consumer_slot) == (2000, "INFO", 0)
    assert (settings.api_url, settings.api_key) == ("http://127.0.0.1:8000", "")


@pytest.mark.parametrize("variable", list(ENVIRONMENT))
def test_a_bad_value_is_one_line_naming_the_variable_and_what_it_accepts(variable: str) -> None:
    with pytest.raises(InvalidSetting) as raised:
        Settings.from_env({variable: BAD[variable]})
    message = str(raised.value)
    assert message.startswith(f"{variable}={BAD[variable]!r} is not a valid value: must be "), message
    assert "\n" not in message and len(message) < 200


def test_good_values_pass() -> None:
    settings = Settings.from_env(
        {
            "INGESTRO_REDIS_URL": "rediss://user:pw@cache:6380/2",
            "INGESTRO_DATABASE_URL": "postgres://u:p@db/ingestro?sslmode=require",
            "INGESTRO_STORAGE_URL": "s3://bucket/prefix",
            "INGESTRO_LOG_LEVEL": "debug",
            "INGESTRO_METRICS_PORT": "65535",
            "INGESTRO_API_KEY": "ingestro_0a1b2c3d4e5f_abc-DEF_123",
        }
    )
    assert settings.log_level == "DEBUG" and settings.metrics_port == 65535


def test_given_is_the_settings_variables_set() -> None:
    environ = {"INGESTRO_BATCH_SIZE": "7", "INGESTRO_URL": "", "INGESTRO_NOT_A_SETTING": "x", "HOME": "/root"}
    assert given(environ) == {"INGESTRO_BATCH_SIZE": "7"}


@pytest.mark.parametrize(
    ("argv", "variable", "value"),
    [
        (["streams"], "INGESTRO_BATCH_SIZE", "0"),
        (["consume", "data"], "INGESTRO_MAX_DELIVERIES", "0"),
        (["consume", "parser"], "INGESTRO_CONCURRENCY", "-1"),
        (["jobs"], "INGESTRO_LOG_LEVEL", "bogus"),
    ],
)
def test_every_command_refuses_a_bad_setting_in_one_line(argv: list[str], variable: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingestro", *argv],
        env={"PATH": "/usr/bin:/bin", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"ingestro: {variable}={value!r} is not a valid value: must be ")
