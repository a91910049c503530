"""The rows of a JSON array: its elements, read one by one from a window onto the text.

Values decode as ``ingestro.formats.json_rows`` says. An element past the row limit, or one
the decoder gives up on (too deep, a number JSON cannot carry), is skipped by its
brackets and strings alone and rejected; reading goes on after it. A syntax error
fails the file, as an array has no next line to go on from, with the byte and the
line where it broke; the rows before it stand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Protocol

from ingestro.domain.events import FieldError
from ingestro.domain.limits import Limits
from ingestro.formats.decoding import ESCAPED, Decoding
from ingestro.formats.json_rows import JsonValues, decode, unreadable_value
from ingestro.formats.source import ReadAgain, SourceRow, Unreadable

_WHITESPACE = re.compile(r"[ \t\n\r]*")
#: Between two elements, in the common case.
_COMMA = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")
#: Outside a string, what changes the nesting or ends a value; inside one, what may end it.
_STRUCTURE = re.compile(r'["\[\]{},]')
_IN_STRING = re.compile(r'["\\]')
#: Characters read at a time.
_CHUNK = 64 * 1024


class Readable(Protocol):
    """What the reader takes a text through: an open text, or anything else with its ``read``."""

    def read(self, size: int = -1, /) -> str: ...


class _Window:
    """The stretch of a JSON text being read: filled chunk by chunk, dropped once passed."""

    def __init__(self, text: Readable, decoding: Decoding) -> None:
        self._read = text.read
        self._decoding = decoding
        self.data = ""
        self.eof = False
        #: Bytes and line breaks of the text before ``data``.
        self._bytes_before = decoding.bom
        self._lines_before = 0

    def more(self, keep_from: int, at_least: int = _CHUNK) -> int:
        """Drop ``data`` before ``keep_from`` and read on; return how far indexes into ``data`` moved."""
        dropped = self.data[:keep_from]
        self._bytes_before += self._decoding.byte_length(dropped)
        self._lines_before += _line_breaks(dropped)
        chunk = self._read(max(at_least, _CHUNK))
        self.eof = not chunk
        self.data = self.data[keep_from:] + chunk
        return keep_from

    def skip_whitespace(self, index: int) -> int:
        while True:
            match = _WHITESPACE.match(self.data, index)
            assert match is not None  # the pattern matches the empty string
            index = match.end()
            if index < len(self.data) or self.eof:
                return index
            index -= self.more(index)

    def byte_at(self, index: int) -> int:
        return self._bytes_before + self._decoding.byte_length(self.data[:index])

    def where(self, index: int) -> str:
        line = self._lines_before + _line_breaks(self.data[:index]) + 1
        return f"byte {self.byte_at(index)} (line {line})"


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _may_be_cut(error: json.JSONDecodeError, data: str) -> bool:
    """Whether the decoder may have failed only because ``data`` stops short of the value's end."""
    # The longest token the end of the window can cut is a \uXXXX escape.
    return error.pos >= len(data) - 6 or error.msg.startswith("Unterminated string")


def json_array_rows(
    text: Readable, decoding: Decoding, values: JsonValues, limits: Limits, *, escaping: bool
) -> Iterator[SourceRow]:
    """One row per element of the array ``text`` holds; a row's line is its position in the array, from 1.

    ``escaping``: ``text`` was opened escaping, so elements may hold undecodable bytes.
    """
    window = _Window(text, decoding)
    given = 0  # rows yielded
    try:
        index = window.skip_whitespace(0)
        if index >= len(window.data):
            return
        if window.data[index] != "[":
            raise Unreadable("expected a JSON array of objects or one JSON object per line", 1)
        index = window.skip_whitespace(index + 1)
        if window.data[index : index + 1] != "]":
            while True:
                row, index = _element(window, index, given + 1, values, limits, escaping)
                yield row
                given += 1
                between = _COMMA.match(window.data, index)
                if between is not None and between.end() < len(window.data):
                    index = between.end()
                    continue
                index = _after_element(window, index, given)
                if window.data[index : index + 1] == "]":
                    break
        index = window.skip_whitespace(index + 1)
    except UnicodeDecodeError:
        raise ReadAgain(given) from None
    if index < len(window.data):
        raise Unreadable(f"invalid JSON: unexpected data after the array at {window.where(index)}", None)


def _after_element(window: _Window, index: int, position: int) -> int:
    """The index of the next element after element ``position``, or of the array's closing bracket."""
    index = window.skip_whitespace(index)
    if index >= len(window.data):
        raise Unreadable(
            f"invalid JSON: the file ends before the array's closing bracket, after element {position},"
            f" at {window.where(index)}",
            position + 1,
        )
    char = window.data[index]
    if char == "]":
        return index
    if char != ",":
        raise Unreadable(
            f"invalid JSON after element {position} at {window.where(index)}: expected ',' or ']'", position + 1
        )
    return window.skip_whitespace(index + 1)


def _element(
    window: _Window, start: int, position: int, values: JsonValues, limits: Limits, escaping: bool
) -> tuple[SourceRow, int]:
    """The row of the element at ``window.data[start]``, and the index just past the element."""
    while True:
        data = window.data
        try:
            value, end = decode(data, start)
        except json.JSONDecodeError as error:
            if not _may_be_cut(error, data):
                raise Unreadable(
                    f"invalid JSON in element {position} at {window.where(error.pos)}: {error.msg}", position
                ) from None
            if window.eof:
                raise Unreadable(
                    f"invalid JSON: the file ends inside element {position}, at {window.where(len(data))}", position
                ) from None
            if len(data) - start > limits.row_chars:
                error_ = FieldError(None, "row_too_large", f"the element is longer than {limits.row_chars} characters")
                return SourceRow(position, None, None, error_), _skip_value(window, start, position)
            start -= window.more(start, at_least=len(data) - start)  # grows geometrically with a large element
            continue
        except (ValueError, RecursionError) as error:
            return SourceRow(position, None, None, unreadable_value(error, limits)), _skip_value(
                window, start, position
            )
        if end >= len(data) and not window.eof:
            start -= window.more(start)  # a number may go on in the next chunk
            continue
        break
    if end - start > limits.row_chars:
        error_ = FieldError(None, "row_too_large", f"the element is longer than {limits.row_chars} characters")
        return SourceRow(position, None, None, error_), end
    if escaping and (bad := ESCAPED.search(data, start, end)) is not None:
        error_ = FieldError(None, "invalid_encoding", f"byte {window.byte_at(bad.start())} does not decode")
        return SourceRow(position, None, value, error_), end
    return values.row(position, value, data, start, end), end


def _skip_value(window: _Window, index: int, position: int) -> int:
    """The index just past the value at ``window.data[index]``, found by its brackets and strings alone.

    Used where the decoder gave up on a value; reads on (dropping what it passed) as far as needed.
    """
    depth = 0
    in_string = False
    while True:
        data = window.data
        while index < len(data):
            if in_string:
                found = _IN_STRING.search(data, index)
                if found is None:
                    index = len(data)
                elif found.group() == "\\":
                    if found.end() >= len(data):
                        index = found.start()  # read on before skipping the escaped character
                        break
                    index = found.end() + 1
                else:
                    in_string = False
                    index = found.end()
                    if depth == 0:
                        return index
                continue
            found = _STRUCTURE.search(data, index)
            if found is None:
                index = len(data)
                continue
            char = found.group()
            if char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
            elif depth == 0:  # a closing bracket or comma of the array: the value ended before it
                return found.start()
            elif char != ",":
                depth -= 1
                if depth == 0:
                    return found.end()
            index = found.end()
        if window.eof:
            where = window.where(len(window.data))
            raise Unreadable(f"invalid JSON: the file ends inside element {position}, at {where}", position)
        index -= window.more(index)
