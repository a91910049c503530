"""``GET /openapi.json``: the API described by hand, in OpenAPI 3.1.

Written out rather than derived: the handlers parse their own parameters, so nothing could
derive it. ``tests/test_openapi.py`` holds it to the routes and to real responses.
"""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from ingestro.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from ingestro.api.responses import JSON
from ingestro.datasets import FieldType, UnknownColumns
from ingestro.domain.jobs import STATUSES, JobStatus

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INTEGER = {"type": ["integer", "null"]}
_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


#: Every endpoint that reads a body (ingestro/api/body_deadlines.py).
_SLOW_BODY = _problem(
    "the body sent nothing for INGESTRO_BODY_IDLE_TIMEOUT_S, or came slower than INGESTRO_BODY_MIN_RATE; the"
    " connection is closed"
)


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_PAGING = [
    _query(
        "limit", "items per page", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    ),
    _query("cursor", "`next_cursor` of the previous page", {"type": "string"}),
]
_DATASET = _query("dataset", "the dataset", {"type": "string", "default": "contacts"})
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "string"}}}
_DENIED = {
    "401": _problem("no API key, or an unknown or revoked one"),
    "403": _problem("the API key's scope does not allow this"),
    "429": {
        **_problem("past the API key's request rate (INGESTRO_RATE_LIMIT), or on POST /upload its uploads at once"),
        "headers": _RETRY_AFTER,
    },
}
#: Any operation with a parameter: ``api/parameters.py`` refuses control characters before the endpoint runs.
_BAD_PARAMETER = _problem("a parameter holding a control character (e.g. NUL)")
_LINK = {"Link": {"description": 'the next page: `<…>; rel="next"`', "schema": {"type": "string"}}}
_SECURED: list[dict[str, list[str]]] = [{"apiKey": []}]


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next_cursor": _NULLABLE_STRING,
        },
    }


def _items(item: dict[str, Any]) -> dict[str, Any]:
    """A whole list (not paged) of ``item``s, as ``{"items": [...]}``."""
    return {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": item}}}


_JOB_PROPERTIES: dict[str, Any] = {
    "job_id": {"type": "string", "format": "uuid"},
    "status": {"enum": [status.value for status in STATUSES]},
    "dataset": _NULLABLE_STRING,
    "filename": _NULLABLE_STRING,
    "format": _NULLABLE_STRING,
    "bytes": _NULLABLE_INTEGER,
    "sha256": _NULLABLE_STRING,
    "rows_total": _NULLABLE_INTEGER,
    "dataset_version": {**_NULLABLE_INTEGER, "description": "the dataset version the file was checked against"},
    **{name: {"type": "integer"} for name in ("rows_accepted", "rows_rejected", "rows_inserted", "rows_duplicate")},
    "rows_updated": {
        "type": "integer",
        "description": "rows that replaced the stored content of their natural key (rows_duplicate: rows that"
        " changed nothing, an identical row being stored or a later one of their key winning)",
    },
    "unknown_columns": {"type": "array", "items": {"type": "string"}},
    "column_map": {
        "type": ["object", "null"],
        "additionalProperties": {"type": ["string", "null"]},
        "description": "the upload's column mapping (`?map=`): file column -> field, null for ignored; null for none",
    },
    "error": _NULLABLE_STRING,
    "error_line": _NULLABLE_INTEGER,
    **dict.fromkeys(("received_at", "started_at", "parsed_at", "finished_at", "updated_at"), _TIMESTAMP),
    "source": {**_NULLABLE_STRING, "description": "a pull import's source URL (POST /imports); null for an upload"},
    "source_etag": {**_NULLABLE_STRING, "description": "the ETag the source's server gave the fetched file"},
    "source_last_modified": {**_NULLABLE_STRING, "description": "the Last-Modified it gave (an HTTP date)"},
    "previously_ingested_as": {
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "description": (
            "earlier jobs of the tenant with the same file (SHA-256) that the caller may read, oldest first"
        ),
    },
}
_ACCEPTED_PROPERTIES: dict[str, Any] = {
    "job_id": {"type": "string", "format": "uuid"},
    "status": {"const": JobStatus.PENDING.value},
    "dataset": {"type": "string"},
    "dataset_version": {
        "type": "integer",
        "description": "the version of the dataset the file will be checked against",
    },
    "filename": {"type": "string"},
    "format": {"enum": ["csv", "json", "ndjson", "xlsx", "parquet"]},
    "compression": {"enum": ["gzip", None]},
    "bytes": {"type": "integer"},
    "sha256": {"type": "string"},
}
_IMPORT_ACCEPTED_PROPERTIES: dict[str, Any] = {
    **{name: _ACCEPTED_PROPERTIES[name] for name in ("job_id", "status", "dataset", "dataset_version", "format")},
    "source": {"type": "string"},
    "compression": {"enum": ["gzip", None]},
}
_DEAD_LETTER_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "stream": {"type": "string"},
    "entry_id": {"type": "string"},
    "group": {"type": "string"},
    "consumer": {"type": "string"},
    "deliveries": {"type": "integer"},
    "error_type": {"type": "string"},
    "error_message": {"type": "string"},
    "first_failure": {"type": "string"},
    "last_failure": {"type": "string"},
    "event_type": _NULLABLE_STRING,
    "job_id": _NULLABLE_STRING,
    "seq": _NULLABLE_INTEGER,
}

_COUNTS = ("rows_total", "rows_accepted", "rows_rejected", "rows_inserted", "rows_updated", "rows_duplicate")


def _job_event(name: str, data: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": _ref(data),
            },
        },
    }


_UPLOAD = {
    "summary": "Upload a file to ingest",
    "security": _SECURED,
    "parameters": [
        _DATASET,
        _query(
            "format",
            "overrides the format told by the content type, the file name or (XLSX, Parquet) the first bytes",
            {"enum": ["csv", "json", "ndjson", "xlsx", "parquet"]},
        ),
        _query(
            "sheet",
            "the XLSX sheet to read, by name (default: the first); a name the workbook lacks fails the job;"
            " given for a file that is not XLSX, a 400",
            {"type": "string", "minLength": 1, "maxLength": 31},
        ),
        _query("delimiter", "CSV delimiter (default: sniffed)", {"enum": [",", ";", "|", "\t"]}),
        _query(
            "encoding",
            "a Python text encoding that can read a stream (default UTF-8; a byte-order mark wins);"
            " not base64, rot13, idna, punycode, undefined, or utf-16/utf-32 without a byte order (400)",
            {"type": "string"},
        ),
        _query("max_errors", "fail the job past this many rejected rows", {"type": "integer", "minimum": 0}),
        _query(
            "max_error_rate",
            "fail the job past this share of rejected rows",
            {"type": "number", "minimum": 0, "maximum": 1},
        ),
        _query("filename", "the raw body's file name (x.csv.gz tells format and compression)", {"type": "string"}),
        {
            "name": "map",
            "in": "query",
            "required": False,
            "description": (
                "column mapping, one JSON object: file column (a header's column or a JSON key, compared trimmed"
                " and case-insensitive) -> the dataset field it is, or null to ignore the column. Applied before"
                " columns are matched; recorded in the job (`column_map`). 400 for a field the dataset lacks, two"
                " columns to one field, or one column twice; a mapped column the file lacks maps nothing. One JSON"
                " object rather than repeated `Header:field` pairs: a header may hold any character, and null says"
                " ignore."
            ),
            "content": {
                "application/json": {
                    "schema": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                    "example": {"E-mail Address": "email", "Internal id": None},
                }
            },
        },
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "retry safely: the same key and file give back the first job (see README)",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        },
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            **{
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in (
                    "text/csv",
                    "application/json",
                    "application/x-ndjson",
                    "application/gzip",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "application/vnd.apache.parquet",
                    "application/octet-stream",
                )
            },
        },
    },
    "responses": {
        "202": {
            **_json("Accepted", "stored; the job is pending"),
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        "200": {
            **_json("Accepted", "a repeat of an Idempotency-Key's upload: the original answer"),
            "headers": {
                "Location": {"schema": {"type": "string"}},
                "Idempotent-Replayed": {"schema": {"const": "true"}},
            },
        },
        "400": _problem(
            "a bad option, an empty upload or a malformed body, or a parameter holding a control character (e.g. NUL)"
        ),
        **_DENIED,
        "404": _problem("unknown dataset"),
        "408": _SLOW_BODY,
        "409": _problem("an upload with this Idempotency-Key is still being received"),
        "413": _problem("larger than INGESTRO_MAX_UPLOAD_BYTES"),
        "415": _problem("unsupported content type"),
        "422": _problem("the Idempotency-Key was used for another upload"),
        "503": _problem("a backing server is unreachable, or Redis refuses writes (full); see Retry-After"),
    },
}

_IMPORT = {
    "summary": "Pull a file from a URL or S3 and ingest it",
    "description": (
        "The `fetcher` consumer streams the source into storage, then the job goes on as an upload's. Only"
        " http(s):// and s3://bucket/key; every address the source resolves or redirects to must be public or in"
        " INGESTRO_IMPORT_ALLOW (cloud metadata addresses never), else the job fails with the reason."
        " Network errors, timeouts, 5xx and 429 are retried with backoff."
    ),
    "security": _SECURED,
    "parameters": [
        parameter
        for parameter in cast(list[dict[str, Any]], _UPLOAD["parameters"])
        if parameter["name"] not in ("filename", "Idempotency-Key")
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["source"],
                    "properties": {
                        "source": {"type": "string", "maxLength": 2048, "examples": ["https://example.com/a.csv"]}
                    },
                }
            }
        },
    },
    "responses": {
        "202": {
            **_json("ImportAccepted", "the job is pending; the fetcher pulls the file"),
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        "400": _problem(
            "a bad option, a source that is not http(s):// or s3://, holds credentials, is a refused address, or"
            " whose format neither ?format= nor its name tells"
        ),
        **_DENIED,
        "404": _problem("unknown dataset"),
        "408": _SLOW_BODY,
        "413": _problem("a body of more than 8 KiB"),
        "415": _problem("a body that is not application/json"),
        "503": _problem("a backing server is unreachable, or Redis refuses writes (full); see Retry-After"),
    },
}

_WEBHOOK_PROPERTIES: dict[str, Any] = {
    "webhook_id": {"type": "string", "format": "uuid"},
    "url": {"type": "string"},
    "events": {"type": "array", "items": {"enum": ["job.completed", "job.failed", "job.stalled"]}},
}
_WEBHOOK_ID = {"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "string"}}
_NO_WEBHOOK = _problem("no such webhook (of the caller's tenant)")
_WEBHOOK_PATHS: dict[str, Any] = {
    "/webhooks": {
        "post": {
            "summary": "Register an endpoint for the tenant's job events (admin keys); its secret is shown here only",
            "security": _SECURED,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["url"],
                            "properties": {
                                "url": {"type": "string", "maxLength": 2048},
                                "events": {**_WEBHOOK_PROPERTIES["events"], "minItems": 1},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": {
                    **_json("NewWebhook", "registered; deliveries are signed with `secret`"),
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                "400": _problem("not an http(s) URL, a refused address, or unknown events"),
                **_DENIED,
                "408": _SLOW_BODY,
                "413": _problem("a body of more than 8 KiB"),
                "415": _problem("a body that is not application/json"),
            },
        },
        "get": {
            "summary": "The tenant's webhook endpoints (admin keys), without their secrets",
            "security": _SECURED,
            "responses": {"200": _json("WebhookList", "the endpoints"), **_DENIED},
        },
    },
    "/webhooks/{webhook_id}": {
        "delete": {
            "summary": "Remove an endpoint and its dead letters (admin keys)",
            "security": _SECURED,
            "parameters": [_WEBHOOK_ID],
            "responses": {"204": {"description": "removed"}, "400": _BAD_PARAMETER, **_DENIED, "404": _NO_WEBHOOK},
        }
    },
    "/webhooks/{webhook_id}/rotate": {
        "post": {
            "summary": "A new secret; the previous one signs too until the next rotation (admin keys)",
            "security": _SECURED,
            "parameters": [_WEBHOOK_ID],
            "responses": {
                "200": _json("NewWebhook", "the endpoint with its new secret"),
                "400": _BAD_PARAMETER,
                **_DENIED,
                "404": _NO_WEBHOOK,
            },
        }
    },
    "/webhooks/{webhook_id}/dead-letters": {
        "get": {
            "summary": "Deliveries to the endpoint that failed every attempt, oldest first (admin keys)",
            "security": _SECURED,
            "parameters": [_WEBHOOK_ID],
            "responses": {
                "200": _json("WebhookDeadLetterList", "the failed deliveries"),
                "400": _BAD_PARAMETER,
                **_DENIED,
                "404": _NO_WEBHOOK,
            },
        }
    },
}
_WEBHOOK_SCHEMAS: dict[str, Any] = {
    "Webhook": {"type": "object", "required": list(_WEBHOOK_PROPERTIES), "properties": _WEBHOOK_PROPERTIES},
    "NewWebhook": {
        "type": "object",
        "required": [*_WEBHOOK_PROPERTIES, "secret"],
        "properties": {**_WEBHOOK_PROPERTIES, "secret": {"type": "string", "pattern": "^whsec_"}},
    },
    "WebhookList": _items(_ref("Webhook")),
    "WebhookDeadLetterList": _items(
        {
            "type": "object",
            "required": ["event_id", "payload", "attempts", "error", "failed_at"],
            "properties": {
                "event_id": {"type": "string"},
                "payload": {"type": "object"},
                "attempts": {"type": "integer"},
                "error": {"type": "string"},
                "failed_at": _TIMESTAMP,
            },
        }
    ),
}

_FIELD_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}$"},
    "type": {"enum": [kind.value for kind in FieldType]},
    "required": {"type": "boolean", "default": False},
    "default": {"type": ["string", "number", "boolean", "null"], "description": "as a file would hold it"},
    "minimum": {"type": ["string", "number", "null"]},
    "maximum": {"type": ["string", "number", "null"]},
    "min_length": {"type": ["integer", "null"]},
    "max_length": {"type": ["integer", "null"]},
    "pattern": {
        **_NULLABLE_STRING,
        "description": "an RE2 expression (no backreferences, no lookaround) the whole value matches",
    },
    "values": {"type": ["array", "null"], "items": {"type": "string"}, "description": "allowed values"},
    "aliases": {"type": "array", "items": {"type": "string"}, "description": "other header names"},
    "formats": {"type": "array", "items": {"type": "string"}, "description": "strptime patterns of dates"},
    "day_first": {"type": "boolean", "default": False},
}
_DATASET_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}$"},
    "fields": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "object", "required": ["name", "type"], "properties": _FIELD_PROPERTIES},
    },
    "table": {"type": "string", "description": "the table; by default the dataset's name"},
    "version": {"type": "integer", "minimum": 1},
    "key": {"type": "array", "items": {"type": "string"}, "description": "natural key (empty: the content hash)"},
    "unknown_columns": {"enum": [policy.value for policy in UnknownColumns]},
    "timezone": {"type": "string", "description": "IANA zone of naive datetimes"},
    "migration": {
        "type": "object",
        "properties": {
            "drop": {"type": "array", "items": {"type": "string"}},
            "retype": {"type": "array", "items": {"type": "string"}},
        },
    },
}
_DATASET_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Ingestro",
        "version": "1",
        "description": "CSV and JSON ingestion into PostgreSQL. See README.md.",
    },
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "`ingestro keys create`"}},
        "schemas": {
            "SavedMapping": {
                "type": "object",
                "required": ["dataset", "shape", "columns", "map", "saved_at"],
                "properties": {
                    "dataset": {"type": "string"},
                    "shape": {"type": "string", "description": "SHA-256 of the header's columns as compared"},
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "map": {"type": ["object", "null"], "additionalProperties": {"type": ["string", "null"]}},
                    "saved_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
            "Problem": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                },
            },
            "Accepted": {"type": "object", "required": list(_ACCEPTED_PROPERTIES), "properties": _ACCEPTED_PROPERTIES},
            **_WEBHOOK_SCHEMAS,
            "ImportAccepted": {
                "type": "object",
                "required": list(_IMPORT_ACCEPTED_PROPERTIES),
                "properties": _IMPORT_ACCEPTED_PROPERTIES,
            },
            "Job": {"type": "object", "required": list(_JOB_PROPERTIES), "properties": _JOB_PROPERTIES},
            "RejectedRow": {
                "type": "object",
                "required": ["line", "errors", "raw"],
                "properties": {
                    "line": {"type": "integer"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "code", "message"],
                            "properties": {
                                "field": _NULLABLE_STRING,
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                    "raw": {"description": "the row as read, as JSON"},
                },
            },
            "Row": {
                "type": "object",
                "description": "a row of the dataset's table, with content_hash and the jobs that sent it",
            },
            "DeadLetter": {
                "type": "object",
                "required": list(_DEAD_LETTER_PROPERTIES),
                "properties": _DEAD_LETTER_PROPERTIES,
            },
            "JobPage": _page("Job"),
            "RejectedRowPage": _page("RejectedRow"),
            "RowPage": _page("Row"),
            "DeadLetterPage": _page("DeadLetter"),
            "JobEvent": {
                "description": "one event of GET /jobs/{job_id}/events: its name, and its data as one line of JSON",
                "oneOf": [_job_event("progress", "JobProgress"), _job_event("status", "JobStatus")],
            },
            "JobProgress": {
                "type": "object",
                "required": ["job_id", *_COUNTS],
                "properties": {
                    "job_id": {"type": "string", "format": "uuid"},
                    **{name: _JOB_PROPERTIES[name] for name in _COUNTS},
                },
            },
            "JobStatus": {
                "type": "object",
                "required": ["job_id", "status", "error"],
                "properties": {name: _JOB_PROPERTIES[name] for name in ("job_id", "status", "error")},
            },
            "Declaration": {"type": "object", "required": ["fields"], "properties": _DATASET_PROPERTIES},
            "Dataset": {
                "type": "object",
                "required": list(_DATASET_PROPERTIES),
                "properties": {
                    **_DATASET_PROPERTIES,
                    "versions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"version": {"type": "integer"}, "declared_at": _TIMESTAMP},
                        },
                    },
                    "outcome": {"enum": ["created", "evolved", "unchanged"]},
                    "statements": {"type": "array", "items": {"type": "string"}, "description": "the SQL run"},
                },
            },
            "Draft": {
                "type": "object",
                "required": ["name", "toml", "declaration", "candidate_keys", "columns", "rows_sampled", "notes"],
                "properties": {
                    "name": {"type": "string"},
                    "toml": {"type": "string", "description": "the draft as TOML, what PUT /datasets/{name} takes"},
                    "declaration": _ref("Declaration"),
                    "candidate_keys": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "fields present and distinct in every sampled row, likeliest first",
                    },
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "rows_sampled": {"type": "integer"},
                    "rows_skipped": {"type": "integer", "description": "rows that did not parse (one cut short)"},
                    "format": {"enum": ["csv", "json", "ndjson"]},
                    "delimiter": _NULLABLE_STRING,
                    "notes": {"type": "array", "items": {"type": "string"}},
                },
            },
            "ErrorCounts": _items(
                {
                    "type": "object",
                    "required": ["code", "field", "errors"],
                    "properties": {
                        "code": {"type": "string"},
                        "field": _NULLABLE_STRING,
                        "errors": {"type": "integer"},
                    },
                }
            ),
            "Redriven": {
                "type": "object",
                "required": ["id", "stream", "redriven_as"],
                "properties": {
                    "id": {"type": "string"},
                    "stream": {"type": "string", "description": "the source stream the entry was appended to"},
                    "redriven_as": {"type": "string", "description": "its new entry id there"},
                },
            },
            "StreamBacklog": {
                "type": "object",
                "required": ["streams"],
                "properties": {
                    "streams": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["stream", "length", "groups"],
                            "properties": {
                                "stream": {"type": "string"},
                                "length": {"type": "integer"},
                                "groups": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": [
                                            "group",
                                            "lag",
                                            "pending",
                                            "oldest_pending_idle_s",
                                            "consumers",
                                            "last_delivered_id",
                                        ],
                                        "properties": {
                                            "group": {"type": "string"},
                                            "lag": {
                                                **_NULLABLE_INTEGER,
                                                "description": "entries not yet delivered (null: Redis cannot tell)",
                                            },
                                            "pending": {"type": "integer"},
                                            "oldest_pending_idle_s": {"type": "number"},
                                            "consumers": {"type": "integer"},
                                            "last_delivered_id": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
            "DatasetList": _items(_ref("Dataset")),
        },
    },
    "paths": {
        "/upload": {"post": _UPLOAD},
        "/imports": {"post": _IMPORT},
        **_WEBHOOK_PATHS,
        "/jobs": {
            "get": {
                "summary": "The caller's jobs, newest first",
                "security": _SECURED,
                "parameters": [
                    *_PAGING,
                    _query("status", "only these statuses, comma-separated", {"type": "string"}),
                    _query("dataset", "only this dataset's jobs", {"type": "string"}),
                    _query(
                        "since",
                        "received at or after (ISO 8601 with a zone)",
                        {"type": "string", "format": "date-time"},
                    ),
                    _query(
                        "until", "received before (ISO 8601 with a zone)", {"type": "string", "format": "date-time"}
                    ),
                ],
                "responses": {
                    "200": {**_json("JobPage", "a page of jobs"), "headers": _LINK},
                    "400": _problem("bad paging, or a parameter holding a control character (e.g. NUL)"),
                    **_DENIED,
                },
            }
        },
        "/jobs/{job_id}": {
            "get": {
                "summary": "A job's status and counts",
                "security": _SECURED,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _json("Job", "the job"),
                    **_DENIED,
                    "404": _problem("no such job (or another tenant's)"),
                },
            }
        },
        "/jobs/{job_id}/errors": {
            "get": {
                "summary": "A job's rejected rows in line order",
                "security": _SECURED,
                "parameters": [
                    _JOB_ID,
                    *_PAGING,
                    _query("format", "csv: every rejected row as a CSV download", {"enum": ["json", "csv"]}),
                    _query("field", "only rows with an error of this field", {"type": "string"}),
                    _query(
                        "code",
                        "only rows with an error of this code (with field: the same error); in CSV, only those errors",
                        {"type": "string"},
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "a page of rejected rows, or (format=csv) all of them",
                        "headers": _LINK,
                        "content": {
                            "application/json": {"schema": _ref("RejectedRowPage")},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _problem("bad paging or format, or a parameter holding a control character (e.g. NUL)"),
                    **_DENIED,
                    "404": _problem("no such job (or another tenant's)"),
                },
            }
        },
        "/jobs/{job_id}/errors/counts": {
            "get": {
                "summary": "How many field errors a job's rejected rows have, by code and field",
                "security": _SECURED,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _json("ErrorCounts", "one item per code and field, most frequent first"),
                    **_DENIED,
                    "404": _problem("no such job (or another tenant's)"),
                },
            }
        },
        "/jobs/{job_id}/events": {
            "get": {
                "summary": "A job's progress and status changes as Server-Sent Events, until it ends",
                "description": (
                    "`event: progress` (data: the job's counts) and `event: status` (data: `job_id`, `status`, `error`)"
                    " lines, each with one line of JSON data: first the state now, then each change as it happens;"
                    " `: keepalive` comments while idle. The stream ends after the status `completed` or `failed`, or"
                    " with `: the API key was revoked` within a heartbeat of the key's revocation."
                ),
                "security": _SECURED,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": {
                        "description": "the event stream",
                        "content": {"text/event-stream": {"schema": _ref("JobEvent")}},
                    },
                    **_DENIED,
                    "404": _problem("no such job (or another tenant's)"),
                    "503": {
                        **_problem("this API process serves INGESTRO_MAX_EVENT_STREAMS streams already"),
                        "headers": _RETRY_AFTER,
                    },
                },
            }
        },
        "/data": {
            "get": {
                "summary": "A dataset's rows, in content-hash order (keys of the default tenant only)",
                "security": _SECURED,
                "parameters": [_DATASET, *_PAGING],
                "responses": {
                    "200": {**_json("RowPage", "a page of rows"), "headers": _LINK},
                    "400": _problem("bad paging, or a parameter holding a control character (e.g. NUL)"),
                    **_DENIED,
                    "404": _problem("unknown dataset"),
                },
            }
        },
        "/datasets": {
            "get": {
                "summary": "Every dataset's latest declaration",
                "security": _SECURED,
                "responses": {"200": _json("DatasetList", "the datasets"), **_DENIED},
            }
        },
        "/datasets/infer": {
            "post": {
                "summary": "A draft declaration (TOML and JSON) inferred from a sample of a file (any key)",
                "description": (
                    "Types (integer, number, boolean, date with its format, datetime, uuid, email, json, string),"
                    " required (no empty value in the sample) and candidate keys, from the sample in the body:"
                    " the start of a CSV, JSON array or NDJSON file, uncompressed. Reads and stores nothing;"
                    " declare the reviewed draft with PUT /datasets/{name}."
                ),
                "security": _SECURED,
                "parameters": [
                    _query("name", "the dataset's name (default: from the file name)", {"type": "string"}),
                    _query(
                        "format",
                        "the sample's format (default: from the file name or content type)",
                        {"enum": ["csv", "json", "ndjson"]},
                    ),
                    _query("filename", "the file's name, telling the format and the default name", {"type": "string"}),
                    _query("delimiter", "CSV delimiter (default: sniffed)", {"enum": [",", ";", "|", "\t"]}),
                    _query("encoding", "a Python text codec (default UTF-8)", {"type": "string"}),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        media_type: {"schema": {"type": "string", "format": "binary"}}
                        for media_type in ("text/csv", "application/json", "application/x-ndjson", "text/plain")
                    },
                },
                "responses": {
                    "200": _json("Draft", "the draft"),
                    "400": _problem("a bad option or an empty sample"),
                    **_DENIED,
                    "413": _problem("a sample larger than 1 MiB"),
                    "415": _problem("a compressed sample, or no format told"),
                    "422": _problem("a sample nothing can be inferred from"),
                },
            }
        },
        "/datasets/{name}": {
            "get": {
                "summary": "A dataset's latest declaration and its versions",
                "security": _SECURED,
                "parameters": [_DATASET_NAME],
                "responses": {
                    "200": _json("Dataset", "the dataset"),
                    **_DENIED,
                    "404": _problem("unknown dataset"),
                },
            },
            "put": {
                "summary": (
                    "Declare a dataset, or its next version (admin keys of the default tenant); creates or alters its"
                    " table"
                ),
                "security": _SECURED,
                "parameters": [_DATASET_NAME],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("Declaration")},
                        "application/toml": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": _json("Dataset", "evolved to a new version, or unchanged"),
                    "201": _json("Dataset", "created"),
                    **_DENIED,
                    "403": _problem("not an admin key, or not one of the default tenant (the operator's)"),
                    "408": _SLOW_BODY,
                    "409": _problem("a change that is refused, or that the stored rows do not allow"),
                    "413": _problem("larger than a declaration may be (256 KiB)"),
                    "415": _problem("neither JSON nor TOML"),
                    "422": _problem("a declaration that cannot work"),
                },
            },
        },
        "/datasets/{name}/mappings": {
            "get": {
                "summary": "The column mapping saved for files of this header shape (any key; the caller's tenant's)",
                "description": (
                    "The shape is the header's columns compared trimmed and case-insensitive, in order. Send the"
                    " mapping found with the upload (?map=) to apply it."
                ),
                "security": _SECURED,
                "parameters": [
                    _DATASET_NAME,
                    {
                        "name": "columns",
                        "in": "query",
                        "required": True,
                        "description": "the file's header, as a JSON array of its column names",
                        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}},
                    },
                ],
                "responses": {
                    "200": _json("SavedMapping", "the saved mapping; `map` and `saved_at` are null when none is"),
                    "400": _problem("no ?columns=, or not a JSON array of names"),
                    **_DENIED,
                    "404": _problem("unknown dataset"),
                },
            },
            "put": {
                "summary": "Save a column mapping for files of this header shape (upload or admin keys, per tenant)",
                "description": "Replaces the mapping saved for the same dataset and header shape.",
                "security": _SECURED,
                "parameters": [_DATASET_NAME],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["columns", "map"],
                                "additionalProperties": False,
                                "properties": {
                                    "columns": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                    "map": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json("SavedMapping", "saved"),
                    "400": _problem(
                        "a field the dataset lacks, two columns to one field, a column twice or not in the header"
                    ),
                    **_DENIED,
                    "404": _problem("unknown dataset"),
                    "408": _SLOW_BODY,
                    "413": _problem("larger than a mapping may be"),
                    "415": _problem("not JSON"),
                },
            },
        },
        "/dlq": {
            "get": {
                "summary": "Dead-lettered entries, oldest first (admin keys)",
                "security": _SECURED,
                "parameters": _PAGING,
                "responses": {
                    "200": {**_json("DeadLetterPage", "a page of dead letters"), "headers": _LINK},
                    "400": _problem("bad paging, or a parameter holding a control character (e.g. NUL)"),
                    **_DENIED,
                },
            }
        },
        "/dlq/{dlq_id}/redrive": {
            "post": {
                "summary": "Put a dead letter's entry back on its source stream, then delete it (admin keys)",
                "security": _SECURED,
                "parameters": [{"name": "dlq_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json("Redriven", "redriven"),
                    **_DENIED,
                    "404": _problem("no such dead letter"),
                },
            }
        },
        "/streams": {
            "get": {
                "summary": "Each stream's length and where each consumer group stands on it (admin keys)",
                "security": _SECURED,
                "responses": {"200": _json("StreamBacklog", "the streams"), **_DENIED},
            }
        },
        "/": {
            "get": {
                "summary": "The web console (HTML; its scripts call this API with the key the user gives)",
                "responses": {
                    "200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}
                },
            }
        },
        "/healthz": {"get": {"summary": "The process is up", "responses": {"200": {"description": "up"}}}},
        "/readyz": {
            "get": {
                "summary": "Redis and PostgreSQL answer",
                "responses": {"200": {"description": "ready"}, "503": _problem("a backing server is unreachable")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    },
}


def _refusing_control_characters(spec: dict[str, Any]) -> dict[str, Any]:
    """Every operation with a parameter documents the 400 ``api/parameters.py`` answers for a control character
    (those that document a 400 of their own say so in it)."""
    for operations in spec["paths"].values():
        for operation in operations.values():
            if operation.get("parameters"):
                operation["responses"].setdefault("400", _BAD_PARAMETER)
    return spec


_refusing_control_characters(SPEC)


async def openapi_endpoint(_request: Request) -> Response:
    return JSON(SPEC)
