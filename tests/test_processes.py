"""The commands as an operator runs them: real OS processes, real servers, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingestro.devtools.samples import write_sample_file
from ingestro.devtools.servers import RedisServer, free_port
from ingestro.services.consumer_groups import CONSUMER_NAMES

pytestmark = [pytest.mark.system, pytest.mark.slow]

COMMAND = [sys.executable, "-m", "ingestro"]


def wait_until_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never became ready")
        time.sleep(0.1)


def wait_for_job(url: str, job_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, object] = httpx.get(f"{url}/jobs/{job_id}", timeout=5).json()
        if job["status"] in ("completed", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {job['status']}: {job}")
        time.sleep(0.1)


def stop(
    processes: list[subprocess.Popen[bytes]], sig: signal.Signals = signal.SIGTERM, timeout: float = 30
) -> list[int]:
    for process in processes:
        process.send_signal(sig)
    return [process.wait(timeout=timeout) for process in processes]


@pytest.fixture
def env(redis_server: RedisServer, migrated: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    subprocess.run(
        ["psql", migrated, "-qc", "TRUNCATE jobs, job_batches, applied_batches, validation_errors, contacts, api_keys"],
        check=True,
    )
    yield {
        **os.environ,
        "INGESTRO_REDIS_URL": redis_server.url,
        "INGESTRO_DATABASE_URL": migrated,
        "INGESTRO_UPLOAD_DIR": str(tmp_path / "uploads"),
        "INGESTRO_BLOCK_MS": "200",
        "INGESTRO_BATCH_SIZE": "200",
    }


def test_migrate_applies_each_migration_once(env: dict[str, str]) -> None:
    # The session fixture already migrated: running again applies nothing and succeeds.
    result = subprocess.run([*COMMAND, "migrate"], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["applied 0 migration(s)", "dataset contacts: unchanged (version 1)"]


def test_migrate_declares_the_datasets_of_the_datasets_directory(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "notes.toml").write_text('name = "notes"\n[[fields]]\nname = "text"\ntype = "string"\n')
    env = {**env, "INGESTRO_DATASETS_DIR": str(tmp_path)}
    result = subprocess.run([*COMMAND, "migrate"], env=env, capture_output=True, text=True, check=True)
    assert "dataset notes: created (version 1)" in result.stdout.splitlines()

    (tmp_path / "notes.toml").write_text('name = "notes"\n[[fields]]\nname = "body"\ntype = "string"\n')
    refused = subprocess.run([*COMMAND, "migrate"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stderr.startswith("ingestro migrate: dataset notes: removing or retyping fields is a new version")
    assert "field text is removed" in refused.stderr
    subprocess.run(
        ["psql", env["INGESTRO_DATABASE_URL"], "-qc", "DROP TABLE notes; DELETE FROM datasets WHERE name = 'notes'"],
        check=True,
    )

    missing = {**env, "INGESTRO_DATASETS_DIR": str(tmp_path / "absent")}
    refused = subprocess.run([*COMMAND, "migrate"], env=missing, capture_output=True, text=True)
    assert refused.returncode == 1
    assert "absent is not a directory of dataset declarations (INGESTRO_DATASETS_DIR)" in refused.stderr


def test_separate_processes_with_two_copies_of_each_consumer_ingest_exactly(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    processes = [subprocess.Popen([*COMMAND, "api", "--port", str(port), "--insecure"], env=env)]
    processes += [
        subprocess.Popen([*COMMAND, "consume", name, "--slot", str(slot)], env=env)
        for name in CONSUMER_NAMES
        for slot in range(2)
    ]
    try:
        wait_until_ready(url)
        path = tmp_path / "contacts.csv"
        expected = write_sample_file(path, "csv", 10_000, seed=3)
        with open(path, "rb") as body:
            response = httpx.post(f"{url}/upload", files={"file": ("contacts.csv", body)}, timeout=30)
        assert response.status_code == 202
        job = wait_for_job(url, response.json()["job_id"])
        assert job["status"] == "completed"
        assert (job["rows_accepted"], job["rows_rejected"], job["rows_inserted"]) == (
            expected.valid,
            expected.invalid,
            expected.distinct,
        )
    finally:
        codes = stop(processes)
    assert codes[1:] == [0] * (len(processes) - 1)  # consumers stop cleanly on SIGTERM


def test_consume_refuses_an_unknown_consumer_with_a_clear_message(env: dict[str, str]) -> None:
    result = subprocess.run([*COMMAND, "consume", "nope"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr


def test_a_bad_setting_is_a_clear_error(env: dict[str, str]) -> None:
    result = subprocess.run(
        [*COMMAND, "migrate"], env={**env, "INGESTRO_BATCH_SIZE": "lots"}, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "INGESTRO_BATCH_SIZE" in result.stderr


def test_dev_runs_the_whole_stack_and_stops_cleanly_on_ctrl_c() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="ingestro-dev-test-") as data_dir:
        env = {key: value for key, value in os.environ.items() if not key.startswith("INGESTRO_")}
        dev = subprocess.Popen([*COMMAND, "dev", "--data-dir", data_dir, "--port", str(port)], env=env)
        try:
            wait_until_ready(url, timeout=90)
            settings = dict(line.split("=", 1) for line in (Path(data_dir) / "env").read_text().splitlines() if line)
            assert settings["INGESTRO_REDIS_URL"].startswith("redis://127.0.0.1:")
            assert settings["INGESTRO_DATABASE_URL"].startswith("postgresql://")
            content = b"email,first_name,last_name,signup_date\na@example.com,A,B,2024-01-05\n"
            response = httpx.post(f"{url}/upload", content=content, headers={"content-type": "text/csv"})
            assert response.status_code == 202
            assert wait_for_job(url, response.json()["job_id"])["status"] == "completed"
            count = subprocess.run(
                ["psql", settings["INGESTRO_DATABASE_URL"], "-tAc", "SELECT count(*) FROM contacts"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert count.stdout.strip() == "1"
            # The API and every consumer process serve their own metrics, listed in the env file.
            metrics_urls = settings["INGESTRO_METRICS_URLS"].split(",")
            assert metrics_urls[0] == f"{url}/metrics" and len(metrics_urls) == 1 + len(CONSUMER_NAMES)
            for metrics_url in metrics_urls:
                assert "ingestro_entries_processed_total" in httpx.get(metrics_url, timeout=5).text
        finally:
            [code] = stop([dev], signal.SIGINT, timeout=60)
        assert code == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=2)


def test_api_refuses_to_start_without_a_key_unless_insecure(env: dict[str, str]) -> None:
    result = subprocess.run([*COMMAND, "api", "--port", str(free_port())], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "no API key" in result.stderr and "--insecure" in result.stderr


def test_keys_are_created_listed_used_and_revoked(env: dict[str, str]) -> None:
    created = subprocess.run(
        [*COMMAND, "keys", "create", "ci", "--scope", "read", "--tenant", "acme"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = created.stdout.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    listed = subprocess.run([*COMMAND, "keys", "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert key_id in listed and "acme" in listed and token not in listed
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = subprocess.Popen([*COMMAND, "api", "--port", str(port)], env=env)  # a key exists now: it starts
    try:
        wait_until_ready(url)
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/jobs", headers=auth, timeout=5).status_code == 200
        subprocess.run([*COMMAND, "keys", "revoke", key_id], env=env, capture_output=True, check=True)
        assert httpx.get(f"{url}/jobs", headers=auth, timeout=5).status_code == 401
    finally:
        stop([api])
    again = subprocess.run([*COMMAND, "keys", "revoke", key_id], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "no active key" in again.stdout
