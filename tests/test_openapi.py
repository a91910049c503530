"""``GET /openapi.json`` describes the API as it is: every route, and the shapes real answers have."""

from __future__ import annotations

from typing import Any

import openapi_spec_validator
from starlette.routing import Route

from ingestro.api.app import create_app
from ingestro.api.openapi import SPEC
from tests.stack import Stack, StackFactory
from tests.test_api import CSV

_UPPER = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = SPEC["components"]["schemas"][name]
    return found


def test_every_route_is_described_and_nothing_else(stack_factory: StackFactory) -> None:
    from tests.stack import stack_settings

    app = create_app(stack_settings("redis://x", "postgresql://x", stack_factory.upload_dir))
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) & _UPPER
    }
    described = {(path, method) for path, operations in SPEC["paths"].items() for method in operations}
    assert served == described


def test_the_document_is_valid_openapi() -> None:
    openapi_spec_validator.validate(SPEC)


def test_every_reference_resolves() -> None:
    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [node["$ref"]] if "$ref" in node else [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    for ref in refs(SPEC):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in SPEC["components"]["schemas"], ref


async def test_it_is_served_without_a_key(stack_factory: StackFactory) -> None:
    async for stack in stack_factory.open(keys=True):
        response = await stack.client.get("/openapi.json")
        assert response.status_code == 200
        assert response.json()["openapi"] == "3.1.0"


async def test_real_answers_have_the_described_fields(stack: Stack) -> None:
    accepted = await stack.upload(CSV)
    assert set(accepted) == set(schema("Accepted")["properties"])
    job = (await stack.client.get(f"/jobs/{accepted['job_id']}")).json()
    assert set(job) == set(schema("Job")["properties"])
    problem = (await stack.client.get("/jobs/nope")).json()
    assert set(problem) == set(schema("Problem")["properties"])
    for path in ("/jobs", f"/jobs/{accepted['job_id']}/errors", "/data", "/dlq"):
        assert set((await stack.client.get(path)).json()) == {"items", "next_cursor"}, path
