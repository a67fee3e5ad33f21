"""Cluster API: clusters of the active (or a chosen) model version and their products."""
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound

from .. import selectors
from ..models import ItemCluster
from .serializers import (
    ClusterProductSerializer,
    ClusterProductsPageSerializer,
    ClusterSerializer,
    NotFoundSerializer,
    VersionQuerySerializer,
)


def _clustering(request):
    q = VersionQuerySerializer(data=request.query_params)
    q.is_valid(raise_exception=True)
    clustering = selectors.clustering_for_version(q.validated_data.get("version") or None)
    if clustering is None:
        raise NotFound("no clusters for this model version")
    return clustering


class ClusterListView(generics.ListAPIView):
    """Clusters of the model version's items, largest first, with a few sample product ids."""

    serializer_class = ClusterSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request data, no DB
            return ItemCluster.objects.none()
        return selectors.cluster_list(_clustering(self.request))

    @extend_schema(parameters=[VersionQuerySerializer], responses={200: ClusterSerializer(many=True), 404: NotFoundSerializer})
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        context = {**self.get_serializer_context(), "samples": selectors.cluster_samples(page)}
        return self.get_paginated_response(ClusterSerializer(page, many=True, context=context).data)


class ClusterDetailView(generics.GenericAPIView):
    """One cluster and a page of its active products, most typical first."""

    serializer_class = ClusterProductsPageSerializer

    @extend_schema(parameters=[VersionQuerySerializer], responses={200: ClusterProductsPageSerializer, 404: NotFoundSerializer})
    def get(self, request, cluster_id: int):
        cluster = selectors.cluster_get(_clustering(request), cluster_id)
        if cluster is None:
            raise NotFound("no such cluster")
        page = self.paginate_queryset(selectors.cluster_members(cluster))
        response = self.get_paginated_response(ClusterProductSerializer([m.product for m in page], many=True).data)
        response.data = {"cluster": ClusterSerializer(cluster, context={"samples": {}}).data, **response.data}
        return response
