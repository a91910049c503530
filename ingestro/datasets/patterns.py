"""Field patterns: RE2 regular expressions, which match in time linear in the value.

Python's ``re`` backtracks: ``^(a+)+$`` takes seconds on 30 characters and doubles with
each one more, freezing the parser (and any event loop that checks a default). RE2
(``google-re2``) runs an automaton instead, so a match costs at most the value's length
times the size of the compiled pattern. Both are bounded when a pattern is declared:
the pattern's length, and its compiled size times the longest value it may be matched
against (the field's ``max_length``, else the default field limit), so one check is at
most ``MATCH_BUDGET`` automaton steps, a fraction of a second.

What RE2 does not support is refused when declared (``pattern_problem``), never at match
time: backreferences, lookahead and lookbehind, atomic groups, possessive quantifiers,
``\\Z`` (RE2 writes it ``\\z``), conditionals, and counted repetition past 1000.
``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII in RE2; ``\\p{L}``, ``\\p{Nd}`` name Unicode classes.
A value matches when the whole of it does (``fullmatch``), as before.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2

from ingestro.domain.limits import DEFAULT_LIMITS

#: Longest pattern, in characters.
MAX_PATTERN_CHARS = 1_000
#: Most automaton steps one match may take: compiled size x longest value (2^25: 256 x 131,072 characters),
#: a fraction of a second at worst (when RE2's fast automaton gives up and it simulates every state at once).
MATCH_BUDGET = 2**25
#: What RE2 does not do, said when a pattern is refused.
UNSUPPORTED = (
    "patterns are RE2 expressions (linear-time matching): no backreferences (\\1), lookahead or lookbehind"
    " ((?=, (?!, (?<=, (?<!), atomic groups ((?>), possessive quantifiers (a++), conditionals, \\Z (write \\z),"
    " or repetition counts over 1000"
)

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern on stderr
_OPTIONS.never_capture = True  # groups only group: a match needs no submatch, so the fast automaton decides it
_OPTIONS.max_mem = 1 << 20  # per compiled pattern (program and automaton caches); RE2's default is 8 MiB


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:  # google-re2 ships no types
    return re2.compile(pattern, _OPTIONS)


def pattern_problem(pattern: str, max_length: int | None) -> str | None:
    """Why ``pattern`` cannot be a field's pattern (matched against values of up to ``max_length``); None if it can."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"a pattern is at most {MAX_PATTERN_CHARS} characters, this one is {len(pattern)}"
    try:
        compiled = _compiled(pattern)
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else error
        return f"pattern {pattern[:100]!r} is not supported ({reason}); {UNSUPPORTED}"
    size: int = compiled.programsize
    longest = min(max_length, DEFAULT_LIMITS.field_chars) if max_length is not None else DEFAULT_LIMITS.field_chars
    if size * max(longest, 1) > MATCH_BUDGET:
        fits = MATCH_BUDGET // size
        return (
            f"pattern {pattern[:100]!r} is too costly to match against values of up to {longest} characters"
            f" ({size} automaton steps per character, at most {MATCH_BUDGET} per value): declare a max_length"
            f" of at most {fits}, or write a simpler pattern (e.g. + instead of a large {{m,n}}, and max_length)"
        )
    return None


def fullmatcher(pattern: str) -> Callable[[str], bool]:
    """Whether a value matches ``pattern`` whole; ``pattern`` is one ``pattern_problem`` accepts."""
    fullmatch = _compiled(pattern).fullmatch

    def matches(value: str) -> bool:
        # Bytes, so that a lone surrogate (an undecodable byte, escaped) is matched as such, not an error.
        return fullmatch(value.encode("utf-8", "surrogatepass")) is not None

    return matches
