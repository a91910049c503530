"""A schemathesis run against the real API on real Redis and PostgreSQL: no 500, nothing /openapi.json does not say.

Every operation of the document gets generated requests (valid and invalid parameters, bodies
and headers), sent over HTTP to the app served by uvicorn, authenticated with an admin key;
every answer must not be a 5xx, and its status, content type, headers and body must be ones the
document describes. The run is derandomized (the same requests every time, so a failure is
reproducible and CI does not flake) and bounded: ``EXAMPLES`` per operation, no shrinking.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ingestro.api.openapi import SPEC
from ingestro.database import keys
from ingestro.database.keys import Scope
from tests.served import app_of, served
from tests.stack import StackFactory
from tests.test_api import CSV

pytestmark = [pytest.mark.system, pytest.mark.slow]

EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz(base_url: str, token: str, job_id: str) -> dict[str, str]:
    """Run every operation's examples; return what failed, by operation (empty: nothing did).

    Generated job ids are never a real job's, so ``job_id`` (a completed job) is tried too.
    """
    schema = schemathesis.openapi.from_dict(SPEC)
    failures: dict[str, str] = {}
    headers = {"authorization": f"Bearer {token}"}
    for path in ("/jobs/{job_id}", "/jobs/{job_id}/errors", "/jobs/{job_id}/events"):
        case = schema[path]["GET"].Case(path_parameters={"job_id": job_id})
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)
        except Exception as error:
            failures[f"GET {path} of a real job"] = str(error)[:3000]
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures[str(result)] = f"the document has an operation schemathesis cannot read: {result.err()}"
            continue
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            case = data.draw(operation.as_strategy())  # noqa: B023 - run within this iteration
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)

        try:
            check()
        except Exception as error:  # hypothesis re-raises the failing example's error
            failures[operation.label] = str(error)[:3000]
    return failures


async def test_no_generated_request_gets_a_500_or_an_answer_the_document_does_not_describe(
    stack_factory: StackFactory,
) -> None:
    async for stack in stack_factory.open(keys=True, rate_limit=1000, rate_burst=1000):
        _, token = await keys.create(stack.pool, "schemathesis", Scope.ADMIN, "default")
        stack.start_consumers()
        auth = {"authorization": f"Bearer {token}"}
        response = await stack.client.post("/upload", content=CSV, headers={"content-type": "text/csv", **auth})
        job_id = response.json()["job_id"]
        while (await stack.client.get(f"/jobs/{job_id}", headers=auth)).json()["status"] != "completed":
            await asyncio.sleep(0.05)
        async with served(app_of(stack)) as url:
            failures = await asyncio.to_thread(fuzz, url, token, job_id)
        assert failures == {}, "\n\n".join(f"{label}:\n{failure}" for label, failure in failures.items())
