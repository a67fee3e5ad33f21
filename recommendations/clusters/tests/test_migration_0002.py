"""Migration 0002 on a database with clusters built before it: the old numeric label becomes the
staff's composition, and the clustering learns over how many categorised items it was measured."""
import pytest
from tests.migrations import migrate

BEFORE = [("clusters", "0001_initial")]


@pytest.mark.django_db(transaction=True)
def test_existing_clusters_keep_their_composition_and_get_n_categorised():
    apps = migrate(BEFORE)
    try:
        Category = apps.get_model("catalog", "Category")
        Product = apps.get_model("catalog", "Product")
        ModelVersion = apps.get_model("recommendations", "ModelVersion")
        ItemClustering = apps.get_model("clusters", "ItemClustering")
        ItemCluster = apps.get_model("clusters", "ItemCluster")
        Member = apps.get_model("clusters", "ItemClusterMember")
        sofa = Category.objects.create(name="Sofa", slug="sofa")
        with_cat = [Product.objects.create(external_id=f"s{i}", name=f"Sofa {i}", slug=f"s{i}", category=sofa)
                    for i in range(3)]
        without = Product.objects.create(external_id="x", name="X", slug="x")
        mv = ModelVersion.objects.create(version="v-old", kind="gru4rec", artifact="a.safetensors",
                                         artifact_sha256="0" * 64)
        cl = ItemClustering.objects.create(model_version=mv, k=1, n_items=5, n_products=4, dominant_share=1.0)
        cluster = ItemCluster.objects.create(clustering=cl, model_version=mv, cluster_id=0, label="Sofa 100%",
                                             size=5, centroid=b"")
        for rank, product in enumerate(with_cat + [without]):
            Member.objects.create(cluster=cluster, product=product, item_index=rank, rank=rank)
    finally:
        apps = migrate()
    cluster = apps.get_model("clusters", "ItemCluster").objects.get()
    assert (cluster.label, cluster.composition) == ("Sofa 100%", "Sofa 100%")  # renamed by the next build
    assert apps.get_model("clusters", "ItemClustering").objects.get().n_categorised == 3
