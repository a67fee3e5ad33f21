"""Read side of clusters: which clustering to show, its clusters, their products and samples."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import QuerySet

from recommendations.models import ModelVersion
from shop.validators import is_ascii_digits

from .models import ItemCluster, ItemClustering, ItemClusterMember


def clustering_for_version(version: str | None = None) -> ItemClustering | None:
    """The clustering of ``version`` (name or pk), or of the active version when None."""
    qs = ItemClustering.objects.select_related("model_version")
    if version in (None, ""):
        return qs.filter(model_version__status=ModelVersion.Status.ACTIVE).first()
    version = str(version)
    found = qs.filter(model_version__version=version).first()
    if found is None and is_ascii_digits(version):  # isdigit() passes '¹', which int() refuses
        found = qs.filter(model_version_id=int(version)).first()
    return found


# Model kinds with item embeddings to cluster; V-SKNN scores from sessions and has none.
EMBEDDING_KINDS = (ModelVersion.Kind.GRU4REC,)


def embedding_versions(n: int = 5) -> list[str]:
    """Names of the latest ``n`` versions that can be clustered, newest first."""
    return list(ModelVersion.objects.filter(kind__in=EMBEDDING_KINDS).order_by("-created", "-id")
                .values_list("version", flat=True)[:n])


@dataclass(frozen=True)
class TasteSource:
    """Which clustering the "Browse by taste" pages show, and why (``state``):

    - ``active``: the active model's own clusters;
    - ``other_model``: the active model has no embeddings (V-SKNN), so the clusters of the latest
      model that has them (GRU4Rec) with clusters built;
    - ``no_model``: no model is active;
    - ``no_embeddings``: the active model has no embeddings and no model with clusters exists;
    - ``not_built``: the active model can be clustered but its clusters are not built yet.
    """

    state: str
    clustering: ItemClustering | None = None
    active: ModelVersion | None = None


def taste_source() -> TasteSource:
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is None:
        return TasteSource("no_model")
    qs = ItemClustering.objects.select_related("model_version")
    if active.kind in EMBEDDING_KINDS:
        own = qs.filter(model_version=active).first()
        return TasteSource("active" if own else "not_built", own, active)
    latest = (qs.filter(model_version__kind__in=EMBEDDING_KINDS)
              .order_by("-model_version__created", "-model_version_id").first())
    return TasteSource("other_model" if latest else "no_embeddings", latest, active)


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
