"""Recommendations API serializers: validation of the inputs and the shape of the answers."""
from rest_framework import serializers

from catalog.models import Product
from recommendations.models import ModelVersion, TrainingRun
from recommendations.services import products_known

try:  # the products API's own serializer, so a recommended product looks the same everywhere
    from catalog.api.serializers import ProductSerializer
except ImportError:  # pragma: no cover - only before the catalogue API exists
    class ProductSerializer(serializers.ModelSerializer):
        class Meta:
            model = Product
            fields = ["id", "external_id", "name", "slug", "price", "currency", "category", "brand"]


class RecommendationQuerySerializer(serializers.Serializer):
    """GET /api/recommendations/?session=<visit uuid>&k=6"""

    session = serializers.UUIDField(required=False)
    k = serializers.IntegerField(min_value=1, max_value=100, default=6)
    exclude_seen = serializers.BooleanField(default=True)
    explain = serializers.BooleanField(default=False)
    category = serializers.IntegerField(min_value=1, required=False)


class RecommendationRequestSerializer(serializers.Serializer):
    """POST /api/recommendations/ with the session's product ids in order."""

    items = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=200, allow_empty=True)
    k = serializers.IntegerField(min_value=1, max_value=100, default=6)
    exclude_seen = serializers.BooleanField(default=True)
    explain = serializers.BooleanField(default=False)
    category = serializers.IntegerField(min_value=1, required=False)

    def validate_items(self, items):
        known = products_known(items)
        unknown = [pk for pk in items if pk not in known]
        if unknown:
            raise serializers.ValidationError(f"unknown product id(s): {', '.join(map(str, dict.fromkeys(unknown)))}")
        return items


class SimilarQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=100, default=6)


class ScoredProductSerializer(serializers.Serializer):
    product = ProductSerializer()
    score = serializers.FloatField()


class RecommendationResultSerializer(serializers.Serializer):
    strategy = serializers.CharField()
    model_version = serializers.CharField(allow_null=True)
    items = ScoredProductSerializer(many=True)
    explanation = serializers.DictField(allow_null=True, required=False)


class ModelVersionSerializer(serializers.ModelSerializer):
    activated_by = serializers.StringRelatedField()

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
            "id", "status", "stage", "progress", "params", "activate", "log_tail", "error", "result", "created",
            "started_at", "heartbeat_at", "finished_at", "duration_seconds",
        ]
        read_only_fields = fields


class TrainRequestSerializer(serializers.Serializer):
    params = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    activate = serializers.BooleanField(default=True)

    def validate_params(self, value):
        if not value:
            return value
        from recommendations.gru4rec.params import parse_params

        try:
            parse_params(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value
