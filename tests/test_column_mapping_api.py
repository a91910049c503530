"""Column mappings over HTTP: ``?map=`` on ``POST /upload`` (checked, applied, recorded in the job) and mappings
saved per dataset and header shape (``/datasets/{name}/mappings``); ``ingestro upload --map``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestro.cli.client import upload_files
from ingestro.cli.main import build_parser
from ingestro.database.keys import Scope
from tests.stack import Stack, StackFactory
from tests.test_access import bearer
from tests.test_api import assert_problem
from tests.test_column_maps import MAP, MAPPED_CSV

HEADER = MAPPED_CSV.splitlines()[0].split(",")


async def upload_mapped(stack: Stack, column_map: Any, content: str = MAPPED_CSV, **headers: str) -> Any:
    return await stack.client.post(
        "/upload",
        content=content.encode(),
        headers={"content-type": "text/csv", **headers},
        params={"map": column_map if isinstance(column_map, str) else orjson.dumps(column_map).decode()},
    )


async def test_an_upload_with_a_mapping_is_read_with_it_and_the_job_records_it(stack: Stack) -> None:
    stack.start_consumers()
    response = await upload_mapped(stack, MAP)
    assert response.status_code == 202, response.text
    job = await stack.wait_for_job(response.json()["job_id"])
    assert (job["status"], job["rows_accepted"], job["rows_rejected"], job["unknown_columns"]) == (
        "completed",
        1,
        1,
        [],
    )
    assert job["column_map"] == MAP
    assert await stack.pool.fetchval("SELECT first_name FROM contacts WHERE email = 'a@example.com'") == "Ann"
    plain = await stack.ingest(b"email,first_name,last_name,signup_date\nb@example.com,B,C,2024-01-05\n")
    assert plain["column_map"] is None


@pytest.mark.parametrize(
    ("column_map", "says"),
    [
        ("E-mail address=email", "must be a JSON object"),
        ({"E-mail address": "mail"}, "'mail', which is not a field of dataset contacts"),
        ({"E-mail address": "email", "Given": "email"}, "both mapped to email"),
        ({"Given": "first_name", "given ": None}, "are the same column"),
    ],
)
async def test_a_mapping_that_cannot_apply_is_a_400_before_anything_is_stored(
    stack: Stack, column_map: Any, says: str
) -> None:
    body = assert_problem(await upload_mapped(stack, column_map), 400)
    assert says in str(body["detail"])
    assert await stack.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_map_given_twice_is_a_400(stack: Stack) -> None:
    response = await stack.client.post(
        "/upload",
        content=MAPPED_CSV.encode(),
        headers={"content-type": "text/csv"},
        params=[("map", "{}"), ("map", "{}")],
    )
    assert "give map once" in str(assert_problem(response, 400)["detail"])


async def test_a_saved_mapping_is_found_by_header_shape_per_tenant(stack_factory: StackFactory) -> None:
    async for secured in stack_factory.open(keys=True):
        uploader = await bearer(secured, Scope.UPLOAD)
        reader = await bearer(secured, Scope.READ)
        other = await bearer(secured, Scope.UPLOAD, tenant="acme")
        url = "/datasets/contacts/mappings"
        saved = await secured.client.put(url, json={"columns": HEADER, "map": MAP}, headers=uploader)
        assert saved.status_code == 200, saved.text
        assert saved.json()["map"]["given"] == "first_name" and len(saved.json()["shape"]) == 64
        # The same shape: the columns compared trimmed and case-insensitive, in order.
        same_shape = orjson.dumps([f" {column.upper()}" for column in HEADER]).decode()
        found = await secured.client.get(url, params={"columns": same_shape}, headers=reader)
        assert found.status_code == 200, found.text
        assert (found.json()["map"], found.json()["columns"]) == (MAP, HEADER)
        reordered = orjson.dumps(list(reversed(HEADER))).decode()
        none = await secured.client.get(url, params={"columns": reordered}, headers=reader)
        assert (none.status_code, none.json()["map"], none.json()["saved_at"]) == (200, None, None)
        # Another tenant's mappings are its own.
        theirs = await secured.client.get(url, params={"columns": same_shape}, headers=other)
        assert theirs.json()["map"] is None
        # Saving again replaces it; a read key may look up but not save.
        again = await secured.client.put(url, json={"columns": HEADER, "map": {"Internal id": None}}, headers=uploader)
        assert again.json()["map"] == {"Internal id": None}
        assert_problem(await secured.client.put(url, json={"columns": HEADER, "map": {}}, headers=reader), 403)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"columns": HEADER}, 'send {"columns"'),
        ({"columns": [], "map": {}}, "columns must be the file's header"),
        ({"columns": [1, 2], "map": {}}, "columns must be the file's header"),
        ({"columns": ["a\x00b"], "map": {}}, "without NUL"),
        ({"columns": HEADER, "map": {"Given": "nope"}}, "not a field of dataset contacts"),
        ({"columns": HEADER, "map": {"Elsewhere": "email"}}, "columns the header does not have: ['Elsewhere']"),
    ],
)
async def test_a_mapping_that_does_not_fit_is_not_saved(stack: Stack, body: Any, says: str) -> None:
    response = await stack.client.put("/datasets/contacts/mappings", json=body)
    assert says in str(assert_problem(response, 400)["detail"])


async def test_looking_up_needs_a_header_and_a_known_dataset(stack: Stack) -> None:
    url = "/datasets/contacts/mappings"
    assert_problem(await stack.client.get(url), 400)
    assert_problem(await stack.client.get(url, params={"columns": "a,b"}), 400)
    assert_problem(await stack.client.get(url, params={"columns": '{"a": 1}'}), 400)
    assert_problem(await stack.client.get("/datasets/nope/mappings", params={"columns": '["a"]'}), 404)
    assert_problem(await stack.client.put("/datasets/nope/mappings", json={"columns": ["a"], "map": {}}), 404)
    assert_problem(await stack.client.put(url, content=b"columns", headers={"content-type": "text/plain"}), 415)


async def test_ingestro_upload_map_sends_the_mapping(stack: Stack, tmp_path: Path) -> None:
    stack.start_consumers()
    path = tmp_path / "mapped.csv"
    path.write_text(MAPPED_CSV)
    pairs = ["E-mail address=email", "Given=first_name", "Family=last_name", "Joined=signup_date", "Internal id="]
    args = build_parser().parse_args(["upload", str(path), *(part for pair in pairs for part in ("--map", pair))])
    column_map = dict(args.map)
    assert column_map["Internal id"] is None
    out = io.StringIO()
    assert await upload_files(stack.client, [path], "contacts", True, out, column_map=column_map) == 0
    summary = out.getvalue().splitlines()[2].split()
    assert summary[2:6] == ["completed", "2", "1", "1"]
    assert await stack.pool.fetchval("SELECT options->'column_map' FROM jobs") == column_map


@pytest.mark.parametrize("bad", ["no-equals", "=email"])
def test_a_map_option_that_is_not_column_equals_field_is_a_usage_error(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(["upload", "a.csv", "--map", bad])
    assert usage.value.code == 2
    assert "is not COLUMN=FIELD" in capsys.readouterr().err
