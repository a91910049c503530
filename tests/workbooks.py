"""XLSX workbooks written by hand (zipfile and XML text), so that a test says exactly what the file holds.

``workbook`` writes the parts Excel writes: content types, relationships, the workbook (sheets,
1900/1904 epoch), styles (cell style 1 is a date format, 2 a datetime one), shared strings, and
each sheet's rows. ``row`` writes a row's cells: str as inline strings, ``Shared(i)`` as a
shared-string reference, bool, int/float as numbers, ``Dated(serial)`` as a date-styled number,
``Formula(text, cached)`` as a formula with its cached string, ``Raw(xml)`` as it is.

The same arguments always give the same bytes: every zip entry has the same fixed timestamp
(tests/corpus/make_binary.py relies on it).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.sax.saxutils import escape

import attrs

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
STYLES = (
    f'<styleSheet xmlns="{_MAIN}"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd\\ hh:mm"/>'
    '</numFmts><cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/></cellXfs></styleSheet>'
)


@attrs.frozen
class Shared:
    index: int


@attrs.frozen
class Dated:
    serial: float
    style: int = 1


@attrs.frozen
class Formula:
    formula: str
    cached: str | None


@attrs.frozen
class Raw:
    xml: str


def column_name(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def row(number: int, *cells: Any) -> str:
    """A sheet row numbered ``number``; None cells are left out, as Excel leaves empty cells out."""
    written = []
    for index, cell in enumerate(cells):
        ref = f"{column_name(index)}{number}"
        if cell is None:
            continue
        if isinstance(cell, Raw):
            written.append(cell.xml.replace("{ref}", ref))
        elif isinstance(cell, Shared):
            written.append(f'<c r="{ref}" t="s"><v>{cell.index}</v></c>')
        elif isinstance(cell, bool):
            written.append(f'<c r="{ref}" t="b"><v>{int(cell)}</v></c>')
        elif isinstance(cell, (int, float)):
            written.append(f'<c r="{ref}"><v>{cell}</v></c>')
        elif isinstance(cell, Dated):
            written.append(f'<c r="{ref}" s="{cell.style}"><v>{cell.serial}</v></c>')
        elif isinstance(cell, Formula):
            cached = "" if cell.cached is None else f"<v>{escape(cell.cached)}</v>"
            written.append(f'<c r="{ref}" t="str"><f>{escape(cell.formula)}</f>{cached}</c>')
        else:
            written.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(cell)}</t></is></c>')
    return f'<row r="{number}">{"".join(written)}</row>'


def sheet(*rows: str, after: str = "") -> str:
    return f'<worksheet xmlns="{_MAIN}"><sheetData>{"".join(rows)}</sheetData>{after}</worksheet>'


#: Every entry's timestamp: zip's earliest, so that a workbook's bytes depend on its content only.
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)


def workbook(
    sheets: dict[str, str],
    shared: list[str] | None = None,
    *,
    date1904: bool = False,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """An XLSX file with ``sheets`` (name -> the sheet part's XML, from ``sheet``), in order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zipped:
        archive = _Fixed(zipped, compression)
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for n in range(1, len(sheets) + 1)
        )
        archive.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f"{overrides}</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" Target="xl/workbook.xml"'
            f' Type="{_REL}/officeDocument"/></Relationships>',
        )
        listed = "".join(
            f'<sheet name="{escape(name)}" sheetId="{n}" r:id="rId{n}"/>' for n, name in enumerate(sheets, start=1)
        )
        epoch = '<workbookPr date1904="1"/>' if date1904 else "<workbookPr/>"
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}">{epoch}<sheets>{listed}</sheets></workbook>',
        )
        relations = "".join(
            f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
            for n in range(1, len(sheets) + 1)
        )
        relations += f'<Relationship Id="rStyles" Type="{_REL}/styles" Target="styles.xml"/>'
        if shared is not None:
            relations += f'<Relationship Id="rStrings" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
            items = "".join(f"<si><t>{escape(text)}</t></si>" for text in shared)
            archive.writestr("xl/sharedStrings.xml", f'<sst xmlns="{_MAIN}">{items}</sst>')
        archive.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{_PKG_REL}">{relations}</Relationships>')
        archive.writestr("xl/styles.xml", STYLES)
        for n, part in enumerate(sheets.values(), start=1):
            archive.writestr(f"xl/worksheets/sheet{n}.xml", part)
    return out.getvalue()


@attrs.frozen
class _Fixed:
    """Writes entries to ``archive`` with the fixed ``ENTRY_TIME``."""

    archive: zipfile.ZipFile
    compression: int

    def writestr(self, name: str, data: str) -> None:
        entry = zipfile.ZipInfo(name, ENTRY_TIME)
        entry.compress_type = self.compression
        entry.external_attr = 0o600 << 16
        self.archive.writestr(entry, data)


#: The contacts header, as shared strings 0-6.
CONTACTS_HEADER = ["email", "first_name", "last_name", "age", "signup_date", "metadata", "id"]


def header_row() -> str:
    return row(1, *(Shared(index) for index in range(len(CONTACTS_HEADER))))


def crc_broken_workbook() -> bytes:
    """An uncompressed workbook with one byte of its sheet changed: the entry's CRC no longer matches."""
    content = bytearray(
        workbook(
            {"S": sheet(header_row(), row(2, "ada@example.com", "Ada", "Lovelace", None, Dated(45296)))},
            shared=CONTACTS_HEADER,
            compression=zipfile.ZIP_STORED,
        )
    )
    at = content.index(b"<sheetData>")
    content[at : at + 11] = b"<sheetDatX>"
    return bytes(content)
