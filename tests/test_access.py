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


async def test_previously_ingested_as_names_only_jobs_the_caller_may_open(secured: Stack) -> None:
    one, two = await bearer(secured, Scope.UPLOAD, name="one"), await bearer(secured, Scope.UPLOAD, name="two")
    theirs = await upload(secured, one)
    mine_first = await upload(secured, two)
    mine_again = await upload(secured, two)  # the same file, three times
    mine = (await secured.client.get(f"/jobs/{mine_again}", headers=two)).json()
    assert mine["previously_ingested_as"] == [mine_first], "not the job of key one, which key two cannot open"
    listed = (await secured.client.get("/jobs", headers=two)).json()["items"]
    assert {job["job_id"]: job["previously_ingested_as"] for job in listed} == {
        mine_again: [mine_first],
        mine_first: [],
    }
    reader = await bearer(secured, Scope.READ, name="reader")  # reads every job of the tenant: sees them all
    seen = (await secured.client.get(f"/jobs/{mine_again}", headers=reader)).json()
    assert seen["previously_ingested_as"] == [theirs, mine_first]


async def test_only_the_operators_admins_may_declare_or_evolve_datasets(secured: Stack) -> None:
    from tests.test_dataset_pipeline import PRODUCTS

    operator = await bearer(secured, Scope.ADMIN, name="operator")
    response = await secured.client.put("/datasets/products", json=PRODUCTS, headers=operator)
    assert response.status_code == 201, response.text
    tenant_admin = await bearer(secured, Scope.ADMIN, tenant="tenb", name="tenb admin")
    dropping = PRODUCTS | {"version": 2, "fields": PRODUCTS["fields"][:2], "migration": {"drop": ["in_stock"]}}
    for name, declaration in (("products", dropping), ("gadgets", PRODUCTS | {"name": "gadgets"})):
        refused = await secured.client.put(f"/datasets/{name}", json=declaration, headers=tenant_admin)
        assert_problem(refused, 403)
        assert "only admin keys of the default tenant" in refused.json()["detail"]
    shown = (await secured.client.get("/datasets/products", headers=tenant_admin)).json()  # reading stays open
    assert [v["version"] for v in shown["versions"]] == [1] and len(shown["fields"]) == 3
    assert_problem(await secured.client.get("/datasets/gadgets", headers=operator), 404)
    evolved = await secured.client.put("/datasets/products", json=dropping, headers=operator)
    assert (evolved.status_code, evolved.json()["version"]) == (200, 2)
