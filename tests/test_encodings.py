"""Which declared encodings an upload may name: every one the rule lets in reads files, every other is a 400.

The rule (``ingestro.formats.decoding.stream_encoding``) is checked here against every
codec Python has, rather than against a list: what it accepts must read a CSV file
written in it, and what it refuses must be refused with a reason, at upload and at parse.
"""

from __future__ import annotations

import codecs
import encodings
import pkgutil
from encodings.aliases import aliases
from pathlib import Path

import pytest

from ingestro.domain.events import UploadOptions
from ingestro.formats.decoding import UnusableEncoding, stream_encoding
from tests.parse_outcome import parse
from tests.stack import Stack
from tests.test_api import assert_problem
from tests.test_hostile_uploads import HEADER, post, rows

#: Every codec name Python knows: its modules and their aliases.
CODEC_NAMES = sorted({module.name for module in pkgutil.iter_modules(encodings.__path__)} | set(aliases))
CONTACTS = (
    "email,first_name,last_name,signup_date\r\n"
    "ada@example.com,Ada,Lovelace,2024-01-05\n"
    '"b@x.io",Bo,"O\'Neil",2024-02-29\n'
)
#: Refused, and why: each stands for a kind of codec, none of them named by the rule.
REFUSED = {
    "undefined": "cannot read a file as a stream",  # raises on every byte
    "punycode": "cannot read a file as a stream",  # not incremental: decodes no stream
    "idna": "cannot read a file as a stream",  # domain-name labels, not text
    "utf-16": "byte-order mark",  # BOM-less, its byte order is unknown
    "UTF32": "byte-order mark",
    "rot13": "not a text encoding",  # text to text
    "base64": "not a text encoding",  # bytes to bytes
    "zlib_codec": "not a text encoding",
    "hex": "not a text encoding",
    "uu": "not a text encoding",
    "quopri": "not a text encoding",
    "bz2": "not a text encoding",
    "no-such-codec": "unknown text encoding",
    "utf-8\x00": "unknown text encoding",
    "": "unknown text encoding",
}


def _usable(name: str) -> str | None:
    try:
        return stream_encoding(name)
    except UnusableEncoding:
        return None


@pytest.mark.parametrize("name", sorted({canonical for name in CODEC_NAMES if (canonical := _usable(name))}))
def test_every_encoding_the_rule_lets_in_reads_a_csv_file_written_in_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / "contacts.csv"
    encoded = CONTACTS.encode(name)
    path.write_bytes(encoded)
    outcome = parse(path, options=UploadOptions(encoding=name))
    assert outcome.failure is None and sorted(outcome.accepted) == [2, 3], (name, outcome)
    # Undecodable bytes (where the encoding has any) reject their row, never more.
    path.write_bytes(encoded + b"\xff\xfe\xfd\x00\xd8\xff\n")
    outcome = parse(path, options=UploadOptions(encoding=name))
    assert outcome.failure is None and sorted(outcome.accepted) == [2, 3], (name, outcome)


def test_the_usual_encodings_pass_the_rule() -> None:
    for name in ("utf-8", "UTF8", "latin-1", "cp1252", "utf-8-sig", "utf-16-le", "utf-16-be", "utf-32-be"):
        assert stream_encoding(name) == codecs.lookup(name).name
    for name in ("shift_jis", "gb18030", "cp037", "iso2022_jp", "utf-7", "koi8-r"):
        assert stream_encoding(name)


@pytest.mark.parametrize(("name", "reason"), sorted(REFUSED.items()))
def test_codecs_that_cannot_read_a_stream_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(UnusableEncoding, match=reason):
        stream_encoding(name)


@pytest.mark.parametrize("name", ["utf-16", "undefined", "punycode", "idna", "rot13", "utf-8\x00"])
def test_a_file_whose_event_names_an_unusable_encoding_fails_with_the_reason(tmp_path: Path, name: str) -> None:
    """Events written before the API refused these (or by hand) fail their job: no exception, no retry."""
    path = tmp_path / "contacts.csv"
    path.write_bytes(CONTACTS.encode("utf-16-le"))
    outcome = parse(path, options=UploadOptions(encoding=name))
    assert outcome.failure is not None and outcome.failure[0] == str(_refusal(name))
    assert outcome.rows_total == 0


def _refusal(name: str) -> UnusableEncoding:
    with pytest.raises(UnusableEncoding) as refused:
        stream_encoding(name)
    return refused.value


def test_a_utf16_file_with_undecodable_bytes_rejects_their_row_at_the_right_byte(tmp_path: Path) -> None:
    """The UTF-16 and UTF-32 encoders take no one-byte replacement: counting bytes must not use one."""
    head = "email,first_name,last_name,signup_date\nada@example.com,Ada,Lovelace,2024-01-05\n"
    path = tmp_path / "contacts.csv"
    path.write_bytes(head.encode("utf-16-le") + b"\x00\xd8" + "b@x.io,B,C,2024-01-05\n".encode("utf-16-le"))
    outcome = parse(path, options=UploadOptions(encoding="utf-16-le"))
    assert outcome.failure is None
    assert outcome.rejected == {3: [(None, "invalid_encoding")]}
    assert outcome.messages[3] == [f"byte {len(head) * 2} does not decode"]


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_an_upload_naming_an_unusable_encoding_is_400_and_nothing_is_stored(stack: Stack, name: str) -> None:
    body = assert_problem(await post(stack, HEADER + rows(1), params={"encoding": name}), 400)
    # A control character is refused for every parameter before the upload reads its options.
    reason = "holds a control character" if "\x00" in name else REFUSED[name]
    assert reason in str(body["detail"])
    assert list(Path(stack.settings.upload_dir).glob("*")) == []
