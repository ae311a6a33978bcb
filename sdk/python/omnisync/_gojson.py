"""JSON encoded byte for byte as Go's ``encoding/json.Marshal`` writes it.

What is signed (a transaction body) and what is hashed (a job spec) are Go's encoding of
Go values, so the SDK must produce the same bytes: no spaces, struct fields in declaration
order (callers build dicts in that order), map keys sorted (:func:`go_map`), ``[]byte``
as padded standard base64, and strings escaped as Go escapes them: ``<``, ``>`` and ``&``
as ``\\u003c`` etc., U+2028 and U+2029 as ``\\u2028``/``\\u2029``, control characters as
``\\b \\f \\n \\r \\t`` or ``\\u00XX`` (lower-case hex), everything else as raw UTF-8.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, Mapping

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(c: str) -> str:
    if c in _SHORT:
        return _SHORT[c]
    if c < " " or c in "<>&":
        return "\\u%04x" % ord(c)
    if c in "\u2028\u2029":
        return "\\u%04x" % ord(c)
    return c


_TABLE = {i: _escape_char(chr(i)) for i in range(0x80) if _escape_char(chr(i)) != chr(i)}
_TABLE[0x2028] = "\\u2028"
_TABLE[0x2029] = "\\u2029"


def encode_string(s: str) -> str:
    """Return s as a Go-encoded JSON string literal, quotes included.

    Raises ValueError for a string that is not valid Unicode text (a lone surrogate),
    which Go would silently replace with U+FFFD, so that what is hashed is what was meant.
    """
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"string {s!r} is not valid Unicode text") from e
    return '"' + s.translate(_TABLE) + '"'


def go_map(d: Mapping[str, Any]) -> Dict[str, Any]:
    """Return d with its keys in the order Go writes a map's: sorted by their UTF-8 bytes."""
    return {k: d[k] for k in sorted(d, key=lambda k: k.encode("utf-8"))}


def _encode(v: Any, out: list) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(int(v)))
    elif isinstance(v, str):
        out.append(encode_string(v))
    elif isinstance(v, (bytes, bytearray, memoryview)):
        out.append('"' + base64.b64encode(bytes(v)).decode("ascii") + '"')
    elif isinstance(v, Mapping):
        out.append("{")
        for i, (k, item) in enumerate(v.items()):
            if not isinstance(k, str):
                raise TypeError(f"JSON object key {k!r} is not a string")
            if i:
                out.append(",")
            out.append(encode_string(k))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        # Floats never appear in what is signed or hashed; Go's float formatting differs
        # from Python's, so refusing them keeps the encoding exact.
        raise TypeError(f"cannot encode {type(v).__name__} as Go JSON")


def dumps(v: Any) -> bytes:
    """Encode v (dicts in the order given, lists, str, int, bool, None, bytes) as Go would."""
    out: list = []
    _encode(v, out)
    return "".join(out).encode("utf-8")
