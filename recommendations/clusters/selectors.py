"""Read side of clusters: which clustering to show, its clusters, their products and samples."""
from __future__ import annotations

from collections import defaultdict

from django.db.models import QuerySet

from recommendations.models import ModelVersion

from .models import ItemCluster, ItemClustering, ItemClusterMember


def clustering_for_version(version: str | None = None) -> ItemClustering | None:
    """The clustering of ``version`` (name or pk), or of the active version when None."""
    qs = ItemClustering.objects.select_related("model_version")
    if version in (None, ""):
        return qs.filter(model_version__status=ModelVersion.Status.ACTIVE).first()
    version = str(version)
    found = qs.filter(model_version__version=version).first()
    if found is None and version.isdigit():
        found = qs.filter(model_version_id=int(version)).first()
    return found


def cluster_list(clustering: ItemClustering) -> QuerySet[ItemCluster]:
    return clustering.clusters.select_related("dominant_category", "model_version").order_by("-size", "cluster_id")


def cluster_get(clustering: ItemClustering, cluster_id: int) -> ItemCluster | None:
    return cluster_list(clustering).filter(cluster_id=cluster_id).first()


def cluster_members(cluster: ItemCluster) -> QuerySet[ItemClusterMember]:
    """The cluster's active products (``member.product``), most typical (closest to the centre) first."""
    return (ItemClusterMember.objects.filter(cluster=cluster, product__is_active=True)
            .select_related("product", "product__category").order_by("rank", "pk"))


def cluster_samples(clusters, n: int = 4) -> dict[int, list]:
    """Up to ``n`` sample products per cluster (by pk), in one query over the first ranks."""
    clusters = list(clusters)
    out: dict[int, list] = defaultdict(list)
    if not clusters:
        return out
    members = (ItemClusterMember.objects.filter(cluster__in=clusters, rank__lt=n * 3, product__is_active=True)
               .select_related("product", "product__category").order_by("cluster_id", "rank"))
    for m in members:
        if len(out[m.cluster_id]) < n:
            out[m.cluster_id].append(m.product)
    return out
