"""Writing TOML text: the standard library reads TOML (tomllib) but writes none.

Used where a program writes a file for people to read and edit: the rule-file migration
(rules.rule_file_v1) and the gateway config generator (edge.gateway_config_render).
Standard library only, so the gateway can use it.
"""

from __future__ import annotations

import re

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string (double-quoted) holding text exactly.

    >>> print(toml_string('say "hi"\\n'))
    "say \\"hi\\"\\n"
    """
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:  # control characters may not appear raw
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(name: str) -> str:
    """A key as TOML writes it: bare when it may be, else quoted.

    >>> toml_key("rg15"), toml_key("rg.2")
    ('rg15', '"rg.2"')
    """
    return name if _BARE_KEY.fullmatch(name) else toml_string(name)
