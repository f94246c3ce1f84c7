"""What every fuzz test here shares: the example budget, the settings, mutators and a line-protocol check.

SMARTCITY_FUZZ_EXAMPLES sets the examples per test (default 300, so that the whole directory runs in
CI in well under a minute); the bench run sets 100000 (bench/README.md, "Fuzzing: tests/fuzz").
Derandomized and without the example database, so a CI run is the same run every time.
"""

from __future__ import annotations

import os
import re
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("SMARTCITY_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])

# Text that breaks parsers: control characters, replacement and astral characters, other digits,
# quotes and escapes, huge numbers, non-finite literals, very long runs.
NASTY_TOKENS = ["\x00", "\ufffd", "\n", "\r", "\t", " ", '"', "'", "\\", "é", "\U0001d7d8", "٣", "\u202e", "\ud7ff",
                "9" * 400, "1" * 5000, "-", ".", "e308", "1e999", "nan", "NaN", "inf", "-Infinity", "null",
                "[" * 60, "{" * 60, "(" * 60, "x" * 3000, ",", ":", "=", "/", "#", "+", "%", "%00"]

_byte_ops = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2**16), st.integers(0, 255)), min_size=1,
                     max_size=4)
_text_ops = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2**16), st.sampled_from(NASTY_TOKENS)),
                     min_size=1, max_size=4)


def _apply_bytes(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for op, where, value in ops:
        at = where % (len(out) + 1)
        if op == 0 and out:  # one bit flipped
            out[at % len(out)] ^= 1 << (value % 8)
        elif op == 1:  # truncated
            del out[at:]
        elif op == 2:  # a byte inserted
            out.insert(at, value)
        elif op == 3 and out:  # a byte deleted
            del out[at % len(out)]
        elif op == 4:  # a slice repeated
            out[at:at] = out[at:at + value % 16]
        elif op == 5 and out:  # a byte replaced
            out[at % len(out)] = value
        else:  # random bytes appended
            out += bytes([value]) * (value % 9)
    return bytes(out)


def _apply_text(text: str, ops: list[tuple[int, int, str]]) -> str:
    for op, where, token in ops:
        at = where % (len(text) + 1)
        if op == 0:  # a token inserted
            text = text[:at] + token + text[at:]
        elif op == 1:  # truncated
            text = text[:at]
        elif op == 2:  # one character replaced by a token
            text = text[:at] + token + text[at + 1:]
        elif op == 3:  # a slice deleted
            text = text[:at] + text[at + 1 + where % 7:]
        elif op == 4:  # a slice repeated
            text = text[:at] + text[at:at + where % 20] + text[at:]
        else:  # a character's case flipped (keywords are often matched case-insensitively)
            text = text[:at] + text[at:at + 1].swapcase() + text[at + 1:]
    return text


def mutated_bytes(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Valid byte strings with bit flips, truncation, insertions, deletions and repeats."""
    return st.tuples(valid, _byte_ops).map(lambda p: _apply_bytes(*p))


def mutated_text(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid texts with nasty tokens inserted, truncation, deletions, repeats and case flips."""
    return st.tuples(valid, _text_ops).map(lambda p: _apply_text(*p))


def grammar_and_noise(valid: st.SearchStrategy[Any], mutated: st.SearchStrategy[Any],
                      noise: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid inputs 3 in 10, mutated 5 in 10, plain noise 2 in 10 (not one_of: it favours the first branch)."""
    return st.integers(0, 9).flatmap(lambda i: valid if i < 3 else mutated if i < 8 else noise)


# Line protocol: measurement[,tag=value...] field=value[,field=value...] timestamp, with backslash
# escapes in names and tags and double-quoted strings (which may hold anything but a bare quote).
_NAME = r"(?:[^,= \\\n\r\"]|\\.)+"
_MEASUREMENT = r"(?:[^,= \\\n\r#]|\\.)(?:[^, \\\n\r]|\\.)*"
_FIELD_VALUE = r'(?:"(?:[^"\\]|\\.)*"|-?\d+i|true|false|-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)'
_LINE = re.compile(rf"{_MEASUREMENT}(?:,{_NAME}={_NAME})* {_NAME}={_FIELD_VALUE}(?:,{_NAME}={_FIELD_VALUE})* -?\d+",
                   re.DOTALL | re.ASCII)


def assert_line_protocol(line: str) -> None:
    """Fail unless line is one well-formed line-protocol point (InfluxDB would accept its syntax)."""
    assert isinstance(line, str), line
    # The grammar has no nan or inf: InfluxDB refuses non-finite floats, so the pattern does too.
    assert _LINE.fullmatch(line), f"not line protocol: {line[:300]!r}"
