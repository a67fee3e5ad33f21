"""Item clusters and the ANN retrieval index, both per model version (immutable once built)."""
import numpy as np
from django.db import models


class ItemClustering(models.Model):
    """One clustering of a model version's items, with its quality figure.

    ``assignment`` is a ``.npy`` file (int32 cluster id per model item, -1 for none) next to the
    model artifact, read with ``allow_pickle=False``; serving loads it to cap items per cluster
    without reading a million member rows.
    """

    model_version = models.OneToOneField("recommendations.ModelVersion", on_delete=models.CASCADE,
                                         related_name="item_clustering")
    k = models.PositiveIntegerField()
    n_items = models.PositiveIntegerField(default=0)
    n_products = models.PositiveIntegerField(default=0)  # items that are catalogue products
    # Size-weighted share of items in their cluster's dominant category; the same for random
    # clusters of equal sizes. The gap is the quality figure.
    dominant_share = models.FloatField(default=0.0)
    random_share = models.FloatField(default=0.0)
    # Items with a catalogue category, over which the two shares are measured; 0: not measured
    # (click logs without product data), the shares are then 0 by construction, not a finding.
    n_categorised = models.PositiveIntegerField("items with a category", default=0)
    inertia = models.FloatField(default=0.0)
    n_iter = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    assignment = models.CharField(max_length=255, blank=True)
    assignment_sha256 = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"{self.k} clusters of {self.model_version.version}"


class ItemCluster(models.Model):
    clustering = models.ForeignKey(ItemClustering, on_delete=models.CASCADE, related_name="clusters")
    model_version = models.ForeignKey("recommendations.ModelVersion", on_delete=models.CASCADE,
                                      related_name="item_clusters")
    cluster_id = models.PositiveIntegerField()
    label = models.CharField(max_length=255, blank=True)  # shopper-facing: "Sofas", "Mostly Lenovo notebooks"
    composition = models.CharField(max_length=255, blank=True)  # for staff: "Sofa 67% · Notebook 28%"
    size = models.PositiveIntegerField(default=0)  # model items in the cluster (products or not)
    dominant_category = models.ForeignKey("catalog.Category", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    dominant_share = models.FloatField(default=0.0)
    # float32 little-endian, in the unit-normalised embedding space that was clustered
    centroid = models.BinaryField()

    class Meta:
        ordering = ["model_version", "-size", "cluster_id"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "cluster_id"], name="clusters_one_id_per_version"),
        ]

    def __str__(self):
        return f"cluster {self.cluster_id} of {self.model_version_id}: {self.label}"

    @property
    def centroid_vector(self) -> np.ndarray:
        return np.frombuffer(bytes(self.centroid), dtype="<f4")


class ItemClusterMember(models.Model):
    """A product in a cluster; ``rank`` orders the cluster's products from its centre outwards."""

    cluster = models.ForeignKey(ItemCluster, on_delete=models.CASCADE, related_name="members")
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+")
    item_index = models.PositiveIntegerField()
    rank = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "product"], name="clusters_member_once"),
        ]
        indexes = [models.Index(fields=["cluster", "rank"], name="clusters_member_rank")]


class RetrievalIndex(models.Model):
    """The faiss index of a model version (file next to the artifact, sha256 checked on load)."""

    model_version = models.OneToOneField("recommendations.ModelVersion", on_delete=models.CASCADE,
                                         related_name="retrieval_index")
    path = models.CharField(max_length=255)  # relative to settings.MODEL_DIR
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(default=0)
    index_type = models.CharField(max_length=64)
    nlist = models.PositiveIntegerField(default=0)
    nprobe = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    build_seconds = models.FloatField(default=0.0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "retrieval indexes"

    def __str__(self):
        return f"{self.index_type} for {self.model_version.version}"
