"""A urlencoded body parser for the emulator's hot path: a mailing's request carries 100
``to[phone]=text`` pairs of percent-encoded Cyrillic, and the standard library decodes
every ``%XX`` with a Python-level step (about 1.5 ms a request, a third of the emulator's
work). Here each run of escapes is decoded at once with ``bytes.fromhex``. The result is
the same as ``urllib.parse.parse_qsl(keep_blank_values=True)`` for UTF-8 input (a test
compares them); the UTF-8 check sms.ru answers 212 for comes out of the same pass.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")


def _unescape_run(match: re.Match[bytes]) -> bytes:
    return bytes.fromhex(match.group().replace(b"%", b"").decode("ascii"))


def unquote_plus_bytes(raw: bytes) -> bytes:
    raw = raw.replace(b"+", b" ")
    return _ESCAPES.sub(_unescape_run, raw) if b"%" in raw else raw


def parse_urlencoded(body: bytes) -> tuple[list[tuple[str, str]], bool]:
    """The (name, value) pairs of `body` in order, and whether every one was valid UTF-8
    (invalid bytes become U+FFFD, as werkzeug leaves them)."""
    pairs: list[tuple[str, str]] = []
    utf8 = True
    for chunk in body.split(b"&"):
        if not chunk:
            continue
        name, _, value = chunk.partition(b"=")
        decoded = []
        for part in (unquote_plus_bytes(name), unquote_plus_bytes(value)):
            try:
                decoded.append(part.decode("utf-8"))
            except UnicodeDecodeError:
                utf8 = False
                decoded.append(part.decode("utf-8", "replace"))
        pairs.append((decoded[0], decoded[1]))
    return pairs, utf8
