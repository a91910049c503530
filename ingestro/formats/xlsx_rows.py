"""XLSX rows: one sheet of a workbook, streamed from its zip archive.

Written over ``zipfile`` and expat rather than a spreadsheet library, so that every part is
streamed and bounded: the sheet is parsed as it inflates, never whole; what the archive
inflates to is counted against the decompression limits (size, and ratio to the stored
file), as a gzip upload's is; the shared-string table, the one part held in memory, against
``shared_strings_bytes``. A DTD (entities) in any part fails the file.

The sheet is the first one of the workbook, or the one the upload names (``?sheet=``). Its
first non-empty row is the header (empty header cells are no columns; trailing empty
columns are dropped); each later non-empty row is a row, its line its sheet row number.
Cells are read as Excel stores them, with no locale guess: text; numbers as their decimal
text; booleans; a number whose format is a date as a date (a datetime with a time of day, a
time alone for a value under one day), by the workbook's 1900 or 1904 epoch; error values
(``#DIV/0!``) as their text; a formula as its cached value (empty if never calculated). A
merged range's value is in its first cell only, as Excel stores it.

A file that is not a zip archive, an encrypted (password-protected) workbook, or a corrupt
one fails the job with the reason.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO
from xml.parsers import expat

from ingestro.datasets import Dataset
from ingestro.datasets.column_maps import ColumnMap
from ingestro.domain.events import FieldError
from ingestro.domain.limits import Limits
from ingestro.formats.source import FileNotes, SourceRow, Unreadable, clean_text
from ingestro.formats.stored import OLE_MAGIC, file_size
from ingestro.formats.typed_rows import TypedColumns, as_written

_CHUNK = 64 * 1024
#: Below this many inflated bytes the ratio is not judged: small archives compress oddly.
_RATIO_FLOOR = 1024 * 1024
#: Bytes per shared string counted beside its characters: what Python holds per string.
_STRING_OVERHEAD = 64
#: The last column Excel has (XFD).
_MAX_COLUMN = 16_384
_BUILTIN_DATE_FORMATS = frozenset({*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)})
#: What a number format says apart from its date and time codes: quoted text, escapes, [colours].
_FORMAT_NOISE = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]|_.|\*.')
_DATE_CODES = re.compile(r"[dmyhs]", re.IGNORECASE)
_EPOCH_1900 = datetime(1899, 12, 30)
_EPOCH_1904 = datetime(1904, 1, 1)
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")


class _TooLarge:
    """A shared string past the field limit: only its length is kept."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length


class _Budget:
    """Counts what the archive inflates to, against the decompression limits."""

    def __init__(self, stored_bytes: int, limits: Limits) -> None:
        self._stored = max(stored_bytes, 1)
        self._limits = limits
        self.inflated = 0

    def add(self, count: int) -> None:
        self.inflated += count
        limits = self._limits
        if self.inflated > limits.decompressed_bytes:
            raise Unreadable(f"the workbook inflates past the limit of {limits.decompressed_bytes} bytes", None)
        if self.inflated > _RATIO_FLOOR and self.inflated / self._stored > limits.compression_ratio:
            raise Unreadable(
                f"the workbook inflates more than {limits.compression_ratio:g} times its stored size"
                " (a decompression bomb?)",
                None,
            )


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _refuse_dtd(*_args: Any) -> None:
    raise Unreadable("the workbook holds a DTD (XML entities), which no XLSX file has", None)


Events = list[tuple[int, str, Any]]
_START, _END, _TEXT = 0, 1, 2


def _events(archive: zipfile.ZipFile, part: str, budget: _Budget, want_text: Callable[[], bool]) -> Iterator[Events]:
    """The XML events of ``part`` as it inflates, a chunk's worth at a time: (kind, local name, attributes or text).

    Text is kept only while ``want_text()`` says so.
    """
    events: Events = []
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = lambda name, attributes: events.append((_START, _local(name), attributes))
    parser.EndElementHandler = lambda name: events.append((_END, _local(name), None))
    parser.CharacterDataHandler = lambda data: events.append((_TEXT, "", data)) if want_text() else None
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        with archive.open(part) as member:
            while chunk := member.read(_CHUNK):
                budget.add(len(chunk))
                parser.Parse(chunk, False)
                yield events
                events.clear()
            parser.Parse(b"", True)
            yield events
    except expat.ExpatError as error:
        raise Unreadable(f"the workbook's part {part} is not well-formed XML: {error}", None) from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as error:
        raise Unreadable(f"the workbook is corrupt (its part {part}): {error}", None) from None


def _start_tags(archive: zipfile.ZipFile, part: str, budget: _Budget) -> Iterator[tuple[str, dict[str, str]]]:
    for events in _events(archive, part, budget, lambda: False):
        for kind, name, attributes in events:
            if kind == _START:
                yield name, attributes


def _attribute(attributes: dict[str, str], local: str) -> str | None:
    """The attribute named ``local`` in any namespace prefix (``r:id``), else None."""
    for key, value in attributes.items():
        if _local(key) == local:
            return value
    return None


def _part_path(base: str, target: str) -> str:
    """A relationship's target, relative to the part ``base`` (or absolute), as an archive member name."""
    if target.startswith("/"):
        return target[1:]
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), target))


def _relationships(archive: zipfile.ZipFile, part: str, budget: _Budget) -> dict[str, tuple[str, str]]:
    """The relationships of ``part``: id -> (type, member name)."""
    rels = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
    if rels not in archive.NameToInfo:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for name, attributes in _start_tags(archive, rels, budget):
        if name == "Relationship" and "Id" in attributes and "Target" in attributes:
            found[attributes["Id"]] = (attributes.get("Type", ""), _part_path(part, attributes["Target"]))
    return found


def _is_date_format(code: str) -> bool:
    cleaned = _FORMAT_NOISE.sub("", code.split(";", 1)[0])
    return bool(_DATE_CODES.search(cleaned)) and "general" not in cleaned.lower()


def _date_styles(archive: zipfile.ZipFile, part: str | None, budget: _Budget) -> list[bool]:
    """For each cell style (``s`` of a cell), whether its number format is a date or time."""
    if part is None or part not in archive.NameToInfo:
        return []
    custom: dict[int, bool] = {}
    styles: list[bool] = []
    in_cell_xfs = False
    for events in _events(archive, part, budget, lambda: False):
        for kind, name, attributes in events:
            if kind == _END:
                in_cell_xfs = in_cell_xfs and name != "cellXfs"
            elif name == "numFmt":
                with_id = attributes.get("numFmtId", "")
                if with_id.isdigit():
                    custom[int(with_id)] = _is_date_format(attributes.get("formatCode", ""))
            elif name == "cellXfs":
                in_cell_xfs = True
            elif name == "xf" and in_cell_xfs:
                with_id = attributes.get("numFmtId", "0")
                number = int(with_id) if with_id.isdigit() and len(with_id) < 10 else 0
                styles.append(custom.get(number, number in _BUILTIN_DATE_FORMATS))
    return styles


def _shared_strings(
    archive: zipfile.ZipFile, part: str | None, budget: _Budget, limits: Limits
) -> list[str | _TooLarge]:
    """The shared-string table, within ``shared_strings_bytes``; a string past the field limit as its length."""
    if part is None or part not in archive.NameToInfo:
        return []
    table: list[str | _TooLarge] = []
    held = 0
    pieces: list[str] = []
    length = 0
    state = {"in_text": False, "in_phonetic": False}
    for events in _events(archive, part, budget, lambda: True):
        for kind, name, value in events:
            if kind == _TEXT:
                if not state["in_text"] or state["in_phonetic"]:
                    continue
                length += len(value)
                if length <= limits.field_chars:
                    pieces.append(value)
            elif name == "t":
                state["in_text"] = kind == _START
            elif name == "rPh":
                state["in_phonetic"] = kind == _START
            elif name == "si" and kind == _START:
                pieces, length = [], 0
            elif name == "si":
                table.append("".join(pieces) if length <= limits.field_chars else _TooLarge(length))
                held += min(length, limits.field_chars) + _STRING_OVERHEAD
                if held > limits.shared_strings_bytes:
                    raise Unreadable(
                        f"the workbook's shared strings take more than the limit of {limits.shared_strings_bytes}"
                        " bytes",
                        None,
                    )
    return table


def _column_index(reference: str) -> int:
    """The 0-based column of a cell reference (``AB12`` -> 27); -1 when it names none."""
    column = 0
    for char in reference:
        if "A" <= char <= "Z":
            column = column * 26 + ord(char) - 64
            if column > _MAX_COLUMN:
                return -1
        else:
            break
    return column - 1


def _excel_date(serial: float, date1904: bool) -> date | datetime | str | None:
    """The date of an Excel serial number, or None when the serial is no date (then the number stands)."""
    if serial < 0 or serial >= 2_958_466:  # past 9999-12-31
        return None
    if serial < 1:
        moment = datetime(1900, 1, 1) + timedelta(milliseconds=round(serial * 86_400_000))
        return moment.time().isoformat()  # a time of day alone
    if date1904:
        base = _EPOCH_1904
    elif serial >= 61:
        base = _EPOCH_1900
    elif serial >= 60:
        return None  # 1900-02-29, which Excel counts and the calendar has not
    else:
        base = _EPOCH_1900 + timedelta(days=1)
    moment = base + timedelta(milliseconds=round(serial * 86_400_000))
    return moment.date() if moment.time() == datetime.min.time() else moment


class _Sheet:
    """Reads one sheet's rows: (sheet row number, {column: value})."""

    def __init__(
        self,
        strings: list[str | _TooLarge],
        date_styles: list[bool],
        date1904: bool,
        limits: Limits,
    ) -> None:
        self._strings = strings
        self._date_styles = date_styles
        self._date1904 = date1904
        self._limits = limits
        self.in_value = False

    def rows(self, events: Iterator[Events]) -> Iterator[tuple[int, dict[int, Any], FieldError | None]]:
        row_number = 0
        cells: dict[int, Any] = {}
        row_chars = 0
        error: FieldError | None = None
        column = -1
        kind = "n"
        style = 0
        text: list[str] = []
        length = 0
        in_inline = False
        limits = self._limits
        for chunk in events:
            for event, name, value in chunk:
                if event == _TEXT:
                    if not self.in_value:
                        continue
                    length += len(value)
                    if length <= limits.field_chars:
                        text.append(value)
                elif event == _START:
                    if name == "c":
                        reference = value.get("r")
                        column = _column_index(reference) if reference else column + 1
                        kind = value.get("t", "n")
                        with_style = value.get("s", "0")
                        style = int(with_style) if with_style.isdigit() and len(with_style) < 10 else 0
                        text, length = [], 0
                    elif name == "row":
                        numbered = value.get("r", "")
                        row_number = int(numbered) if numbered.isdigit() and len(numbered) < 10 else row_number + 1
                        cells, row_chars, error, column = {}, 0, None, -1
                    elif name == "v" or (name == "t" and in_inline):
                        self.in_value = True
                    elif name == "is":
                        in_inline = True
                elif name in ("v", "t"):
                    self.in_value = False
                elif name == "is":
                    in_inline = False
                elif name == "c":
                    if column < 0:
                        raise Unreadable(f"a cell of row {row_number} has no valid reference", row_number)
                    if length > limits.field_chars:
                        cell: Any = _TooLarge(length)
                    else:
                        cell = self._cell(kind, style, "".join(text), row_number)
                    if isinstance(cell, _TooLarge):
                        message = f"a cell has {cell.length} characters, more than the limit of {limits.field_chars}"
                        error = error or FieldError(None, "field_too_large", message)
                    elif cell is not None:
                        row_chars += len(cell) if isinstance(cell, str) else 8
                        if row_chars > limits.row_chars:
                            message = f"the row is longer than {limits.row_chars} characters"
                            error = error or FieldError(None, "row_too_large", message)
                        elif error is None:
                            cells[column] = cell
                elif name == "row":
                    yield row_number, cells, error
                    cells = {}

    def _cell(self, kind: str, style: int, text: str, row_number: int) -> Any:
        if kind == "s":
            if not text.strip().isdigit() or int(text) >= len(self._strings):
                raise Unreadable(
                    f"a cell of row {row_number} names shared string {text[:20]!r}, which is not there", row_number
                )
            return self._strings[int(text)]
        if kind in ("str", "inlineStr", "e", "d"):
            return text if text else None
        if kind == "b":
            return text.strip() in ("1", "true")
        if not text:
            return None  # no value: an empty cell, or a formula never calculated
        if style < len(self._date_styles) and self._date_styles[style]:
            try:
                moment = _excel_date(float(text), self._date1904)
            except ValueError:
                moment = None
            if moment is not None:
                return moment
        return text.strip()


def _sheet_part(
    archive: zipfile.ZipFile, budget: _Budget, sheet: str | None
) -> tuple[str, str | None, str | None, bool]:
    """The member of the sheet to read, of the shared strings and of the styles, and the 1904 flag."""
    package = _relationships(archive, "", budget)
    workbook = next(
        (member for kind, member in package.values() if kind.endswith("/officeDocument")), "xl/workbook.xml"
    )
    if workbook not in archive.NameToInfo:
        raise Unreadable("not an XLSX workbook: the archive has no workbook part", None)
    related = _relationships(archive, workbook, budget)
    sheets: list[tuple[str, str]] = []
    date1904 = False
    for name, attributes in _start_tags(archive, workbook, budget):
        if name == "workbookPr":
            date1904 = attributes.get("date1904", "0").lower() in ("1", "true")
        elif name == "sheet":
            sheets.append((attributes.get("name", ""), _attribute(attributes, "id") or ""))
    if not sheets:
        raise Unreadable("the workbook has no sheet", None)
    if sheet is None:
        chosen = sheets[0]
    else:
        found = [entry for entry in sheets if entry[0] == sheet]
        if not found:
            listed = ", ".join(repr(clean_text(name)) for name, _ in sheets[:20])
            raise Unreadable(f"the workbook has no sheet named {clean_text(sheet)!r}; its sheets: {listed}", None)
        chosen = found[0]
    target = related.get(chosen[1])
    if target is None or target[1] not in archive.NameToInfo:
        raise Unreadable(f"the workbook's sheet {clean_text(chosen[0])!r} has no part in the archive", None)
    by_type = {kind.rpartition("/")[2]: member for kind, member in related.values()}
    return target[1], by_type.get("sharedStrings"), by_type.get("styles"), date1904


def _refuse_ole(content: BinaryIO) -> None:
    """``Unreadable`` for an OLE compound file: say whether it is an encrypted workbook."""
    encrypted = False
    tail = b""
    content.seek(0)
    while chunk := content.read(_CHUNK):
        if _ENCRYPTED in tail + chunk:
            encrypted = True
            break
        tail = chunk[-len(_ENCRYPTED) :]
    if encrypted:
        raise Unreadable("the workbook is password-protected (encrypted): save it without a password", None)
    raise Unreadable("not an XLSX workbook: an OLE compound file (a legacy .xls?); save it as .xlsx", None)


def xlsx_rows(
    content: BinaryIO,
    dataset: Dataset,
    sheet: str | None,
    limits: Limits,
    notes: FileNotes,
    column_map: ColumnMap | None = None,
) -> Iterator[SourceRow]:
    """The rows of the workbook ``content`` (seekable), its header read (and noted in ``notes``) first, its columns
    renamed or ignored by ``column_map``."""
    head = content.read(len(OLE_MAGIC))
    if head == OLE_MAGIC:
        _refuse_ole(content)
    content.seek(0)
    try:
        archive = zipfile.ZipFile(content)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise Unreadable(f"not an XLSX workbook (not a readable zip archive): {error}", None) from None
    with archive:
        budget = _Budget(file_size(content), limits)
        try:
            part, strings_part, styles_part, date1904 = _sheet_part(archive, budget, sheet)
            strings = _shared_strings(archive, strings_part, budget, limits)
            date_styles = _date_styles(archive, styles_part, budget)
        except (RuntimeError, NotImplementedError) as error:  # an encrypted member, an unknown compression
            raise Unreadable(f"the workbook cannot be read: {error}", None) from None
        reader = _Sheet(strings, date_styles, date1904, limits)
        try:
            rows = reader.rows(_events(archive, part, budget, lambda: True))
            yield from _typed_rows(rows, dataset, limits, notes, column_map)
        except (RuntimeError, NotImplementedError) as error:
            raise Unreadable(f"the workbook's sheet cannot be read: {error}", None) from None


def _header_name(value: Any) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return value.strip() if isinstance(value, str) else ""


def _typed_rows(
    rows: Iterator[tuple[int, dict[int, Any], FieldError | None]],
    dataset: Dataset,
    limits: Limits,
    notes: FileNotes,
    column_map: ColumnMap | None,
) -> Iterator[SourceRow]:
    columns: TypedColumns | None = None
    positions: list[int] = []
    for number, cells, error in rows:
        if columns is None:
            if error is not None:
                raise Unreadable(f"the header row: {error.message}", number)
            if not cells:
                continue
            if len(cells) > limits.columns:
                raise Unreadable(
                    f"the header has {len(cells)} columns, more than the limit of {limits.columns}", number
                )
            named = {column: _header_name(value) for column, value in sorted(cells.items())}
            positions = [column for column, name in named.items() if name]
            header = [named[column] for column in positions]
            columns = TypedColumns.of(dataset, header, limits, notes, number, column_map)
            continue
        if error is not None:
            yield SourceRow(number, None, as_written([cells.get(column) for column in positions]), error)
            continue
        if not cells:
            continue  # an empty row
        values = [cells.get(column) for column in positions]
        if any(value is not None for value in values):
            yield columns.row(number, values)
    if columns is None:
        raise Unreadable("the sheet has no header row", None)
