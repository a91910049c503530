"""Pull imports (``POST /imports``, the ``fetcher``): from a real HTTP server on loopback and the S3 test server,
through ``INGESTRO_IMPORT_ALLOW``; and the refusals without it (loopback, a name resolving to loopback, a redirect
to the metadata address, file://)."""

from __future__ import annotations

import io
import ipaddress
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ingestro.cli.imports import import_sources
from ingestro.cli.main import build_parser
from ingestro.sources import AllowList, Refused
from ingestro.storage.s3 import s3_client
from tests import test_storage
from tests.served import served
from tests.stack import Stack, StackFactory

CSV = (
    b"email,first_name,last_name,age,signup_date\n"
    b"a@example.com,Ann,Lee,30,2024-01-05\nb@example.com,Bob,Ray,31,2024-01-06\nnope,Cy,Ray,x,2024-01-05\n"
)
ALLOW_LOOPBACK = "127.0.0.0/8,::1"
#: The S3 test server (moto on loopback), the session fixture of tests/test_storage.py.
s3_endpoint = test_storage.s3_endpoint


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.0.1",
        "169.254.169.254",
        "169.254.1.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    with pytest.raises(Refused):
        AllowList().check(_address(address))


def test_the_allow_list_opens_its_networks_but_never_the_metadata_address() -> None:
    allow = AllowList((ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("169.254.0.0/16")))
    allow.check(_address("10.9.8.7"))
    allow.check(_address("169.254.1.1"))
    with pytest.raises(Refused, match="metadata"):
        allow.check(_address("169.254.169.254"))
    with pytest.raises(Refused):
        allow.check(_address("192.168.1.1"))
    AllowList().check(_address("93.184.215.14"))  # a public address needs no allow-list


class Source:
    """A file server for the tests: what it was asked, and answers that fail on purpose."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.flaky_left = 2

    def app(self) -> Starlette:
        async def contacts(request: Request) -> Response:
            self.hosts.append(request.headers["host"])
            return Response(
                CSV, media_type="text/csv", headers={"ETag": '"v1"', "Last-Modified": "Wed, 21 Oct 2026 07:28:00 GMT"}
            )

        async def flaky(request: Request) -> Response:
            if self.flaky_left:
                self.flaky_left -= 1
                return Response(b"busy", status_code=503)
            return Response(CSV, media_type="text/csv")

        async def big(request: Request) -> Response:
            return Response(CSV * 1000, media_type="text/csv")

        async def missing(request: Request) -> Response:
            return Response(b"", status_code=404)

        async def to_metadata(request: Request) -> Response:
            return RedirectResponse("http://169.254.169.254/latest/meta-data/x.csv", status_code=302)

        async def redirected(request: Request) -> Response:
            return RedirectResponse("/contacts.csv", status_code=302)

        return Starlette(
            routes=[
                Route("/contacts.csv", contacts),
                Route("/flaky.csv", flaky),
                Route("/big.csv", big),
                Route("/missing.csv", missing),
                Route("/metadata.csv", to_metadata),
                Route("/moved.csv", redirected),
            ]
        )


@pytest.fixture
async def source() -> AsyncIterator[tuple[Source, str]]:
    files = Source()
    async with served(files.app()) as url:
        yield files, url


async def _import(stack: Stack, url: str, **params: str) -> dict[str, Any]:
    response = await stack.client.post("/imports", json={"source": url}, params=params)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/jobs/{response.json()['job_id']}"
    body: dict[str, Any] = response.json()
    return body


async def _opened(stack_factory: StackFactory, **overrides: Any) -> AsyncIterator[Stack]:
    async for stack in stack_factory.open(**overrides):
        stack.start_consumers()
        yield stack


@pytest.fixture
async def allowed(stack_factory: StackFactory) -> AsyncIterator[Stack]:
    async for stack in _opened(stack_factory, import_allow=ALLOW_LOOPBACK):
        yield stack


@pytest.fixture
async def default(stack_factory: StackFactory) -> AsyncIterator[Stack]:
    async for stack in _opened(stack_factory):
        yield stack


async def test_an_import_from_an_allowed_server_is_ingested_with_its_validators(
    allowed: Stack, source: tuple[Source, str]
) -> None:
    files, url = source
    port = url.rsplit(":", 1)[1]
    # A name: resolved once, checked, connected to as checked; the server still sees the name it was asked by.
    accepted = await _import(allowed, f"http://localhost:{port}/contacts.csv")
    assert (accepted["format"], accepted["status"]) == ("csv", "pending")
    job = await allowed.wait_for_job(accepted["job_id"])
    assert job["status"] == "completed", job["error"]
    assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (3, 2, 1)
    assert job["source"] == f"http://localhost:{port}/contacts.csv"
    assert (job["source_etag"], job["source_last_modified"]) == ('"v1"', "Wed, 21 Oct 2026 07:28:00 GMT")
    assert (job["filename"], job["bytes"]) == ("contacts.csv", len(CSV))
    assert files.hosts == [f"localhost:{port}"]


async def test_redirects_are_followed_and_network_errors_retried(allowed: Stack, source: tuple[Source, str]) -> None:
    files, url = source
    moved = await allowed.wait_for_job((await _import(allowed, f"{url}/moved.csv"))["job_id"])
    assert (moved["status"], moved["rows_accepted"], moved["filename"]) == ("completed", 2, "contacts.csv")
    flaky = await allowed.wait_for_job((await _import(allowed, f"{url}/flaky.csv"))["job_id"])
    assert (flaky["status"], flaky["rows_accepted"]) == ("completed", 2)
    assert files.flaky_left == 0


async def test_failures_are_recorded_on_the_job(stack_factory: StackFactory, source: tuple[Source, str]) -> None:
    _files, url = source
    async for stack in _opened(stack_factory, import_allow=ALLOW_LOOPBACK, max_upload_bytes=1000):
        missing = await stack.wait_for_job((await _import(stack, f"{url}/missing.csv"))["job_id"])
        assert (missing["status"], missing["error"]) == ("failed", "import failed: the source answered 404 Not Found")
        big = await stack.wait_for_job((await _import(stack, f"{url}/big.csv"))["job_id"])
        assert big["status"] == "failed"
        assert big["error"] == "import failed: the source is larger than the limit of 1000 bytes"
        metadata = await stack.wait_for_job((await _import(stack, f"{url}/metadata.csv"))["job_id"])
        assert metadata["status"] == "failed"
        assert "169.254.169.254 is a cloud metadata address" in metadata["error"], metadata
        assert not list((stack.settings.upload_dir).glob("*")), "nothing of a failed import is kept"


async def test_without_the_allow_list_loopback_sources_are_refused(default: Stack, source: tuple[Source, str]) -> None:
    files, url = source
    port = url.rsplit(":", 1)[1]
    response = await default.client.post("/imports", json={"source": f"{url}/contacts.csv"})
    assert response.status_code == 400
    assert "127.0.0.1 is not a public address" in response.json()["detail"]
    # A name is checked by what it resolves to, by the fetcher: the job fails with the reason.
    job = await default.wait_for_job((await _import(default, f"http://localhost:{port}/contacts.csv"))["job_id"])
    assert job["status"] == "failed"
    assert "'localhost' resolves to" in job["error"] and "is not a public address" in job["error"], job
    assert files.hosts == [], "the server was never reached"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"source": "file:///etc/passwd"}, "not file scheme"),
        ({"source": "gopher://example.com/x.csv"}, "not gopher scheme"),
        ({"source": "http://user:secret@example.com/x.csv"}, "credentials"),
        ({"source": "http://[::1]/x.csv"}, "::1 is not a public address"),
        ({"source": "http://169.254.169.254/latest/x.csv"}, "metadata"),
        ({"source": "https://example.com/export"}, "pass ?format="),
        ({"source": "s3://bucket"}, "s3://bucket/key"),
        ({"source": "http://example.com:99999/x.csv"}, "not a URL: Port out of range"),
        ({"source": "http://[::1/x.csv"}, "not a URL"),
        ({"url": "https://example.com/x.csv"}, '{"source"'),
        ([], '{"source"'),
    ],
)
async def test_bad_sources_are_refused_with_a_reason(default: Stack, body: Any, detail: str) -> None:
    response = await default.client.post("/imports", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


async def test_an_import_needs_json(default: Stack) -> None:
    response = await default.client.post("/imports", content=b"https://x/y.csv", headers={"content-type": "text/plain"})
    assert response.status_code == 415


@pytest.mark.server
async def test_an_s3_source_is_read_from_the_allowed_endpoint(stack_factory: StackFactory, s3_endpoint: str) -> None:
    client = s3_client(s3_endpoint)
    bucket = f"imports-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="exports/contacts.csv", Body=CSV)
    async for stack in _opened(stack_factory, s3_endpoint_url=s3_endpoint):  # loopback, not allowed
        job = await stack.wait_for_job((await _import(stack, f"s3://{bucket}/exports/contacts.csv"))["job_id"])
        assert job["status"] == "failed"
        assert "refused to fetch from the S3 endpoint" in job["error"], job
    async for stack in _opened(stack_factory, s3_endpoint_url=s3_endpoint, import_allow=ALLOW_LOOPBACK):
        job = await stack.wait_for_job((await _import(stack, f"s3://{bucket}/exports/contacts.csv"))["job_id"])
        assert (job["status"], job["rows_accepted"], job["filename"]) == ("completed", 2, "contacts.csv")
        assert job["source_etag"] and job["source_last_modified"]
        missing = await stack.wait_for_job((await _import(stack, f"s3://{bucket}/nothing.csv"))["job_id"])
        assert (missing["status"], missing["error"]) == (
            "failed",
            f"import failed: S3 refused s3://{bucket}/nothing.csv: NoSuchKey",
        )


async def test_the_cli_imports_waits_and_summarizes(allowed: Stack, source: tuple[Source, str]) -> None:
    _files, url = source
    out = io.StringIO()
    code = await import_sources(
        allowed.client, [f"{url}/contacts.csv", f"{url}/missing.csv", "file:///etc/passwd"], "contacts", None, True, out
    )
    lines = out.getvalue().splitlines()
    assert code == 1
    assert lines[0].startswith(f"{url}/contacts.csv: job ")
    assert "file:///etc/passwd: refused (400: a source must be an http://, https:// or s3:// URL" in out.getvalue()
    assert f"{url}/missing.csv: failed: import failed: the source answered 404 Not Found" in lines
    summary = next(line for line in lines if line.startswith(f"{url}/contacts.csv ") and "completed" in line)
    assert summary.split()[3:6] == ["3", "2", "1"]  # rows, accepted, rejected


def test_ingestro_import_is_a_command() -> None:
    args = build_parser().parse_args(
        ["import", "https://a.example/x.csv", "s3://b/k.json", "--format", "json", "--wait"]
    )
    assert (args.sources, args.format, args.wait, args.dataset) == (
        ["https://a.example/x.csv", "s3://b/k.json"],
        "json",
        True,
        "contacts",
    )
    assert "import" in build_parser().format_help()
