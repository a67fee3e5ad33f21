"""Cluster storage, the ANN index with the model (hot reload), and the exact/ANN switch."""
import numpy as np
import pytest
from django.core.management import call_command

from catalog.models import Product
from recommendations import artifacts, serving
from recommendations.clusters import selectors, services
from recommendations.clusters.models import ItemCluster, ItemClustering, ItemClusterMember, RetrievalIndex

from .conftest import N_ITEMS


@pytest.mark.django_db
def test_clusters_build_stores_clusters_members_and_quality(version, syn):
    cl = services.clusters_build(version, k=8)
    assert (cl.k, cl.n_items, cl.n_products) == (8, N_ITEMS, N_ITEMS)
    clusters = list(ItemCluster.objects.filter(model_version=version).order_by("cluster_id"))
    assert [c.cluster_id for c in clusters] == list(range(8))
    assert sum(c.size for c in clusters) == N_ITEMS
    assert ItemClusterMember.objects.filter(cluster__model_version=version).count() == N_ITEMS
    assert all(c.centroid_vector.shape == (16,) for c in clusters)
    # every cluster's members are ranked 0..size-1 from the centre out
    for c in clusters:
        ranks = sorted(c.members.values_list("rank", flat=True))
        assert ranks == list(range(c.size))
    # categories follow the embedding structure: clusters are far purer than random ones
    assert cl.dominant_share > cl.random_share + 0.2
    big = max(clusters, key=lambda c: c.size)
    assert big.dominant_category is not None
    # staff keep the numbers, shoppers get words: no percentages in a label
    assert big.composition.startswith(f"{big.dominant_category.name} {100 * big.dominant_share:.0f}%")
    assert all("%" not in c.label and c.label for c in clusters)
    assert cl.n_categorised == N_ITEMS
    # the assignment file matches the member rows
    labels = np.load(artifacts.local_path(cl.assignment), allow_pickle=False)
    member = ItemClusterMember.objects.select_related("cluster").get(product__external_id="5")
    assert labels[5] == member.cluster.cluster_id and member.item_index == 5


@pytest.mark.django_db
def test_rebuild_replaces_the_clustering(version, django_capture_on_commit_callbacks):
    first = services.clusters_build(version, k=8).assignment
    with django_capture_on_commit_callbacks(execute=True):
        second = services.clusters_build(version, k=5).assignment
    assert not artifacts.exists(first) and artifacts.exists(second)
    assert ItemClustering.objects.filter(model_version=version).count() == 1
    assert ItemCluster.objects.filter(model_version=version).count() == 5
    assert ItemClusterMember.objects.count() == N_ITEMS


@pytest.mark.django_db
def test_task_builds_clusters_and_index(version):
    from recommendations.clusters.tasks import clusters_build

    out = clusters_build.delay(version.pk, 6).get()
    assert out == {"model_version": version.pk, "clusters": 6, "index": "IVF15,Flat,IP"}
    row = RetrievalIndex.objects.get(model_version=version)
    assert (row.n_items, row.nlist, row.nprobe) == (N_ITEMS, 15, 15)
    assert artifacts.local_path(row.path).is_file() and len(row.sha256) == 64


@pytest.mark.django_db
def test_vsknn_version_gets_nothing(version):
    version.kind = "vsknn"
    report = services.version_extras_build(version)
    assert report.clustering is None and report.index is None


@pytest.mark.django_db
def test_index_and_clusters_load_with_the_model(active_version, settings):
    services.version_extras_build(active_version, k=6)
    settings.ANN_MIN_CATALOGUE = N_ITEMS
    bundle = serving.model_reload()
    extras = bundle.extras["retrieval"]
    assert extras["index"].ntotal == N_ITEMS
    assert extras["cluster_of_item"].shape == (N_ITEMS,)
    settings.ANN_MIN_CATALOGUE = N_ITEMS + 1
    assert not services.ann_applies(bundle)
    settings.ANN_MIN_CATALOGUE = N_ITEMS
    assert services.ann_applies(bundle)


@pytest.mark.django_db
def test_below_the_ann_threshold_no_index_is_loaded(active_version, settings, django_assert_num_queries):
    """A catalogue under ANN_MIN_CATALOGUE is scored exactly: its index (and faiss) stay out of
    the process, serving asks the database nothing more, and lowering the threshold loads it."""
    services.version_extras_build(active_version, k=6)
    settings.ANN_MIN_CATALOGUE = N_ITEMS + 1
    bundle = serving.model_reload()
    extras = bundle.extras["retrieval"]
    assert extras["index"] is None and extras["cluster_of_item"].shape == (N_ITEMS,)
    with django_assert_num_queries(0):
        assert not services.ann_applies(bundle)
    settings.ANN_MIN_CATALOGUE = N_ITEMS
    assert services.ann_applies(bundle) and extras["index"].ntotal == N_ITEMS


@pytest.mark.django_db
def test_tampered_index_is_not_loaded(active_version, settings):
    settings.ANN_MIN_CATALOGUE = N_ITEMS
    services.version_extras_build(active_version, k=6)
    row = RetrievalIndex.objects.get(model_version=active_version)
    row.sha256 = "0" * 64
    row.save()
    bundle = serving.model_reload()
    assert bundle.extras["retrieval"]["index"] is None
    assert not services.ann_applies(bundle)


@pytest.mark.django_db
def test_ann_candidates_match_exact_scoring(active_version, settings, syn):
    services.version_extras_build(active_version, k=6)
    bundle = serving.model_reload()
    from recommendations.ranking import _model_candidates

    session = [3, 17, 42, 99]
    exact_i, exact_s = _model_candidates(bundle, session, 20, True)
    settings.ANN_MIN_CATALOGUE = 1
    ann_i, ann_s = services.model_candidates_ann(bundle, session, 20, True)
    assert len(ann_i) == 20 and not set(ann_i) & set(session)
    assert len(set(ann_i) & set(exact_i)) >= 19
    np.testing.assert_allclose(ann_s[:5], exact_s[:5], rtol=1e-4)
    # inactive products never come back
    Product.objects.filter(external_id=str(ann_i[0])).update(is_active=False)
    serving.model_unload()
    bundle = serving.model_reload()
    assert ann_i[0] not in services.model_candidates_ann(bundle, session, 20, True)[0]


@pytest.mark.django_db
def test_diversify_bundle_caps_per_cluster(active_version):
    services.version_extras_build(active_version, k=6)
    bundle = serving.model_reload()
    labels = bundle.extras["retrieval"]["cluster_of_item"]
    ranked = list(np.argsort(labels, kind="stable")[:30])  # clustered: many of one cluster first
    scores = [float(30 - r) for r in range(30)]
    out, _ = services.diversify_bundle(bundle, ranked, scores, 6, cap_per_cluster=2)
    counts = np.bincount(labels[out])
    assert len(out) == 6 and counts.max() <= 2 or len(set(labels[ranked])) * 2 < 6


@pytest.mark.django_db
def test_selectors_default_to_the_active_version(active_version):
    services.clusters_build(active_version, k=4)
    assert selectors.clustering_for_version(None).model_version == active_version
    assert selectors.clustering_for_version("v-syn").model_version == active_version
    assert selectors.clustering_for_version("nope") is None
    cluster = selectors.cluster_list(selectors.clustering_for_version(None)).first()
    samples = selectors.cluster_samples([cluster], 3)[cluster.pk]
    assert [p.pk for p in samples] == [m.product.pk for m in selectors.cluster_members(cluster)[:3]]


@pytest.mark.django_db
def test_command_prints_quality(active_version, capsys):
    call_command("cluster_items", "--k", "5", "--no-index")
    out = capsys.readouterr().out
    cl = ItemClustering.objects.get()
    d, r = 100 * cl.dominant_share, 100 * cl.random_share
    assert out.splitlines()[1:] == [
        f"quality: {d:.1f}% of items in their cluster's dominant category "
        f"(random clusters of the same sizes: {r:.1f}%)",
        f"5 clusters of 600 items (600 catalogue products) for v-syn: dominant category share {d:.1f}% vs "
        f"{r:.1f}% for random clusters of equal sizes ({d - r:+.1f} points)",
    ]


@pytest.mark.django_db
def test_labels_name_clusters_for_shoppers(db):
    """``_labels`` on a small catalogue: names from categories and brands, the most typical product
    (closest to the centre) for duplicates, the composition for staff, a plain name for a cluster
    without products."""
    from catalog.services import category_ensure_path

    sofa, notebook = category_ensure_path("furniture.living_room.sofa"), category_ensure_path("computers.notebook")
    products = [Product.objects.create(external_id=str(i), name=f"Sofa {i}", slug=f"sofa-{i}", category=sofa,
                                       brand=["acme", "nordic", "vertex", "lumen", "orbit"][i]) for i in range(5)]
    products += [Product.objects.create(external_id=str(i), name=f"Notebook {i}", slug=f"notebook-{i}",
                                        category=notebook, brand="lenovo") for i in range(5, 10)]
    products.append(Product.objects.create(external_id="10", name="Sofa 10", slug="sofa-10", category=sofa))
    pks = np.array([p.pk for p in products] + [-1], dtype=np.int64)  # item 11: not in the catalogue
    cats = np.array([p.category_id for p in products] + [-1], dtype=np.int64)
    labels = np.array([0] * 5 + [1] * 5 + [2, 3])
    distances = np.array([0.5, 0.4, 0.1, 0.3, 0.2, 0.1, 0.2, 0.3, 0.4, 0.5, 0.0, 0.0], dtype=np.float32)
    names, compositions, dom, share = services._labels(labels, pks, cats, distances, 4)
    assert names == ["Sofas, like Sofa 2", "Lenovo notebooks", "Sofas, like Sofa 10", "Taste group 4"]
    assert compositions == ["Sofa 100%", "Notebook 100%", "Sofa 100%", "no categories"]
    assert dom.tolist() == [sofa.pk, notebook.pk, sofa.pk, -1] and share.tolist() == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.django_db
def test_quality_without_categories_is_not_measured(version):
    """Click logs without product data: no item has a category, so both shares are 0 by
    construction; the clustering says it was not measured instead of "0.0% (random 0.0%)"."""
    Product.objects.update(category=None)
    lines = []
    cl = services.clusters_build(version, k=4, log=lines.append)
    assert (cl.n_categorised, cl.dominant_share, cl.random_share) == (0, 0.0, 0.0)
    assert lines[-1] == "quality not measured: the catalogue has no categories for these items"
    assert set(ItemCluster.objects.values_list("composition", flat=True)) == {"no categories"}


@pytest.mark.django_db
def test_quality_over_part_of_the_catalogue_says_over_how_many(version):
    Product.objects.filter(pk__in=Product.objects.order_by("pk").values("pk")[:200]).update(category=None)
    lines = []
    cl = services.clusters_build(version, k=4, log=lines.append)
    assert cl.n_categorised == 400
    assert lines[-1] == (f"quality: {100 * cl.dominant_share:.1f}% of items in their cluster's dominant category, "
                         f"over the 400 of 600 items with one "
                         f"(random clusters of the same sizes: {100 * cl.random_share:.1f}%)")


@pytest.mark.django_db
def test_popular_pools_per_category(catalogue):
    from tracking.models import ProductPopularity

    p = list(Product.objects.order_by("pk")[:3])
    for i, prod in enumerate(p):
        ProductPopularity.objects.create(product=prod, window_days=30, views=10 - i, score=10 - i)
    pools = services.popular_pools_build(limit=5)
    assert pools[0] == [x.pk for x in p]
    assert services.popular_pool(p[0].category_id, 5) == [x.pk for x in p if x.category_id == p[0].category_id]
    assert services.popular_pool(None, 2, exclude={p[0].pk}) == [p[1].pk, p[2].pk]


@pytest.mark.django_db
def test_index_built_after_activation_is_picked_up_without_reload(active_version, settings, monkeypatch):
    # As if the process loaded the version before the build task finished.
    ItemClustering.objects.all().delete()
    RetrievalIndex.objects.all().delete()
    serving.model_unload()
    bundle = serving.model_reload()
    settings.ANN_MIN_CATALOGUE = 1
    assert not services.ann_applies(bundle)  # activated before its index existed
    services.version_extras_build(active_version, k=6)
    assert not services.ann_applies(bundle)  # not looked at again yet
    monkeypatch.setattr(services, "EXTRAS_RECHECK_SECONDS", 0.0)
    assert services.ann_applies(bundle)
    assert serving.model_current() is bundle and bundle.extras["retrieval"]["cluster_of_item"] is not None


@pytest.mark.django_db
def test_recommendation_service_switches_to_ann_by_catalogue_size(active_version, settings, monkeypatch, catalogue):
    from recommendations import ranking

    services.version_extras_build(active_version, k=6)
    bundle = serving.model_reload()
    calls = []
    original = services.model_candidates_ann
    monkeypatch.setattr(services, "model_candidates_ann", lambda *a: calls.append(a) or original(*a))
    session = [catalogue[str(i)].pk for i in (3, 17, 42, 99)]

    settings.ANN_MIN_CATALOGUE = N_ITEMS + 1  # catalogue below the threshold: exact scoring
    exact = ranking.recommend_for_session(items=session, k=10)
    assert exact.strategy == "gru4rec" and calls == []

    settings.ANN_MIN_CATALOGUE = N_ITEMS  # at the threshold: ANN candidates
    bundle.answers.clear()  # the setting changed under a running process (a deployment restarts it)
    ann = ranking.recommend_for_session(items=session, k=10)
    assert ann.strategy == "gru4rec" and len(calls) == 1
    assert len(set(ann.product_ids) & set(exact.product_ids)) >= 9


@pytest.mark.django_db
def test_activation_builds_clusters_and_index_once(version, django_capture_on_commit_callbacks):
    from recommendations import registry

    with django_capture_on_commit_callbacks(execute=True):  # eager Celery: the task runs on commit
        registry.model_activate(version)
    cl = ItemClustering.objects.get(model_version=version)
    idx = RetrievalIndex.objects.get(model_version=version)
    report = services.version_extras_build(version, missing_only=True)  # a roll back: nothing rebuilt
    assert (report.clustering.pk, report.index.pk) == (cl.pk, idx.pk)


@pytest.mark.django_db
def test_recommendation_service_diversity_cap(active_version, catalogue):
    from recommendations import ranking

    services.version_extras_build(active_version, k=6)
    bundle = serving.model_reload()
    labels = bundle.extras["retrieval"]["cluster_of_item"]
    session = [catalogue[str(i)].pk for i in (3, 17, 42, 99)]
    plain = ranking.recommend_for_session(items=session, k=6)
    capped = ranking.recommend_for_session(items=session, k=6, cap_per_cluster=2)
    clusters = [labels[bundle.pk_index[pk]] for pk in capped.product_ids]
    assert len(capped.product_ids) == 6 and max(np.bincount(clusters)) <= 2
    assert capped.product_ids[0] == plain.product_ids[0]


@pytest.mark.django_db
def test_popular_pools_hold_what_the_fallback_reads_so_no_fill_query_runs(catalogue, django_assert_num_queries):
    # The pools were built with 50 products and read expecting selectors.POPULAR_POOL (100): every
    # fallback of a process then ran the catalogue fill query although popularity had enough.
    from recommendations import caches
    from recommendations import selectors as rec_selectors
    from tracking.models import ProductPopularity

    products = list(Product.objects.order_by("pk")[: rec_selectors.POPULAR_POOL + 20])
    ProductPopularity.objects.bulk_create(
        ProductPopularity(product=p, window_days=30, views=1000 - i, score=1000 - i) for i, p in enumerate(products))
    pools = services.popular_pools_build()
    assert pools[0] == [p.pk for p in products[: rec_selectors.POPULAR_POOL]]
    caches.reset()  # no pool memoised by this process yet
    with django_assert_num_queries(0):  # the pool comes from the cache, complete: nothing to fill
        assert rec_selectors.popular_product_ids(6) == [p.pk for p in products[:6]]
