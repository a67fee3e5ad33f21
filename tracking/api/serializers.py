"""Validation of event batches sent by the storefront's JS and by API clients."""
import re
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Product

from ..models import EventType

EARLIEST = datetime(1990, 1, 1, tzinfo=dt_timezone.utc)
MAX_CLOCK_SKEW = timedelta(hours=1)
# PostgreSQL's timestamptz input takes UTC offsets up to 15:59 either way (a larger one is a
# DataError, not a value), and no real time zone is further than 14 hours from UTC.
MAX_UTC_OFFSET = timedelta(hours=16)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: "3", 3.0 and true are type errors, not silently coerced."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _echo(value) -> str:
    """A refused value as an error message may quote it: short, and encodable as UTF-8 (a lone
    surrogate from a JSON "\\ud800" escape would make the response itself fail to render)."""
    return str(value)[:64].encode("utf-8", "backslashreplace").decode("utf-8")


class StrictChoiceField(serializers.ChoiceField):
    """A JSON string among the choices: objects and arrays (unhashable) and numbers are refused."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or data not in self.choice_strings_to_values:
            self.fail("invalid_choice", input=_echo(data))
        return self.choice_strings_to_values[data]


class StrictUUIDField(serializers.UUIDField):
    """A UUID string: DRF would also take a JSON integer as the UUID's 128-bit value."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=_echo(data))
        return super().to_internal_value(data)


class StrictDateTimeField(serializers.DateTimeField):
    """An ISO 8601 string: numbers, objects and arrays (which Django's parser cannot take) and
    strings with control characters are refused, not parsed or silently truncated; so is a UTC
    offset beyond +-15:59. The value comes back in UTC, so no client's offset reaches the database."""

    default_error_messages = {
        "offset": "UTC offset out of range: -15:59 .. +15:59.",
    }

    def to_internal_value(self, value):
        if not isinstance(value, str) or len(value) > 64 or not value.isprintable():
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]")
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None  # DRF's parser below gives the message
        if parsed is not None and parsed.tzinfo is not None and abs(parsed.utcoffset()) >= MAX_UTC_OFFSET:
            self.fail("offset")
        return super().to_internal_value(value).astimezone(dt_timezone.utc)


class StrictRegexField(serializers.RegexField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


OUT_OF_RANGE = "Timestamp out of range."


def _latest_allowed() -> datetime:
    """A client's clock may run up to MAX_CLOCK_SKEW ahead of the shop's (evaluated per request)."""
    return timezone.now() + MAX_CLOCK_SKEW


class EventInSerializer(serializers.Serializer):
    type = StrictChoiceField(choices=EventType.choices)
    product = StrictIntegerField(min_value=1, max_value=2**63 - 1, help_text="Product id (pk).")
    timestamp = StrictDateTimeField(
        required=False, help_text="ISO 8601; when the event happened (default: when it is received).",
        validators=[MinValueValidator(EARLIEST, message=OUT_OF_RANGE),
                    MaxValueValidator(_latest_allowed, message=OUT_OF_RANGE)],
    )
    source = StrictRegexField(
        r"^[a-z0-9_-]*$", max_length=32, required=False, allow_blank=True, default="",
        help_text="Where the product was shown: grid, search, recommended, similar, cart, ...",
    )
    position = StrictIntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True, default=None)
    model_version = StrictCharField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text="Set on events of recommended items: the model that produced the list.",
    )
    token = StrictRegexField(
        r"^[0-9a-f]*$", max_length=64, required=False, allow_blank=True, default="",
        help_text=(
            "The served-item token that came with a recommended item (the `token` of /api/recommendations/ "
            "and similar-items items, `data-token` of product cards). An impression or click keeps its "
            "source and model_version, and counts for that model version, only with the token the shop "
            "issued for this visit, product, source and model version."
        ),
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError({_echo(key): ["Unknown field."] for key in sorted(unknown)})
            fast = _fast_event(data)
            if fast is not None:
                return fast
        # Anything the fast check does not accept goes through the declared fields, which give
        # the precise error messages (and decide, so the two can never disagree on a refusal).
        return super().to_internal_value(data)


_TYPES = frozenset(EventType.values)
_SOURCE_RE = re.compile(r"^[a-z0-9_-]{0,32}$")
_TOKEN_RE = re.compile(r"^[0-9a-f]{0,64}$")


def _fast_event(data: dict):
    """The common, valid event checked in plain Python (the DRF field machinery costs about a
    millisecond per item, too much for 500-event batches); None when any field needs a closer look."""
    kind, product = data.get("type"), data.get("product")
    if type(kind) is not str or kind not in _TYPES or type(product) is not int or not 1 <= product < 2**63:
        return None
    position = data.get("position")
    if position is not None and (type(position) is not int or not 0 <= position < 2**31):
        return None
    source, model = data.get("source", ""), data.get("model_version", "")
    if type(source) is not str or not _SOURCE_RE.match(source) or type(model) is not str or len(model) > 64:
        return None
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded: the declared field's
    # validators refuse them; the fast path only takes printable ASCII.
    if not (model.isascii() and model.isprintable()):
        return None
    out = {"type": kind, "product": product, "source": source, "position": position, "model_version": model}
    if "token" in data:
        token = data["token"]
        if type(token) is not str or not _TOKEN_RE.match(token):
            return None
        out["token"] = token
    if "timestamp" in data:
        stamp = data["timestamp"]
        if type(stamp) is not str or not 20 <= len(stamp) <= 64 or not stamp.isascii() or not stamp.isprintable():
            return None
        try:
            value = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if value.tzinfo is None or value < EARLIEST or value > timezone.now() + MAX_CLOCK_SKEW:
            return None
        if abs(value.utcoffset()) >= MAX_UTC_OFFSET:
            return None  # the declared field refuses it with its message
        out["timestamp"] = value.astimezone(dt_timezone.utc)
    return out


_FIELDS = frozenset(EventInSerializer._declared_fields)


@extend_schema_field(EventInSerializer(many=True))
class EventListField(serializers.Field):
    """1 to ``EVENTS_MAX_BATCH`` events checked in one plain-Python pass (``_fast_event``): a
    ListSerializer runs the whole DRF field machinery per item, about as long as the rest of the
    request for 100 items. Items the fast check does not accept go through ``EventInSerializer``,
    whose per-field messages are the errors (keyed by item index, like DRF's list errors:
    ``{"events": {"3": {"product": [...]}}}``)."""

    default_error_messages = serializers.ListSerializer.default_error_messages

    def __init__(self, **kwargs):
        self.max_length = kwargs.pop("max_length")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        if not data:
            self.fail("empty")
        if len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        out, errors = [], {}
        for i, item in enumerate(data):
            fast = _fast_event(item) if type(item) is dict and _FIELDS.issuperset(item) else None
            if fast is None:
                checker = EventInSerializer(data=item)
                if checker.is_valid():
                    fast = checker.validated_data
                else:
                    errors[i] = checker.errors
                    continue
            out.append(fast)
        if errors:
            raise serializers.ValidationError(errors)
        return out


IDEMPOTENCY_KEY_RE = r"^[!#-\[\]-~]{1,100}$"  # 1 to 100 printable ASCII characters, no space, quote or backslash


class EventBatchSerializer(serializers.Serializer):
    session = StrictUUIDField(help_text="The visit id (window.SHOP.visitId, or the API client's own uuid).")
    events = EventListField(max_length=settings.EVENTS_MAX_BATCH)
    batch_id = StrictRegexField(
        IDEMPOTENCY_KEY_RE, max_length=100, required=False,
        help_text=(
            "The batch's idempotency key, for clients that cannot set the Idempotency-Key header "
            "(navigator.sendBeacon). Same rules as the header; when both are sent, the header is the key."
        ),
    )

    def validate_events(self, events):
        # One query for the whole batch; errors keyed by item index, like DRF's own list errors
        # ({"events": {"3": {"product": [...]}}}).
        ids = {e["product"] for e in events}
        known = set(Product.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if len(known) != len(ids):
            raise serializers.ValidationError(
                {i: {"product": [f"Unknown product {e['product']}."]} for i, e in enumerate(events)
                 if e["product"] not in known}
            )
        return events


class IgnoredEventSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the request's events.")
    reason = serializers.ChoiceField(
        choices=["untrusted_purchase", "unverified_attribution"],
        help_text=(
            "`untrusted_purchase`: a purchase from a client without the `tracking.record_trusted_events` "
            "permission (purchases are recorded from the shop's orders); not stored. "
            "`unverified_attribution`: a recommendation source (recommended, similar) or a model_version "
            "without a valid served-item token for this visit, product, source and version; stored "
            "without them, so it counts for no model version."
        ),
    )
    stored = serializers.BooleanField(help_text="Whether the event was stored (without what was ignored).")


class EventBatchResultSerializer(serializers.Serializer):
    session = serializers.UUIDField()
    count = serializers.IntegerField(help_text="Events stored.")
    ignored = IgnoredEventSerializer(many=True, help_text="What of the batch the shop did not take as sent, and why.")


class SessionHistorySerializer(serializers.Serializer):
    session = serializers.UUIDField()
    items = serializers.ListField(child=serializers.IntegerField(), help_text="Product ids in time order.")
