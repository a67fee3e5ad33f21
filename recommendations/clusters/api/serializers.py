"""Cluster API serializers."""
from rest_framework import serializers

from catalog.models import Product

from recommendations.models import ModelVersion

from ..models import ItemCluster


class VersionQuerySerializer(serializers.Serializer):
    """``?version=`` of the cluster endpoints. CharField refuses NUL (PostgreSQL text cannot hold
    it: a 500 found by the fuzz test) and the column's length bounds it."""

    version = serializers.CharField(
        required=False, allow_blank=True, max_length=ModelVersion._meta.get_field("version").max_length,
        help_text="Model version (name or id); default: the active one",
    )


class ClusterProductSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Product
        fields = ["id", "external_id", "name", "slug", "price", "currency", "category", "brand"]


class ClusterSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="cluster_id", read_only=True)
    model_version = serializers.CharField(source="model_version.version", read_only=True)
    dominant_category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
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
