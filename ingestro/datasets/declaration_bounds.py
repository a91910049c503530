"""What a declaration's text may cost, checked before any parser sees it.

``tomllib`` is pure Python and trusts its input: a dotted key of 100,000 segments costs
it time and memory quadratic in their number, and brackets nested a few thousand deep
exhaust the recursion limit (as do deeply nested JSON values, later, in cattrs and repr).
So the raw text is scanned first, in linear time and without recursion, and refused
(``InvalidDeclaration``, naming the bound) past any of the bounds below. A real
declaration is a few kilobytes, nests four levels and has keys of two segments.

The scan follows the syntax far enough to tell strings and comments from structure; where
it meets text it does not follow, it stops, and the parser refuses that text anyway (the
parser reads in order, so it has only seen what the scan has checked when it fails).
"""

from __future__ import annotations

import re
from typing import Any

from ingestro.datasets.model import InvalidDeclaration

#: Largest declaration, in bytes of UTF-8.
MAX_BYTES = 256 * 1024
#: Deepest nesting of arrays and tables (objects), counting each open bracket or brace.
MAX_DEPTH = 16
#: Most segments of one dotted TOML key (``a.b.c`` is three).
MAX_KEY_SEGMENTS = 16
#: Longest key (or key segment), in characters, quotes included.
MAX_KEY_CHARS = 256
#: Most keys (``key = value`` pairs, JSON members, TOML table headers) in one declaration.
MAX_KEYS = 20_000
#: Most fields of one dataset (PostgreSQL allows 1,600 columns a table, bookkeeping included).
MAX_FIELDS = 1_000

# One token at a time: strings and comments are skipped whole, so brackets, dots and
# equal signs inside them are not structure. Strings are unrolled loops (runs of plain
# characters between escapes), so a match is linear in what it consumes and holds no
# backtracking state per character.
_TOML_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
    |(?P<comment>\#[^\n]*)
    |(?P<atom>
        \"\"\"[^"\\]*(?:(?:\\.|"{1,2}(?!"))[^"\\]*)*"{3,5}
        |'''[^']*(?:'{1,2}(?!')[^']*)*'{3,5}
        |"[^"\\\n]*(?:\\.[^"\\\n]*)*"
        |'[^'\n]*'
        |[A-Za-z0-9_+:\-]+
    )
    |(?P<open>[\[{])
    |(?P<close>[\]}])
    |(?P<dot>\.)
    |(?P<key_end>=)
    |(?P<comma>,)
    """,
    re.VERBOSE | re.DOTALL,
)
_JSON_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
    |(?P<atom>"[^"\\]*(?:\\.[^"\\]*)*"|[A-Za-z0-9.+\-]+)
    |(?P<open>[\[{])
    |(?P<close>[\]}])
    |(?P<key_end>:)
    |(?P<comma>,)
    """,
    re.VERBOSE | re.DOTALL,
)
_TOKENS = {"toml": _TOML_TOKEN, "json": _JSON_TOKEN}


def bounded_text(text: str | bytes, syntax: str) -> str:
    """``text`` as a str, once it is within every bound; else ``InvalidDeclaration`` naming the bound.

    ``syntax`` is "json" or "toml"; another is left for the parser to refuse.
    """
    if len(text) > MAX_BYTES:  # a str has at least as many bytes as characters
        raise InvalidDeclaration(f"the declaration is larger than {MAX_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidDeclaration(f"a declaration is UTF-8 text: {error}") from None
    elif len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InvalidDeclaration(f"the declaration is larger than {MAX_BYTES} bytes")
    tokens = _TOKENS.get(syntax)
    if tokens is not None:
        _scan(text, tokens)
    return text


def _scan(text: str, tokens: re.Pattern[str]) -> None:
    depth = keys = segments = 0
    atom = 0  # the length of the atom just read, while a key may go on from it; else 0
    position, end = 0, len(text)
    while position < end:
        token = tokens.match(text, position)
        if token is None:
            return  # not a token of this syntax: the parser refuses the text here
        position = token.end()
        kind = token.lastgroup
        if kind == "space":
            if "\n" in token.group():
                atom = segments = 0  # a TOML key never spans lines
            continue
        if kind == "atom":
            length = position - token.start()
            if segments:  # after a dot: a segment of a dotted key
                _key_chars(length)
            atom = length
            continue
        if kind == "dot":
            if atom:
                _key_chars(atom)
                segments = (segments or 1) + 1
                if segments > MAX_KEY_SEGMENTS:
                    raise InvalidDeclaration(f"a dotted key has more than {MAX_KEY_SEGMENTS} segments")
            atom = 0
            continue
        if kind == "key_end" or (kind == "open" and text[token.start() - 1 : token.start()] in ("", "\n")):
            keys += 1  # a key, or a TOML table header
            if keys > MAX_KEYS:
                raise InvalidDeclaration(f"the declaration has more than {MAX_KEYS} keys")
            if kind == "key_end" and atom:
                _key_chars(atom)
        if kind == "open":
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidDeclaration(f"the declaration nests arrays and tables deeper than {MAX_DEPTH} levels")
        elif kind == "close":
            depth = max(depth - 1, 0)
        atom = segments = 0


def _key_chars(length: int) -> None:
    if length > MAX_KEY_CHARS:
        raise InvalidDeclaration(f"a key is longer than {MAX_KEY_CHARS} characters")


def bounded_value(raw: Any) -> Any:
    """``raw``, the decoded declaration, once it declares at most ``MAX_FIELDS`` fields."""
    fields = raw.get("fields") if isinstance(raw, dict) else None
    if isinstance(fields, list) and len(fields) > MAX_FIELDS:
        raise InvalidDeclaration(f"a dataset declares at most {MAX_FIELDS} fields")
    return raw
