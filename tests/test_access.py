"""Who may call what: API keys, scopes and tenants, always answered as problem+json."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingestro.database import keys
from ingestro.database.keys import Scope
from ingestro.devtools.dev import run_dev
from tests.stack import Stack, StackFactory
from tests.test_api import CSV, assert_problem


@pytest.fixture
async def secured(stack_factory: StackFactory) -> AsyncIterator[Stack]:
    """A stack whose API needs API keys."""
    async for running in stack_factory.open(keys=True):
        yield running


async def bearer(stack: Stack, scope: Scope, tenant: str = "default", name: str = "test") -> dict[str, str]:
    _, token = await keys.create(stack.pool, name, scope, tenant)
    return {"authorization": f"Bearer {token}"}


async def upload(stack: Stack, auth: dict[str, str]) -> str:
    response = await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **auth})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


@pytest.mark.parametrize("path", ["/jobs", "/data", "/dlq"])
async def test_a_request_without_a_key_is_401(secured: Stack, path: str) -> None:
    response = await secured.client.get(path)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(await secured.client.post("/upload", content=CSV, headers={"content-type": "text/csv"}), 401)


async def test_a_wrong_or_revoked_key_is_401(secured: Stack) -> None:
    assert_problem(await secured.client.get("/jobs", headers={"authorization": "Bearer ingestro_nope_nope"}), 401)
    assert_problem(await secured.client.get("/jobs", headers={"authorization": "Basic dXNlcjpwYXNz"}), 401)
    key, token = await keys.create(secured.pool, "soon revoked", Scope.READ, "default")
    auth = {"authorization": f"Bearer {token}"}
    assert (await secured.client.get("/jobs", headers=auth)).status_code == 200
    assert await keys.revoke(secured.pool, key.key_id)
    assert_problem(await secured.client.get("/jobs", headers=auth), 401)
    assert not await keys.revoke(secured.pool, key.key_id)  # once only


async def test_health_readiness_and_metrics_need_no_key(secured: Stack) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await secured.client.get(path)).status_code == 200, path


async def test_only_the_hash_of_a_token_is_stored(secured: Stack) -> None:
    key, token = await keys.create(secured.pool, "ci", Scope.UPLOAD, "acme")
    stored = await secured.pool.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key.key_id)
    assert stored is not None
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in [str(value) for value in stored.values()]
    assert token.startswith(f"ingestro_{key.key_id}_") and len(token) > 50


async def test_an_upload_key_uploads_and_reads_only_the_jobs_it_uploaded(secured: Stack) -> None:
    mine, other = await bearer(secured, Scope.UPLOAD), await bearer(secured, Scope.UPLOAD, name="other")
    job_id = await upload(secured, mine)
    theirs = await upload(secured, other)
    assert (await secured.client.get(f"/jobs/{job_id}", headers=mine)).status_code == 200
    assert (await secured.client.get(f"/jobs/{job_id}/errors", headers=mine)).status_code == 200
    assert_problem(await secured.client.get(f"/jobs/{theirs}", headers=mine), 404)
    listed = (await secured.client.get("/jobs", headers=mine)).json()["items"]
    assert [job["job_id"] for job in listed] == [job_id]
    assert_problem(await secured.client.get("/data", headers=mine), 403)
    assert_problem(await secured.client.get("/dlq", headers=mine), 403)


async def test_a_read_key_reads_its_tenants_jobs_and_data_but_may_not_upload(secured: Stack) -> None:
    job_id = await upload(secured, await bearer(secured, Scope.UPLOAD))
    reader = await bearer(secured, Scope.READ)
    assert_problem(
        await secured.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **reader}), 403
    )
    assert (await secured.client.get(f"/jobs/{job_id}", headers=reader)).status_code == 200
    assert [job["job_id"] for job in (await secured.client.get("/jobs", headers=reader)).json()["items"]] == [job_id]
    assert (await secured.client.get("/data", headers=reader)).status_code == 200
    assert_problem(await secured.client.get("/dlq", headers=reader), 403)


async def test_a_tenant_never_sees_another_tenants_jobs_errors_or_data(secured: Stack) -> None:
    acme_job = await upload(secured, await bearer(secured, Scope.UPLOAD, tenant="acme"))
    other = await bearer(secured, Scope.ADMIN, tenant="globex")
    assert_problem(await secured.client.get(f"/jobs/{acme_job}", headers=other), 404)
    assert_problem(await secured.client.get(f"/jobs/{acme_job}/errors", headers=other), 404)
    assert_problem(await secured.client.get(f"/jobs/{acme_job}/errors?format=csv", headers=other), 404)
    assert (await secured.client.get("/jobs", headers=other)).json()["items"] == []
    # Dataset tables are shared by every tenant: only the default tenant's keys read them.
    assert_problem(await secured.client.get("/data", headers=other), 403)
    acme_reader = await bearer(secured, Scope.READ, tenant="acme")
    assert (await secured.client.get(f"/jobs/{acme_job}", headers=acme_reader)).status_code == 200


async def test_an_admin_key_may_do_everything(secured: Stack) -> None:
    admin = await bearer(secured, Scope.ADMIN)
    job_id = await upload(secured, admin)
    for path in (f"/jobs/{job_id}", "/jobs", f"/jobs/{job_id}/errors", "/data", "/dlq"):
        assert (await secured.client.get(path, headers=admin)).status_code == 200, path


async def test_a_job_records_its_tenant_and_uploader_in_its_event(secured: Stack) -> None:
    key, token = await keys.create(secured.pool, "ci", Scope.UPLOAD, "acme")
    job_id = await upload(secured, {"authorization": f"Bearer {token}"})
    secured.start_consumers()
    await secured.wait_idle()
    row = await secured.pool.fetchrow("SELECT tenant, uploaded_by, status FROM jobs WHERE job_id = $1::uuid", job_id)
    assert row is not None and (row["tenant"], row["uploaded_by"], row["status"]) == ("acme", key.key_id, "completed")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_dev_runs_without_keys_so_only_on_loopback(tmp_path: Path, host: str) -> None:
    with pytest.raises(SystemExit, match="loopback"):
        run_dev(tmp_path / "dev", host, 8000, 1)
    assert not (tmp_path / "dev").exists()
