"""Recommendations API serializers: validation of the inputs and the shape of the answers."""
import functools
import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from rest_framework import serializers
from rest_framework.fields import empty

from catalog.api.serializers import ProductSerializer  # a recommended product looks the same everywhere
from catalog.models import Product
from recommendations.caches import products_known
from recommendations.gru4rec.params import parse_params
from recommendations.models import ModelVersion, TrainingRun
from shop.validators import (
    BIGINT_MAX,
    CANONICAL_UUID,
    AsciiIntegerField,
    CanonicalUUIDField,
    JsonBooleanField,
    JsonCharField,
    JsonIntegerField,
)


class RecommendationQuerySerializer(serializers.Serializer):
    """GET /api/recommendations/?session=<visit uuid>&k=6"""

    session = CanonicalUUIDField(required=False)
    k = AsciiIntegerField(min_value=1, max_value=100, default=6)
    exclude_seen = serializers.BooleanField(default=True)
    explain = serializers.BooleanField(default=False)
    category = AsciiIntegerField(min_value=1, max_value=BIGINT_MAX, required=False)


@functools.cache
def _fast_fields(serializer_class: type[serializers.Serializer]) -> dict | None:
    """The declared fields when the fast path can stand for the serializer, else None: the class
    validates more than its fields (``validate``, ``validate_<name>``, other validators, a source)."""
    fields = serializer_class._declared_fields
    if serializer_class.validate is not serializers.Serializer.validate or any(
        hasattr(serializer_class, f"validate_{name}") for name in fields
    ):
        return None
    for name, field in fields.items():
        if field.source not in (None, name) or any(
            not isinstance(v, (MinValueValidator, MaxValueValidator)) for v in field.validators
        ):
            return None
    return fields


def query_validated_fast(serializer_class: type[serializers.Serializer], params) -> dict | None:
    """``serializer_class(data=params).validated_data`` for the plain, valid queries clients send
    (a canonical uuid, decimal integers within the field's bounds, DRF's boolean words), built
    without instantiating the serializer (its per-request deep copy of the fields is most of what a
    recommendation's validation costs); None for anything else, and the serializer then decides and
    words the errors. Bounds and defaults are read from the serializer's own fields; parameters it
    does not declare are ignored, as the serializer ignores them; a repeated one counts by its last
    value, as the serializer reads it."""
    fields = _fast_fields(serializer_class)
    if fields is None:
        return None
    out = {}
    for name, field in fields.items():
        value = params.get(name, empty)
        if value is empty:
            if field.default is not empty:
                out[name] = field.get_default()
            elif field.required:
                return None
            continue
        if not isinstance(value, str) or not value:
            return None
        if isinstance(field, serializers.BooleanField):
            word = value.lower()
            if word in field.TRUE_VALUES:
                out[name] = True
            elif word in field.FALSE_VALUES:
                out[name] = False
            else:
                return None
        elif isinstance(field, serializers.IntegerField):
            if not (value.isascii() and value.isdigit() and len(value) <= 9):
                return None
            number = int(value)
            if (field.min_value is not None and number < field.min_value) or (
                field.max_value is not None and number > field.max_value
            ):
                return None
            out[name] = number
        elif isinstance(field, serializers.UUIDField) and field.uuid_format == "hex_verbose":
            if not CANONICAL_UUID.fullmatch(value):
                return None
            out[name] = uuid.UUID(value)
        else:
            return None
    return out


class RecommendationRequestSerializer(serializers.Serializer):
    """POST /api/recommendations/ with the session's product ids in order."""

    items = serializers.ListField(child=JsonIntegerField(min_value=1, max_value=BIGINT_MAX), max_length=200,
                                  allow_empty=True)
    k = JsonIntegerField(min_value=1, max_value=100, default=6)
    exclude_seen = JsonBooleanField(default=True)
    explain = JsonBooleanField(default=False)
    category = JsonIntegerField(min_value=1, max_value=BIGINT_MAX, required=False)

    def validate_items(self, items):
        known = products_known(items)
        unknown = [pk for pk in items if pk not in known]
        if unknown:
            raise serializers.ValidationError(f"unknown product id(s): {', '.join(map(str, dict.fromkeys(unknown)))}")
        return items


class SimilarQuerySerializer(serializers.Serializer):
    k = AsciiIntegerField(min_value=1, max_value=100, default=6)


class ScoredProductSerializer(serializers.Serializer):
    product = ProductSerializer()
    score = serializers.FloatField()
    token = serializers.CharField(
        allow_null=True,
        help_text="Served-item token: send it back as the `token` of this item's impression and click events "
                  "(/api/events/) so they count for this model version. Bound to the visit the list was served "
                  "to (the `session` asked for, else the browser's own visit); null when there is none.",
    )
    source = serializers.CharField(
        help_text="The event `source` to send with this item's impression and click events (the token binds "
                  "it): `recommended` or `similar`, or during an experiment the arm's source "
                  "(`recommended-x<experiment>-<arm>`).")
    model_version = serializers.CharField(
        allow_null=True, help_text="The event `model_version` to send with this item's events (the token binds "
                                   "it; in an interleaved list each item's own arm's version).")


class ExperimentTagSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    arm = serializers.CharField(help_text="The arm that answered; `interleaved` when both arms' lists are mixed.")
    mode = serializers.ChoiceField(choices=["ab", "interleaving"])


class RecommendationResultSerializer(serializers.Serializer):
    strategy = serializers.CharField()
    model_version = serializers.CharField(allow_null=True)
    items = ScoredProductSerializer(many=True)
    explanation = serializers.DictField(allow_null=True, required=False)
    experiment = ExperimentTagSerializer(
        allow_null=True, help_text="The running experiment that answered this visit, null outside any experiment.")


class ModelVersionSerializer(serializers.ModelSerializer):
    # null until a person activates the version (the first model of a shop, one activated from the CLI)
    activated_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id", "version", "kind", "status", "artifact", "artifact_sha256", "artifact_size", "parameters",
            "n_items", "train_start", "train_end", "test_start", "test_end", "metrics", "training_run",
            "created", "activated_at", "activated_by",
        ]
        read_only_fields = fields


class TrainingRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "status", "stage", "progress", "params", "activate", "log_tail", "loss_curve", "error", "result",
            "created",
            "started_at", "heartbeat_at", "finished_at", "duration_seconds",
        ]
        read_only_fields = fields


class TrainRequestSerializer(serializers.Serializer):
    params = JsonCharField(required=False, allow_blank=True, max_length=1000)
    activate = JsonBooleanField(default=True)

    def validate_params(self, value):
        if not value:
            return value
        try:
            parse_params(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value
