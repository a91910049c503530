"""Every field type, stored and read back exactly: through ``GET /data`` and the errors export (JSON and CSV)."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from tests.stack import Stack

EVERY_TYPE: dict[str, Any] = {
    "name": "everything",
    "fields": [
        {"name": "s", "type": "string"},
        {"name": "e", "type": "email"},
        {"name": "i", "type": "integer"},
        {"name": "n", "type": "number"},
        {"name": "b", "type": "boolean"},
        {"name": "d", "type": "date"},
        {"name": "dt", "type": "datetime"},
        {"name": "en", "type": "enum", "values": ["red", "green"]},
        {"name": "u", "type": "uuid"},
        {"name": "j", "type": "json"},
        {"name": "jo", "type": "json_object"},
    ],
}
#: A row of the file, and the row ``GET /data`` shows for it.
SENT: dict[str, Any] = {
    "s": "Zoë \"quoted\", 'and' =1+1",
    "e": "Ada@Example.COM",
    "i": -9223372036854775808,
    "n": "12345678901234567890.000000000000000001",
    "b": "yes",
    "d": "2024-02-29",
    "dt": "2024-02-29T23:59:58.123456+01:00",
    "en": "green",
    "u": "{0E984725-C51C-4BF4-9960-E1C80E27ABA0}",
    "j": [1, "two", {"three": None, "four": [True, 2.5]}],
    "jo": {"nested": {"k": ["v", 1]}, "empty": {}},
}
SHOWN: dict[str, Any] = {
    "s": "Zoë \"quoted\", 'and' =1+1",
    "e": "ada@example.com",
    "i": -9223372036854775808,
    "n": "12345678901234567890.000000000000000001",
    "b": True,
    "d": "2024-02-29",
    "dt": "2024-02-29T22:59:58.123456+00:00",
    "en": "green",
    "u": "0e984725-c51c-4bf4-9960-e1c80e27aba0",
    "j": [1, "two", {"three": None, "four": [True, 2.5]}],
    "jo": {"nested": {"k": ["v", 1]}, "empty": {}},
}


async def test_every_field_type_round_trips_through_data_and_the_errors_export(stack: Stack) -> None:
    declared = await stack.client.put("/datasets/everything", content=orjson.dumps(EVERY_TYPE))
    assert declared.status_code == 201, declared.text
    stack.start_consumers()
    nothing = dict.fromkeys(SENT)  # a row of absent values: every column null
    rejected = SENT | {"i": "not a number"}
    body = b"\n".join(orjson.dumps(row) for row in (SENT, nothing, rejected)) + b"\n"
    accepted = await stack.upload(body, "application/x-ndjson", dataset="everything")
    job = await stack.wait_for_job(accepted["job_id"])
    assert (job["status"], job["rows_accepted"], job["rows_rejected"]) == ("completed", 2, 1), job

    response = await stack.client.get("/data?dataset=everything")
    assert response.status_code == 200, response.text
    rows = [{name: row[name] for name in SHOWN} for row in response.json()["items"]]
    assert sorted(rows, key=lambda row: row["s"] is None) == [SHOWN, dict.fromkeys(SHOWN)]

    errors = (await stack.client.get(f"/jobs/{job['job_id']}/errors")).json()["items"]
    assert [(error["line"], error["raw"]) for error in errors] == [(3, rejected)]
    assert [(e["field"], e["code"]) for e in errors[0]["errors"]] == [("i", "invalid_integer")]
    exported = (await stack.client.get(f"/jobs/{job['job_id']}/errors?format=csv")).text
    [header, line] = list(csv.reader(io.StringIO(exported)))
    assert header == ["line", "field", "code", "message", "raw"]
    assert line[:3] == ["3", "i", "invalid_integer"] and orjson.loads(line[4]) == rejected
