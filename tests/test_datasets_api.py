"""``/datasets``: declare, list and show datasets over HTTP; every refusal is problem+json."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import orjson
import pytest

from ingestro.database.keys import Scope
from tests.stack import Stack, StackFactory
from tests.test_access import bearer
from tests.test_api import assert_problem
from tests.test_dataset_pipeline import PRODUCTS

TOML = b"""
name = "products"
key = ["sku"]

[[fields]]
name = "sku"
type = "string"
required = true
"""


async def test_a_put_declares_a_dataset_then_get_shows_it_and_its_versions(stack: Stack) -> None:
    created = await stack.client.put("/datasets/products", content=orjson.dumps(PRODUCTS))
    assert created.status_code == 201, created.text
    assert (created.json()["outcome"], created.json()["version"]) == ("created", 1)
    assert created.json()["statements"][0].startswith('CREATE TABLE "public"."products"')

    again = await stack.client.put("/datasets/products", content=orjson.dumps(PRODUCTS))
    assert (again.status_code, again.json()["outcome"], again.json()["statements"]) == (200, "unchanged", [])

    shown = (await stack.client.get("/datasets/products")).json()
    assert shown["key"] == ["sku"] and [v["version"] for v in shown["versions"]] == [1]
    assert shown["fields"][1] == {**shown["fields"][1], "name": "price", "type": "number", "minimum": "0"}
    listed = (await stack.client.get("/datasets")).json()["items"]
    assert [d["name"] for d in listed] == ["contacts", "products"]


async def test_a_declaration_may_be_toml_and_takes_its_name_from_the_path(stack: Stack) -> None:
    response = await stack.client.put("/datasets/products", content=TOML, headers={"content-type": "application/toml"})
    assert response.status_code == 201, response.text
    nameless = {key: value for key, value in PRODUCTS.items() if key != "name"}
    response = await stack.client.put("/datasets/gadgets", content=orjson.dumps(nameless | {"table": "gadgets"}))
    assert (response.status_code, response.json()["name"]) == (201, "gadgets")
    nameless_toml = TOML.replace(b'name = "products"', b"")
    response = await stack.client.put(
        "/datasets/widgets", content=nameless_toml, headers={"content-type": "application/toml"}
    )
    assert (response.status_code, response.json()["name"]) == (201, "widgets")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (b"{", "application/json", 422, "not valid JSON"),
        (b'{"fields": []}', "application/json", 422, "at least one field"),
        (b'{"fields": [{"name": "a", "type": "colour"}]}', "application/json", 422, "fields[0].type"),
        (b'{"name": "other", "fields": [{"name": "a", "type": "string"}]}', "application/json", 422, "not 'products'"),
        (b"name = ", "application/toml", 422, "not valid TOML"),
        (b"<x/>", "application/xml", 415, "application/json or application/toml"),
    ],
)
async def test_a_declaration_that_cannot_work_is_refused_with_the_reason(
    stack: Stack, body: bytes, content_type: str, status: int, detail: str
) -> None:
    response = await stack.client.put("/datasets/products", content=body, headers={"content-type": content_type})
    assert_problem(response, status)
    assert detail in response.json()["detail"]


async def test_a_change_that_would_drop_stored_values_is_a_409_saying_how_to_declare_it(stack: Stack) -> None:
    await stack.client.put("/datasets/products", content=orjson.dumps(PRODUCTS))
    fewer = PRODUCTS | {"fields": PRODUCTS["fields"][:2]}
    response = await stack.client.put("/datasets/products", content=orjson.dumps(fewer))
    assert_problem(response, 409)
    assert "declare version 2 with migration.drop = ['in_stock']" in response.json()["detail"]


async def test_uploading_to_an_unknown_dataset_is_404(stack: Stack) -> None:
    response = await stack.client.post("/upload?dataset=nope", content=b"a\n1\n", headers={"content-type": "text/csv"})
    assert_problem(response, 404)


@pytest.fixture
async def secured(stack_factory: StackFactory) -> AsyncIterator[Stack]:
    async for running in stack_factory.open(keys=True):
        yield running


async def test_declaring_needs_the_admin_scope_and_reading_does_not(secured: Stack) -> None:
    for scope in (Scope.UPLOAD, Scope.READ):
        auth = await bearer(secured, scope, name=scope.value)
        assert_problem(
            await secured.client.put("/datasets/products", content=orjson.dumps(PRODUCTS), headers=auth), 403
        )
        assert (await secured.client.get("/datasets", headers=auth)).status_code == 200
    admin = await bearer(secured, Scope.ADMIN, name="admin")
    response = await secured.client.put("/datasets/products", content=orjson.dumps(PRODUCTS), headers=admin)
    assert response.status_code == 201


def with_field(**field: object) -> bytes:
    return json.dumps({"name": "products", "fields": [{"name": "a", **field}]}).encode()  # orjson: 64 bits only


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (with_field(type="string", max_length=10**23), "application/json", "out of range"),
        (with_field(type="string", min_length=-(10**23)), "application/json", "out of range"),
        (
            b'{"name": "products", "fields": [{"name": "a", "type": "string", "max_length": 1e23}]}',
            "application/json",
            "out of range",
        ),
        (with_field(type="integer", minimum=-(10**23)), "application/json", "within 64 bits"),
        (with_field(type="integer", default=10**23), "application/json", "out of range"),
        (
            b'{"fields": [{"name": "a", "type": "number", "default": 0.30000000000000000001}]}',
            "application/json",
            "give it as text",
        ),
        (b'{"fields": [{"name": "a", "type": "number", "minimum": 1e999999}]}', "application/json", "out of range"),
        (b'{"fields": [{"name": "a", "type": "number", "minimum": NaN}]}', "application/json", "NaN"),
        (b'{"fields": [{"name": "a", "type": "number", "minimum": -Infinity}]}', "application/json", "Infinity"),
        (b'{"version": 99999999999, "fields": [{"name": "a", "type": "number"}]}', "application/json", "version"),
        (
            b'[[fields]]\nname = "a"\ntype = "string"\nmax_length = 99999999999999999999999\n',
            "application/toml",
            "out of range",
        ),
        (b'[[fields]]\nname = "a"\ntype = "number"\nminimum = nan\n', "application/toml", "finite"),
        (with_field(type="string", max_length=2.5), "application/json", "expected a whole number"),
    ],
)
async def test_a_number_out_of_range_anywhere_in_a_declaration_is_a_422(
    stack: Stack, body: bytes, content_type: str, detail: str
) -> None:
    response = await stack.client.put("/datasets/products", content=body, headers={"content-type": content_type})
    assert detail in str(assert_problem(response, 422)["detail"])


@pytest.mark.parametrize("content_type", ["application/json", "application/toml"])
async def test_decimal_bounds_stay_exact_from_the_declaration_to_the_rows(stack: Stack, content_type: str) -> None:
    minimum, maximum = "-99999999999999999999999", "0.1000000000000000000000001"
    if content_type == "application/json":
        body = f'{{"fields": [{{"name": "a", "type": "number", "minimum": {minimum}, "maximum": {maximum}}}]}}'
    else:
        body = f'[[fields]]\nname = "a"\ntype = "number"\nminimum = {minimum}\nmaximum = {maximum}\n'
    response = await stack.client.put("/datasets/products", content=body, headers={"content-type": content_type})
    assert response.status_code == 201, response.text
    assert (response.json()["fields"][0]["minimum"], response.json()["fields"][0]["maximum"]) == (minimum, maximum)
    shown = (await stack.client.get("/datasets/products")).json()["fields"][0]
    assert (shown["minimum"], shown["maximum"]) == (minimum, maximum)
    stack.start_consumers()
    rows = ["-99999999999999999999999", "-99999999999999999999999.1", maximum, "0.1000000000000000000000002"]
    accepted = await stack.upload(("a\n" + "\n".join(rows) + "\n").encode(), dataset="products")
    job = await stack.wait_for_job(accepted["job_id"])
    errors = (await stack.client.get(f"/jobs/{job['job_id']}/errors")).json()["items"]
    assert [(e["line"], e["errors"][0]["code"]) for e in errors] == [(3, "below_minimum"), (5, "above_maximum")]
    stored = [row["a"] for row in (await stack.client.get("/data?dataset=products")).json()["items"]]
    assert sorted(stored) == sorted([minimum, maximum])
