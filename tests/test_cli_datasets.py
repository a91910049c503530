"""``ingestro datasets infer FILE``: the draft declaration of POST /datasets/infer, as TOML, from a local file."""

from __future__ import annotations

import gzip
import io
import tomllib
from pathlib import Path

import orjson
import pytest

from ingestro.cli.datasets import infer
from ingestro.cli.main import main
from ingestro.datasets import declaration_of

SAMPLE = b"Customer Id,E-mail,Joined\n1,a@example.com,2024-01-05\n2,b@example.com,2024-02-06\n"


def inferred(path: Path, **options: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = infer(path, **options, out=out, err=err)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def test_infer_prints_a_draft_toml_that_declares(tmp_path: Path) -> None:
    path = tmp_path / "Customers 2024.csv"
    path.write_bytes(SAMPLE)
    code, out, err = inferred(path)
    assert (code, err) == (0, "")
    assert out.startswith("# Draft inferred from 2 row(s) of Customers 2024.csv")
    draft = tomllib.loads(out)
    assert draft["name"] == "customers_2024"
    dataset = declaration_of(draft)
    assert [(field.name, field.type.value) for field in dataset.fields] == [
        ("customer_id", "integer"),
        ("e_mail", "email"),
        ("joined", "date"),
    ]


def test_infer_reads_gzip_ndjson_and_prints_json_on_request(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(gzip.compress(b'{"id": 1, "ok": true}\n{"id": 2, "ok": false}\n'))
    code, out, _ = inferred(path, name="events")
    assert code == 0 and tomllib.loads(out)["name"] == "events"
    out_json = io.StringIO()
    assert infer(path, as_json=True, out=out_json) == 0
    draft = orjson.loads(out_json.getvalue())
    assert draft["format"] == "ndjson" and draft["candidate_keys"] == ["id"]


@pytest.mark.parametrize(
    ("name", "content", "options", "says"),
    [
        ("notes.txt", b"a,b\n1,2\n", {}, "cannot tell its format"),
        ("empty.csv", b"  \n", {}, "the file is empty"),
        ("bad.csv.gz", b"not gzip", {}, "Not a gzipped file"),
        ("x.csv", SAMPLE, {"name": "Bad Name"}, "--name must be a lowercase identifier"),
        ("x.csv", SAMPLE, {"encoding": "rot13"}, "rot13"),
        ("x.json", b"42", {}, "x.json: "),
    ],
)
def test_a_file_that_gives_no_draft_is_one_clear_line(
    tmp_path: Path, name: str, content: bytes, options: dict[str, str], says: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = inferred(path, **options)
    assert (code, out) == (1, "")
    assert err.startswith(f"ingestro datasets infer: {path}: ") and says in err and err.count("\n") == 1


def test_a_missing_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "infer", str(tmp_path / "gone.csv")]) == 1
    err = capsys.readouterr().err
    assert "gone.csv: No such file or directory" in err and "Traceback" not in err
