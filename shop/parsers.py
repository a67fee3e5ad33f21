"""The API's JSON parser: DRF's, with a bound on nesting checked before the document is parsed.

Python's json module recurses once per nested array or object, so a small body of a thousand
``[`` raised RecursionError (a 500) in the parser; anything that walks the parsed data again
(serializers, error rendering) recurses as deeply. No request of this API nests deeper than a few
levels, so deeper documents are refused with a 400 before anything recurses over them.
"""
from __future__ import annotations

import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

MAX_DEPTH = 32

# Worked on UTF-8 bytes, where bytes.translate drops every other character in one C pass (an ASCII
# byte never occurs inside a multi-byte UTF-8 sequence, so the brackets found are the text's).
# A JSON string, escapes included: brackets inside strings nest nothing.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_PAIRS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))


def json_nesting(text: str, limit: int = MAX_DEPTH) -> int:
    """How deeply ``text``'s arrays and objects nest (0 for a scalar), counted up to ``limit + 1``
    (anything deeper counts as ``limit + 1``); -1 when its brackets do not balance, so it is not JSON.

    No recursion and no Python loop per character: the strings are cut out, then each pass removes
    the innermost level of brackets (every adjacent pair) until none is left or the limit is passed.
    For well-formed JSON the strings are found exactly, so the count is exact."""
    data = text.encode("utf-8", "surrogatepass")
    if b"\\" in data:
        data = _STRING.sub(b"", data)
    else:  # no escapes: every other quote closes a string, so what is outside them is every other piece
        data = b"".join(data.split(b'"')[::2])
    brackets = data.translate(_PAIRS, _NOT_BRACKET)
    depth = 0
    while b"()" in brackets:
        if depth == limit:
            return limit + 1
        brackets = brackets.replace(b"()", b"")
        depth += 1
    return -1 if brackets else depth


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser that refuses documents nested deeper than ``MAX_DEPTH`` with a ParseError (400)."""

    max_depth = MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = (stream.read() if stream is not None else b"").decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        # A document with few brackets cannot nest deeply: most requests skip the count.
        if text.count("[") + text.count("{") > self.max_depth:
            depth = json_nesting(text, self.max_depth)
            if depth > self.max_depth:
                raise ParseError(f"JSON parse error - nested deeper than {self.max_depth} levels.")
            if depth < 0:  # unclosed brackets: json would recurse into each before finding the end
                raise ParseError("JSON parse error - unbalanced brackets.")
        try:
            parse_constant = json.strict_constant if self.strict else None
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
