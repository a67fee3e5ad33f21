"""Storefront pages "Browse by taste": the clusters of the active model (or, when it has no item
embeddings, of the latest model that has) and a cluster's products."""
from django.http import Http404
from django.shortcuts import render

from shop.pagination import AsciiPaginator as Paginator

from . import selectors

CLUSTERS_PER_PAGE = 12
PRODUCTS_PER_PAGE = 24
SAMPLES = 4


def taste_index(request):
    source = selectors.taste_source()
    clustering = source.clustering
    page_obj = Paginator(selectors.cluster_list(clustering) if clustering else [], CLUSTERS_PER_PAGE).get_page(
        request.GET.get("page"))
    samples = selectors.cluster_samples(page_obj.object_list, SAMPLES)
    clusters = [(c, samples.get(c.pk, [])) for c in page_obj.object_list]
    return render(request, "clusters/taste_index.html", {
        "source": source, "clustering": clustering, "page_obj": page_obj, "clusters": clusters,
        "model_version": clustering.model_version.version if clustering else "",
    })


def taste_cluster(request, cluster_id: int):
    clustering = selectors.taste_source().clustering  # the same groups as the index page links to
    cluster = selectors.cluster_get(clustering, cluster_id) if clustering else None
    if cluster is None:
        raise Http404("no such cluster")
    page_obj = Paginator(selectors.cluster_members(cluster), PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "clusters/taste_cluster.html", {
        "cluster": cluster, "page_obj": page_obj, "products": [m.product for m in page_obj.object_list],
        "position_offset": (page_obj.number - 1) * PRODUCTS_PER_PAGE,
        "model_version": clustering.model_version.version,
    })
