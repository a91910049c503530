"""``/datasets``: list, show and declare datasets (``PUT`` needs the admin scope).

``PUT /datasets/{name}`` takes a declaration as JSON (``application/json``) or TOML
(``application/toml``): 201 when the dataset is new, 200 with ``"outcome"`` saying
whether the declaration evolved the dataset (a new version; the statements run
are listed) or changed nothing. A declaration that cannot work is 422; a change
that is refused (removing or retyping fields without declaring the migration,
changing the key or table) or that the stored rows do not allow is 409.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.bodies import bounded_body, media_type
from ingestro.api.context import AppContext
from ingestro.api.problems import Problem
from ingestro.api.responses import JSON
from ingestro.datasets import Dataset, InvalidDeclaration, RefusedChange, UnknownDataset, declaration_of
from ingestro.datasets.declaration_bounds import MAX_BYTES
from ingestro.datasets.declarations import decoded, unstructured
from ingestro.datasets.registry import declare

_SYNTAXES = {"application/json": "json", "application/toml": "toml", "text/toml": "toml"}


def described(dataset: Dataset) -> dict[str, Any]:
    """The declaration as the API shows it: what ``PUT`` takes, with the version it has."""
    return unstructured(dataset)


async def list_datasets(request: Request) -> Response:
    context: AppContext = request.app.state.context
    return JSON({"items": [described(dataset) for dataset in await context.datasets.all_latest()]})


async def get_dataset(request: Request) -> Response:
    context: AppContext = request.app.state.context
    name = request.path_params["name"]
    try:
        history = await context.datasets.history(name)
    except UnknownDataset:
        raise Problem(404, "Not Found", f"unknown dataset {name!r}") from None
    latest, _ = history[-1]
    body = described(latest)
    body["versions"] = [{"version": dataset.version, "declared_at": when} for dataset, when in history]
    return JSON(body)


def _declared(body: bytes, syntax: str, name: str) -> Dataset:
    raw = decoded(body, syntax)
    if isinstance(raw, dict):
        raw.setdefault("name", name)  # the path names it when the body does not
    return declaration_of(raw)


async def put_dataset(request: Request) -> Response:
    context: AppContext = request.app.state.context
    name = request.path_params["name"]
    syntax = _SYNTAXES.get(media_type(request, "application/json"))
    if syntax is None:
        raise Problem(415, "Unsupported Media Type", "send the declaration as application/json or application/toml")
    body = await bounded_body(request, MAX_BYTES, f"a declaration is at most {MAX_BYTES} bytes")
    try:
        # Parsing is CPU work, bounded (ingestro.datasets.declaration_bounds) but not for the event loop.
        dataset = await asyncio.to_thread(_declared, body, syntax, name)
    except InvalidDeclaration as error:
        raise Problem(422, "Unprocessable Content", str(error)) from None
    if dataset.name != name:
        raise Problem(422, "Unprocessable Content", f"the declaration names dataset {dataset.name!r}, not {name!r}")
    try:
        declared = await declare(context.pool, dataset)
    except RefusedChange as error:
        raise Problem(409, "Conflict", str(error)) from None
    except InvalidDeclaration as error:
        raise Problem(422, "Unprocessable Content", str(error)) from None
    answer = described(declared.dataset)
    answer["outcome"] = declared.outcome
    answer["statements"] = list(declared.statements)
    return JSON(answer, status_code=201 if declared.outcome == "created" else 200)
