"""Who is calling: ``Authorization: Bearer <API key>``, checked before each guarded endpoint.

Wrong or missing keys are 401, a key without the needed scope 403. In insecure mode (no
keys: ``ingestro api --insecure``, ``ingestro dev`` and the test stack) every caller is an
admin of the default tenant.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

import attrs
from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.context import AppContext
from ingestro.api.problems import Problem
from ingestro.api.rate_limit import check_rate
from ingestro.database import keys
from ingestro.database.keys import DEFAULT_TENANT, Scope

Endpoint = Callable[[Request], Awaitable[Response]]


class Need(enum.Enum):
    """What an endpoint needs of its caller."""

    UPLOAD = "upload"
    READ_JOBS = "read jobs"  # an upload key may, but only its own
    READ_DATA = "read data"
    ADMIN = "admin"
    DECLARE = "declare datasets"


_GRANTS: dict[Scope, frozenset[Need]] = {
    Scope.UPLOAD: frozenset({Need.UPLOAD, Need.READ_JOBS}),
    Scope.READ: frozenset({Need.READ_JOBS, Need.READ_DATA}),
    Scope.ADMIN: frozenset(Need),
}


@attrs.frozen
class Caller:
    tenant: str
    scope: Scope
    key_id: str | None  # None in insecure mode

    @property
    def own_jobs_only(self) -> bool:
        return self.scope is Scope.UPLOAD


#: What only keys of the operator's tenant (the default one) may do, whatever their scope: the datasets and their
#: tables are shared by every tenant (rows are upserted by content, whoever sent them), so reading every row, or
#: declaring and evolving (dropping, retyping) what all tenants' uploads land in, is the operator's.
_OPERATOR_ONLY: dict[Need, str] = {
    Need.READ_DATA: "data is readable by keys of the default tenant only",
    Need.DECLARE: (
        "datasets are shared by every tenant: only admin keys of the default tenant (the operator's) may declare"
        " or change them (or the operator, with `ingestro migrate`)"
    ),
}

INSECURE_CALLER = Caller(DEFAULT_TENANT, Scope.ADMIN, None)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ingestro"'}


def caller_of(request: Request) -> Caller:
    """The caller a guarded endpoint was let in for."""
    caller: Caller = request.state.caller
    return caller


async def _authenticate(request: Request) -> Caller:
    context: AppContext = request.app.state.context
    if context.insecure:
        return INSECURE_CALLER
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "Unauthorized", "send an API key: Authorization: Bearer <key>", _CHALLENGE)
    key = await keys.authenticate(context.pool, token.strip())
    if key is None:
        raise Problem(401, "Unauthorized", "the API key is not valid (unknown or revoked)", _CHALLENGE)
    return Caller(key.tenant, key.scope, key.key_id)


def guarded(endpoint: Endpoint, need: Need) -> Endpoint:
    """``endpoint``, answered only to callers whose key grants ``need``, within the key's request rate."""

    async def guard(request: Request) -> Response:
        caller = await _authenticate(request)
        context: AppContext = request.app.state.context
        await check_rate(context.redis, caller.key_id, context.settings.rate_limit, context.settings.rate_burst)
        if need not in _GRANTS[caller.scope]:
            raise Problem(403, "Forbidden", f"this API key's scope ({caller.scope.value}) does not allow {need.value}")
        if need in _OPERATOR_ONLY and caller.tenant != DEFAULT_TENANT:
            raise Problem(403, "Forbidden", _OPERATOR_ONLY[need])
        request.state.caller = caller
        return await endpoint(request)

    return guard
