"""Client input read as what it claims to be: integers in text as ASCII digits only, JSON values as
the JSON types the API schema documents.

Python's ``int()`` reads every Unicode decimal digit ('٣' is 3) and ``str.isdigit()`` also passes
digits ``int()`` refuses ('¹'), so code that checks with one and converts with the other either
takes text no client meant as a number or fails with a 500. DRF's ``IntegerField`` and Django's
``forms.IntegerField`` convert with ``int()``. Everything that reads an integer a client sent as
text goes through ``ascii_int`` (or the fields below, built on it).

DRF's fields also coerce across JSON types ("6" or true for an integer, "yes" for a boolean, 5
for a string, a uuid without its dashes): a request body the schema calls invalid was accepted.
The ``Json*`` fields take exactly the documented type.
"""
from __future__ import annotations

import re
import uuid

from django import forms
from rest_framework import serializers

# ASCII whitespace only: str.strip() with no argument would also drop Unicode spaces.
_ASCII_SPACE = " \t\n\r\f\v"
# An optional minus (so a negative number is a range error, not a type error) and up to 32 digits.
_ASCII_INT = re.compile(r"-?[0-9]{1,32}")
# The widest column an id or a count is stored in (PostgreSQL bigint).
BIGINT_MAX = 2**63 - 1


def ascii_int(value: str) -> int:
    """``int(value)`` for ASCII digits with an optional minus, nothing else: ValueError for other
    digits Python would read, for the "+", spaces and "_" int() also takes, and for over-long numbers."""
    if not (isinstance(value, str) and _ASCII_INT.fullmatch(value)):
        raise ValueError(f"not an integer of ASCII digits: {str(value)[:40]!r}")
    return int(value)


def is_ascii_digits(value) -> bool:
    """A non-negative integer written with ASCII digits only (what an id in a URL or a query looks like)."""
    return isinstance(value, str) and value.isascii() and value.isdigit()


class AsciiIntegerField(serializers.IntegerField):
    """DRF's IntegerField for strings of ASCII digits; JSON numbers are read as DRF reads them."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = ascii_int(data)
            except ValueError:
                self.fail("invalid")
        return super().to_internal_value(data)


class AsciiIntegerFormField(forms.IntegerField):
    """Django's forms.IntegerField for strings of ASCII digits (the form's 'invalid' error otherwise);
    spaces around them are dropped, as a person may type them."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip(_ASCII_SPACE) not in self.empty_values:
            try:
                return ascii_int(value.strip(_ASCII_SPACE))
            except ValueError:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        return super().to_python(value)


class JsonIntegerField(serializers.IntegerField):
    """A JSON number with no fraction part; strings and booleans are type errors."""

    def to_internal_value(self, data):
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonBooleanField(serializers.BooleanField):
    """A JSON true or false; "yes", 1 and "true" are type errors."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=str(data)[:40])
        return data


class JsonCharField(serializers.CharField):
    """A JSON string; numbers (which CharField would turn into text) are type errors."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# What the schema's "format: uuid" is (and Django's <uuid:> path converter): 8-4-4-4-12 hex digits.
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class CanonicalUUIDField(serializers.UUIDField):
    """A uuid in its canonical 8-4-4-4-12 spelling; DRF also takes 32 bare hex digits, braces, a
    'urn:uuid:' prefix and integers, none of which the schema documents."""

    def to_internal_value(self, data):
        if not (isinstance(data, str) and CANONICAL_UUID.fullmatch(data)):
            self.fail("invalid", value=str(data)[:40])
        return uuid.UUID(data)
