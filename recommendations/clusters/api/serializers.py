"""Cluster API serializers."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Product

from recommendations.models import ModelVersion

from ..models import ItemCluster


_VERSION_MAX = ModelVersion._meta.get_field("version").max_length


# The pattern sits in an allOf: next to allow_blank, a top-level pattern makes drf-spectacular document
# a oneOf of two string schemas, which the empty string matches both of (so it reads as invalid).
@extend_schema_field({"type": "string", "maxLength": _VERSION_MAX, "allOf": [{"pattern": "^[^\\x00]*$"}]})
class VersionField(serializers.CharField):
    pass


class VersionQuerySerializer(serializers.Serializer):
    """``?version=`` of the cluster endpoints. CharField refuses NUL (PostgreSQL text cannot hold
    it: a 500 found by the fuzz test), the schema's pattern says so, and the column's length bounds it."""

    version = VersionField(
        required=False, allow_blank=True, max_length=_VERSION_MAX,
        help_text="Model version (name or id); default: the active one",
    )


class ClusterProductSerializer(serializers.ModelSerializer):
    # null for a product without a category (the column is nullable)
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = Product
        fields = ["id", "external_id", "name", "slug", "price", "currency", "category", "brand"]


class ClusterSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="cluster_id", read_only=True)
    model_version = serializers.CharField(source="model_version.version", read_only=True)
    # null when the cluster's products have no category, or it was deleted (SET_NULL)
    dominant_category = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    samples = serializers.SerializerMethodField()

    class Meta:
        model = ItemCluster
        fields = ["id", "label", "size", "dominant_category", "dominant_share", "model_version", "samples"]

    def get_samples(self, obj) -> list[int]:
        samples = (self.context.get("samples") or {}).get(obj.pk, [])
        return [p.pk for p in samples]


class ClusterProductsPageSerializer(serializers.Serializer):
    """Schema of the cluster detail: the cluster, then a page of its products."""

    cluster = ClusterSerializer()
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ClusterProductSerializer(many=True)


class NotFoundSerializer(serializers.Serializer):
    detail = serializers.CharField()
