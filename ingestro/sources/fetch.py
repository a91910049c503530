"""Opening a pull import's source: ``http(s)://`` through the address check, ``s3://bucket/key`` through boto3.

``open_source`` yields a ``Fetched``: the file's bytes as they arrive, and what its server told of it.
Errors are of two kinds: ``Retryable`` (the network, a timeout, a 5xx or 429: the fetcher tries again with
backoff) and ``FetchFailed`` (a refusal, a 4xx, a bad redirect: trying again would meet it again), both
with a message fit for the job's recorded reason.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import attrs
import httpx

from ingestro.sources.addresses import AllowList, Refused, resolve

#: The schemes a source may have.
SCHEMES = ("http", "https", "s3")
#: Redirects followed, each checked like the first request.
MAX_REDIRECTS = 5
#: Bounded waits: a source that stops sending fails the attempt (and is retried) instead of holding the fetcher.
TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
CHUNK_BYTES = 256 * 1024


class FetchFailed(Exception):
    """The source cannot be fetched and trying again would not help; the message is the job's reason."""


class Retryable(Exception):
    """The fetch failed in a way the next attempt may not meet (network, timeout, 5xx, 429)."""


@attrs.frozen
class Fetched:
    """A source being read: its bytes, and what its server said of it."""

    chunks: AsyncIterator[bytes]
    #: The last part of the source's path, for display and to tell the format by its extension.
    name: str
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None


def check_scheme(source: str) -> str:
    """``source`` if it is an http(s) URL with a host or an ``s3://bucket/key``; FetchFailed (a clear reason) if not."""
    try:
        parts = urlsplit(source)
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError as error:
        raise FetchFailed(f"not a URL: {error}") from None
    if parts.scheme not in SCHEMES:
        raise FetchFailed(f"a source must be an http://, https:// or s3:// URL, not {parts.scheme or 'no'} scheme")
    if parts.scheme == "s3" and (not parts.netloc or not parts.path.strip("/")):
        raise FetchFailed("an s3 source is s3://bucket/key")
    if parts.scheme != "s3" and not parts.hostname:
        raise FetchFailed("the source URL has no host")
    if parts.username or parts.password:
        raise FetchFailed("the source URL may not hold credentials")
    return source


def _name(path: str) -> str:
    return PurePosixPath(unquote(path)).name


@contextlib.asynccontextmanager
async def open_source(source: str, allow: AllowList, s3_endpoint_url: str = "") -> AsyncIterator[Fetched]:
    """The source opened for reading; the chunks are valid inside the ``async with``."""
    check_scheme(source)
    if source.startswith("s3://"):
        from ingestro.sources.s3 import open_s3  # boto3 is imported only where S3 is used

        async with open_s3(source, allow, s3_endpoint_url) as fetched:
            yield fetched
        return
    async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, follow_redirects=False) as client:
        response, url = await _follow(client, source, allow)
        try:
            yield Fetched(
                _body(response),
                _name(urlsplit(url).path),
                response.headers.get("content-type"),
                response.headers.get("etag"),
                response.headers.get("last-modified"),
            )
        finally:
            await response.aclose()


async def _follow(client: httpx.AsyncClient, url: str, allow: AllowList) -> tuple[httpx.Response, str]:
    """GET ``url``, following redirects, each target's address checked and connected to as checked; the response
    and the URL that gave it."""
    for _hop in range(MAX_REDIRECTS + 1):
        response = await _get(client, url, allow)
        if not response.is_redirect:
            return response, url
        await response.aclose()
        location = response.headers.get("location", "")
        url = urljoin(url, location)
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise FetchFailed(f"the source redirected to a {scheme or 'relative'} URL; only http(s) is followed")
        check_scheme(url)
    raise FetchFailed(f"the source redirected more than {MAX_REDIRECTS} times")


async def _get(client: httpx.AsyncClient, url: str, allow: AllowList) -> httpx.Response:
    # identity: the file is stored as the server keeps it (a .gz stays gzip, bounded by the parser's limits).
    response = await send_checked(client, "GET", url, allow, {"Accept-Encoding": "identity"})
    if response.status_code >= 500 or response.status_code == 429:
        await response.aclose()
        raise Retryable(f"the source answered {response.status_code}")
    if response.status_code >= 400:
        await response.aclose()
        raise FetchFailed(f"the source answered {response.status_code} {response.reason_phrase}".rstrip())
    return response


async def send_checked(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    allow: AllowList,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """Send one request to ``url`` (no redirect followed), connecting only to an address of its host that ``allow``
    passes, as resolved once here; the response is streamed (close it). FetchFailed when the address is refused,
    Retryable when no connection or answer came."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await resolve(host, port, allow)
    except Refused as refused:
        raise FetchFailed(f"refused to connect to {parts.scheme}://{parts.netloc}: {refused}") from None
    # Connect to a checked address; the server still sees its name (Host, and SNI + certificate check for TLS).
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    sent = {**(headers or {}), "Host": host if parts.port is None else f"{host}:{parts.port}"}
    for attempt, address in enumerate(addresses, 1):
        literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        target = parts._replace(netloc=f"{literal}:{port}").geturl()
        request = client.build_request(method, target, headers=sent, content=content, extensions=extensions)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError:
            if attempt < len(addresses):
                continue  # the next address of the name, checked like this one
            raise Retryable(f"{parts.scheme}://{parts.netloc}: cannot connect") from None
        except httpx.TransportError as error:
            raise Retryable(f"{parts.scheme}://{parts.netloc}: {type(error).__name__}: {error}") from None
    raise Retryable(f"{parts.scheme}://{parts.netloc}: no address")


async def _body(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw(CHUNK_BYTES):
            yield chunk
    except httpx.TransportError as error:
        raise Retryable(f"the source stopped sending: {type(error).__name__}: {error}") from None
