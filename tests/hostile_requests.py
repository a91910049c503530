"""Hostile HTTP requests for the fuzz test of the secured API (tests/test_fuzz_api.py), and a raw client to send them.

A request is built as bytes on the wire, not through an HTTP client, so that anything a
client could send is possible: any path and query bytes (NUL, broken percent-encodings),
junk in any header, a ``Content-Length`` that lies, a broken chunked body. The strategies
aim at every route of the API (and a few that do not exist, and methods a route does not
take), with the parameters, headers and bodies each route reads: mostly well-formed enough
to get past the first check, so the generated values reach the code behind it.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import time
from typing import Any
from urllib.parse import quote

import attrs
import orjson
from hypothesis import strategies as st

from ingestro.datasets.model import FieldType, UnknownColumns
from tests.test_properties import VALID_FILES, mutated

#: Every route of the API (ingestro/api/app.py), with its path parameters in braces.
ROUTES = (
    ("POST", "/upload"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("GET", "/jobs/{job_id}/errors"),
    ("GET", "/jobs/{job_id}/events"),
    ("GET", "/data"),
    ("GET", "/datasets"),
    ("GET", "/datasets/{name}"),
    ("PUT", "/datasets/{name}"),
    ("GET", "/dlq"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
)
#: The query parameters each route reads.
PARAMETERS = {
    "/upload": ("dataset", "format", "encoding", "delimiter", "max_errors", "max_error_rate", "filename"),
    "/jobs": ("limit", "cursor", "status", "dataset", "since", "until"),
    "/jobs/{job_id}/errors": ("format", "limit", "cursor"),
    "/data": ("dataset", "limit", "cursor"),
    "/dlq": ("limit", "cursor"),
}
ALL_PARAMETERS = tuple(sorted({name for names in PARAMETERS.values() for name in names}))
#: Names the generated declarations take, so that a PUT, a GET and an upload may meet on one.
DATASET_NAMES = ("contacts", "fuzz_orders", "fuzz_people")
#: Values a parameter may be expected to take, and near misses.
TYPICAL_VALUES = (
    "contacts",
    "fuzz_orders",
    "csv",
    "json",
    "ndjson",
    "utf-8",
    "latin-1",
    "cp1252",
    ",",
    ";",
    "\t",
    "0",
    "1",
    "-1",
    "0.5",
    "nan",
    "inf",
    "1e309",
    "99999999999999999999999",
    "1000",
    "1001",
    "completed",
    "pending,failed",
    "2024-05-01T00:00:00Z",
    "2024-05-01T00:00:00",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00-23:59",
    "",
    " ",
    "\u00e9",
    "\U0001f600",
    "\u202e",
    "x" * 3000,
)
SAFE_PATTERNS = ("^[a-z]+$", "[0-9]{3}", "^.{0,5}$", "(", "[", "a{2,1}", "\\", "(?P<x>a)(?P=x)", "\\p{L}", "(?i)^ok")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@attrs.frozen
class RawRequest:
    method: str
    #: The route it was generated for (``/jobs/{job_id}``), to report and to know a stream when one is answered.
    route: str
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes = b""
    #: How the body is framed: "length" (a true Content-Length), "short" / "long" (one that lies),
    #: "chunked", "bad-chunked", or "none" (no framing header at all).
    framing: str = "length"
    #: Which of ``HOSTILE_DECLARATIONS`` the body is, if one.
    case: str = ""

    def wire(self, host: bytes) -> bytes:
        lines = [b"%s %s HTTP/1.1" % (self.method.encode(), self.target), b"host: " + host, b"connection: close"]
        lines += [name + b": " + value for name, value in self.headers]
        body = self.body
        if self.framing == "length":
            lines.append(b"content-length: %d" % len(body))
        elif self.framing == "short":
            lines.append(b"content-length: %d" % max(0, len(body) - 1 - len(body) // 2))
        elif self.framing == "long":
            lines.append(b"content-length: %d" % (len(body) + 1 + len(body) // 2))
        elif self.framing in ("chunked", "bad-chunked"):
            lines.append(b"transfer-encoding: chunked")
            size = b"%x" % len(body) if self.framing == "chunked" else b"zz%x;;" % len(body)
            body = (size + b"\r\n" + body + b"\r\n0\r\n\r\n") if body else b"0\r\n\r\n"
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    def __str__(self) -> str:
        head = self.wire(b"127.0.0.1")
        shown = head if len(head) < 2000 else head[:2000] + b"... (%d bytes)" % len(head)
        case = f", {self.case}" if self.case else ""
        return f"{self.method} {self.route} ({self.framing}{case}): {shown!r}"


@attrs.frozen
class Answer:
    """What came back: the status (None: the server closed without answering), its headers, and the time taken."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    seconds: float


def send(request: RawRequest, port: int, timeout: float) -> Answer:
    """Send ``request`` on a new connection; read the answer until the server closes it (for a 200
    event stream: its head only). TimeoutError when no whole answer came within ``timeout`` seconds."""
    started = time.monotonic()
    deadline = started + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        try:
            connection.sendall(request.wire(b"127.0.0.1:%d" % port))
            if request.framing == "long":  # a client that promised more and went away: the server sees EOF
                connection.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (e.g. 413) and closed: read its answer
        received = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no whole answer within {timeout} s; got {received[:300]!r}")
            connection.settimeout(remaining)
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                chunk = b""
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            if _ and request.route.endswith("/events") and head.startswith(b"HTTP/1.1 200"):
                break  # a stream of events: it goes on while the job does
            if not chunk:
                break
    if not received:
        return Answer(None, {}, b"", time.monotonic() - started)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunked(body)
    return Answer(int(status_line.split()[1]), headers, body, time.monotonic() - started)


def _unchunked(body: bytes) -> bytes:
    """A chunked body's content (as much of it as came)."""
    content = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size.split(b";")[0] or b"0", 16)
        if length == 0:
            break
        content, body = content + rest[:length], rest[length + 2 :]
    return content


# ------------------------------------------------------------------ strategies
# Each strategy is built once: hypothesis validates a strategy when it is first drawn from, and building
# them anew for every request made generating cost ten times what sending does.


#: A fair coin, of a seed hypothesis draws: its own choices favour the ends of ranges, which makes weights unfair.
_COIN = st.randoms(use_true_random=True)


@st.composite
def often(draw: st.DrawFn, usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int = 4) -> Any:
    """``rare`` one time in ``one_in``, else ``usual``: most requests well-formed enough to reach deep."""
    return draw(rare if draw(_COIN).randrange(one_in) == 0 else usual)


def _encoded(text: str) -> bytes:
    return quote(text, safe="").encode()


def _wire_text(typical: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """A path segment or query value as it goes on the wire: percent-encoded text, or bytes no encoder would make."""
    return st.one_of(
        typical.map(_encoded),
        st.text(max_size=40).map(_encoded),
        st.sampled_from([b"%00", b"%FF%FE", b"%", b"%zz", b"%C0%AF", b"..%2F..%2F", b"a%00b", b"%E2%80%AE"]),
        st.binary(min_size=1, max_size=12).map(lambda raw: quote(raw, safe="").encode()),
    )


def _json(value: Any) -> bytes:
    """``value`` as JSON, integers of any size and non-finite floats included (orjson refuses both)."""
    return json.dumps(value, ensure_ascii=False).encode()


@st.composite
def _cursors(draw: st.DrawFn) -> str:
    """A cursor as the API gives them out (base64url of a JSON list), of any JSON value; or not base64 at all."""
    value = draw(st.one_of(st.lists(JSON_VALUES, max_size=3), JSON_VALUES))
    encoded = base64.urlsafe_b64encode(_json(value)).decode()
    return draw(st.sampled_from([encoded, encoded.rstrip("="), encoded + "!", encoded[: len(encoded) // 2]]))


_TYPICAL = st.sampled_from(TYPICAL_VALUES)
_QUERY_VALUES = often(_TYPICAL.map(_encoded), _wire_text(st.one_of(_TYPICAL, _cursors(), st.integers().map(str))), 2)
_ANY_PARAMETER = _wire_text(st.sampled_from(ALL_PARAMETERS))


@st.composite
def _queries(draw: st.DrawFn, names: st.SearchStrategy[bytes]) -> bytes:
    pairs = draw(often(st.just([]), st.lists(st.tuples(names, _QUERY_VALUES), min_size=1, max_size=4), 2))
    if not pairs:
        return draw(st.sampled_from([b"", b"?", b"?&", b"?=", b"?a"]))
    return b"?" + b"&".join(name + b"=" + value for name, value in pairs)


#: Per route, a query string: mostly of parameters the route reads, with values from typical to hostile.
QUERIES = {
    route: _queries(often(st.sampled_from(PARAMETERS.get(route, ALL_PARAMETERS)).map(str.encode), _ANY_PARAMETER))
    for _, route in ROUTES
}
_OTHER_QUERIES = _queries(_ANY_PARAMETER)

_FIELD_NAMES = st.sampled_from(["email", "ctid", "content_hash", "Bad Name", ""])
_FIELD_TYPES = often(st.sampled_from([kind.value for kind in FieldType]), st.text(max_size=8), 10)
_FIELD_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "required": st.booleans(),
    "default": st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=12)),
    "minimum": st.one_of(st.integers(-(10**9), 10**9), st.decimals(allow_nan=False).map(str), st.floats()),
    "maximum": st.one_of(st.integers(-(10**9), 10**9), st.decimals(allow_nan=False).map(str), st.floats()),
    "min_length": st.integers(-5, 10**6),
    "max_length": st.integers(-5, 10**6),
    "pattern": st.one_of(st.sampled_from(SAFE_PATTERNS), st.text(alphabet="ab()[]{}^$.*+?|\\0-9", max_size=10)),
    "values": st.lists(st.text(max_size=10), max_size=4),
    "aliases": st.lists(st.text(max_size=10), max_size=3),
    "formats": st.lists(st.sampled_from(["%Y-%m-%d", "%d/%m/%Y %H:%M", "%Q", "%", "", "%Y%z"]), max_size=2),
    "day_first": st.booleans(),
    "unexpected": JSON_VALUES,
}
_FIELD_OPTION_NAMES = st.lists(st.sampled_from(sorted(_FIELD_OPTIONS)), max_size=3, unique=True)
_DATASET_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "name": often(st.sampled_from(DATASET_NAMES), st.text(max_size=10)),
    "table": st.sampled_from(["fuzz_orders", "fuzz_people", "contacts", "jobs", "Bad", "a" * 64]),
    "version": st.integers(-1, 4),
    "unknown_columns": often(st.sampled_from([policy.value for policy in UnknownColumns]), st.text()),
    "timezone": st.sampled_from(["UTC", "Europe/Paris", "Nope/Zone", "../../etc/passwd", "", "Etc/GMT+14"]),
}
_DATASET_OPTION_NAMES = st.lists(
    st.sampled_from([*sorted(_DATASET_OPTIONS), "key", "migration"]), max_size=3, unique=True
)


@st.composite
def declarations(draw: st.DrawFn) -> dict[str, Any]:
    """A declaration as a dictionary: its structure right, its values anything from valid to hostile."""
    declared = []
    for index in range(draw(st.integers(0, 5))):
        field = {"name": draw(often(st.just(f"f{index}"), _FIELD_NAMES)), "type": draw(_FIELD_TYPES)}
        field |= {name: draw(_FIELD_OPTIONS[name]) for name in draw(_FIELD_OPTION_NAMES)}
        declared.append(field)
    names = [field["name"] for field in declared] or ["x"]
    declaration: dict[str, Any] = {"fields": declared}
    for name in draw(_DATASET_OPTION_NAMES):
        if name == "key":
            declaration[name] = draw(st.lists(st.sampled_from([*names, "nope"]), max_size=2))
        elif name == "migration":
            listed = st.lists(st.sampled_from([*names, "x"]), max_size=2)
            declaration[name] = draw(st.fixed_dictionaries({}, optional={"drop": listed, "retype": listed}))
        else:
            declaration[name] = draw(_DATASET_OPTIONS[name])
    if draw(st.integers(0, 9)) == 0:  # the structure broken too: a value replaced by any JSON value
        declaration[draw(st.sampled_from(sorted(declaration)))] = draw(JSON_VALUES)
    return declaration


def toml_text(value: dict[str, Any]) -> str:
    """``value`` as a TOML document of one table whose values are all inline (TOML has no null: those keys go)."""
    return "".join(f"{_toml_key(key)} = {_toml_value(item)}\n" for key, item in value.items() if item is not None)


def _toml_key(key: str) -> str:
    return orjson.dumps(key).decode()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return orjson.dumps(value).decode()  # a JSON string is a TOML basic string (for what orjson escapes)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value if item is not None) + "]"
    items = (f"{_toml_key(key)} = {_toml_value(item)}" for key, item in value.items() if item is not None)
    return "{" + ", ".join(items) + "}"


VALID_DECLARATION = {
    "name": "fuzz_orders",
    "key": ["order_id"],
    "unknown_columns": "keep",
    "fields": [
        {"name": "order_id", "type": "uuid", "required": True},
        {"name": "customer", "type": "email", "required": True, "aliases": ["E-mail"]},
        {"name": "total", "type": "number", "minimum": 0, "maximum": "1000000.50"},
        {"name": "ordered_on", "type": "date", "day_first": True},
        {"name": "at", "type": "datetime", "formats": ["%Y-%m-%d %H:%M"]},
        {"name": "status", "type": "enum", "values": ["new", "paid"], "default": "new"},
        {"name": "code", "type": "string", "pattern": "^[A-Z]{2}[0-9]+$", "max_length": 12},
        {"name": "count", "type": "integer", "minimum": -5},
        {"name": "paid", "type": "boolean"},
        {"name": "meta", "type": "json_object"},
        {"name": "any", "type": "json"},
    ],
}
_VALID_JSON, _VALID_TOML = _json(VALID_DECLARATION), toml_text(VALID_DECLARATION).encode()
_BACKTRACKING = {"name": "f", "type": "string", "pattern": "^(a+)+$", "default": "a" * 28 + "!"}
#: Declarations built to break a parser or the database, by name: (syntax, body).
HOSTILE_DECLARATIONS = {
    "deep JSON": ("json", b'{"name": "fuzz_people", "fields": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"),
    "deep TOML": ("toml", b'name = "fuzz_people"\nfields = ' + b"[" * 20_000 + b"]" * 20_000),
    "deep TOML tables": ("toml", b"x = " + b"{a = " * 5_000 + b"1" + b"}" * 5_000),
    "dotted TOML": ("toml", b'name = "fuzz_people"\n' + b"a." * 20_000 + b"b = 1"),
    "backtracking pattern": ("json", _json({"name": "fuzz_people", "fields": [_BACKTRACKING]})),
    "huge max_length": (
        "json",
        b'{"fields": [{"name": "f", "type": "string", "max_length": 99999999999999999999999}]}',
    ),
    "huge minimum": ("toml", b'fields = [{name = "f", type = "number", minimum = -99999999999999999999999}]'),
    "a system catalog as table": ("json", b'{"table": "pg_class", "fields": [{"name": "f", "type": "string"}]}'),
    "a schema-qualified table": ("json", b'{"table": "pg_catalog.x", "fields": [{"name": "f", "type": "string"}]}'),
}
#: (syntax, body) of a declaration: generated structurally, or mutated byte by byte from a valid one; JSON or TOML.
DECLARATION_BODIES = st.one_of(
    st.just(("json", _VALID_JSON)),
    declarations().map(lambda value: ("json", _json(value))),
    declarations().map(lambda value: ("toml", toml_text(value).encode())),
    mutated(_VALID_JSON).map(lambda body: ("json", body)),
    mutated(_VALID_TOML).map(lambda body: ("toml", body)),
    st.tuples(st.sampled_from(["json", "toml"]), st.binary(max_size=200)),
)


@st.composite
def _multipart_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(content type, body) of a multipart upload: a ``file`` field (or not), any name and type, maybe cut short."""
    boundary = draw(st.sampled_from([b"fuzzboundary", b"x", b"a" * 80]))
    file_format = draw(st.sampled_from(sorted(VALID_FILES)))
    content = draw(often(st.just(VALID_FILES[file_format]), _MUTATED_FILES[file_format], 2))
    field = draw(st.sampled_from([b"file", b"other", b"FILE"]))
    filename = draw(
        st.one_of(st.sampled_from([b"x." + file_format.encode(), b"x.csv.gz", b"../../x.csv"]), st.binary(max_size=12))
    )
    part_type = draw(st.sampled_from([b"", b"content-type: text/csv\r\n", b"content-type: \xff\r\n"]))
    body = (
        b"--" + boundary + b'\r\ncontent-disposition: form-data; name="' + field + b'"; filename="' + filename
        + b'"\r\n' + part_type + b"\r\n" + content + b"\r\n--" + boundary + b"--\r\n"
    )  # fmt: skip
    if draw(st.integers(0, 4)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return b"multipart/form-data; boundary=" + boundary, body


_MUTATED_FILES = {name: mutated(content) for name, content in VALID_FILES.items()}
_FILES = st.sampled_from(sorted(VALID_FILES)).flatmap(
    lambda name: often(st.just(VALID_FILES[name]), _MUTATED_FILES[name], 2)
)
_UPLOAD_MEDIA = st.sampled_from([b"text/csv", b"application/json", b"application/x-ndjson"])
_ANY_MEDIA = st.sampled_from(
    [b"text/csv", b"application/json", b"application/x-ndjson", b"application/gzip", b"text/plain"]
)
#: (content type, body) of ``POST /upload``: a file as is, mutated, gzip'd (whole or cut), multipart, or anything.
UPLOAD_BODIES = often(
    st.tuples(_UPLOAD_MEDIA, _FILES),
    st.one_of(
        st.tuples(_ANY_MEDIA, _FILES.map(gzip.compress)),
        st.tuples(_ANY_MEDIA, _FILES.map(lambda raw: gzip.compress(raw)[:-6])),
        st.tuples(_ANY_MEDIA | st.binary(max_size=30), st.binary(max_size=300)),
        _multipart_bodies(),
    ),
    2,
)
HEADER_VALUES = st.one_of(
    st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=40).map(str.encode),
    st.binary(max_size=40).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"").strip()),
    st.just(b"x" * 300),
)
_UPLOAD_HEADERS = (
    (b"idempotency-key", HEADER_VALUES | st.uuids().map(lambda value: value.hex.encode())),
    (b"content-encoding", st.sampled_from([b"gzip", b"identity", b"br", b"gzip, gzip"]) | HEADER_VALUES),
    (b"x-filename", st.sampled_from([b"a.csv", b"a.json.gz", b"..\\..\\a.ndjson"]) | HEADER_VALUES),
)
_OTHER_HEADERS = st.sampled_from([b"accept", b"content-type", b"idempotency-key", b"x-forwarded-for", b"cookie"])
_METHODS = st.sampled_from(["DELETE", "PATCH", "POST", "PUT", "OPTIONS", "HEAD", "GET"])
_OTHER_ROUTES = st.sampled_from(["/", "/jobs/", "/datasets/", "//jobs", "/jobs/{job_id}/nope", "/%2e%2e/etc"])
_FRAMINGS = often(st.just("length"), st.sampled_from(["short", "long", "chunked", "bad-chunked", "none"]))


@attrs.frozen
class Keys:
    """The tokens the fuzzed API knows: by name (admin, read, upload, other_tenant, revoked)."""

    tokens: dict[str, str]
    job_ids: tuple[str, ...]


def _authorizations(keys: Keys) -> st.SearchStrategy[bytes | None]:
    valid = st.sampled_from(sorted(keys.tokens)).map(lambda name: b"Bearer " + keys.tokens[name].encode())
    junk = st.one_of(
        st.none(),
        st.sampled_from([b"", b"Bearer", b"Bearer ", b"bearer  x", b"Basic dXNlcjpwYXNz", b"Bearer ingestro_x_y"]),
        st.binary(max_size=60).map(lambda raw: b"Bearer " + raw.replace(b"\r", b"").replace(b"\n", b"")),
        st.sampled_from(sorted(keys.tokens)).map(lambda name: b"Bearer " + keys.tokens[name].encode() + b"\xff"),
        st.just(b"Bearer " + b"A" * 9000),
    )
    admin = st.just(b"Bearer " + keys.tokens["admin"].encode())
    return often(admin, often(valid, junk, 2), 3)


def requests(keys: Keys) -> st.SearchStrategy[RawRequest]:
    """Any request to any route of the API, with hostile parts drawn for what that route reads."""
    authorizations = _authorizations(keys)
    job_ids = often(st.sampled_from(keys.job_ids), st.one_of(st.uuids().map(str), st.sampled_from(DATASET_NAMES)), 3)
    segments = {
        b"{job_id}": often(job_ids.map(str.encode), _wire_text(job_ids)),
        b"{name}": often(st.sampled_from(DATASET_NAMES).map(str.encode), _wire_text(st.sampled_from(DATASET_NAMES))),
    }

    @st.composite
    def request(draw: st.DrawFn) -> RawRequest:
        method, route = draw(st.sampled_from(ROUTES))
        if draw(st.integers(0, 19)) == 0:
            method = draw(_METHODS)
        if draw(st.integers(0, 39)) == 0:
            route = draw(_OTHER_ROUTES)
        path = route.encode()
        for placeholder, values in segments.items():
            if placeholder in path:
                path = path.replace(placeholder, draw(values))
        headers: list[tuple[bytes, bytes]] = []
        case = ""
        if (authorization := draw(authorizations)) is not None:
            headers.append((b"authorization", authorization))
        body = b""
        if (method, route) == ("POST", "/upload"):
            content_type, body = draw(UPLOAD_BODIES)
            headers.append((b"content-type", content_type))
            for name, values in _UPLOAD_HEADERS:
                if draw(st.integers(0, 3)) == 0:
                    headers.append((name, draw(values)))
        elif (method, route) == ("PUT", "/datasets/{name}"):
            if draw(st.integers(0, 9)) == 0:
                case = draw(st.sampled_from(sorted(HOSTILE_DECLARATIONS)))
                syntax, body = HOSTILE_DECLARATIONS[case]
            else:
                syntax, body = draw(DECLARATION_BODIES)
            media = {"json": b"application/json", "toml": b"application/toml"}[syntax]
            headers.append((b"content-type", draw(often(st.just(media), HEADER_VALUES | st.just(media + b";x=y")))))
        elif draw(st.integers(0, 9)) == 0:
            body = draw(st.binary(max_size=100))
        for _ in range(draw(often(st.just(0), st.integers(1, 2)))):
            headers.append((draw(_OTHER_HEADERS), draw(HEADER_VALUES)))
        query = draw(QUERIES.get(route, _OTHER_QUERIES))
        return RawRequest(method, route, path + query, tuple(headers), body, draw(_FRAMINGS), case)

    return request()
