"""Cluster API: clusters of the active (or a chosen) model version and their products."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound

from .. import selectors
from .serializers import ClusterProductSerializer, ClusterSerializer

VERSION_PARAM = OpenApiParameter("version", str, description="Model version (name or id); default: the active one")


def _clustering(request):
    clustering = selectors.clustering_for_version(request.query_params.get("version"))
    if clustering is None:
        raise NotFound("no clusters for this model version")
    return clustering


@extend_schema(parameters=[VERSION_PARAM])
class ClusterListView(generics.ListAPIView):
    """Clusters of the model version's items, largest first, with a few sample product ids."""

    serializer_class = ClusterSerializer

    def get_queryset(self):
        return selectors.cluster_list(_clustering(self.request))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        context = {**self.get_serializer_context(), "samples": selectors.cluster_samples(page)}
        return self.get_paginated_response(ClusterSerializer(page, many=True, context=context).data)


@extend_schema(parameters=[VERSION_PARAM], responses=ClusterProductSerializer(many=True))
class ClusterDetailView(generics.ListAPIView):
    """One cluster and its active products (paginated), most typical first."""

    serializer_class = ClusterProductSerializer

    def get_queryset(self):
        self.cluster = selectors.cluster_get(_clustering(self.request), self.kwargs["cluster_id"])
        if self.cluster is None:
            raise NotFound("no such cluster")
        return selectors.cluster_members(self.cluster)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        response = self.get_paginated_response(ClusterProductSerializer([m.product for m in page], many=True).data)
        response.data = {"cluster": ClusterSerializer(self.cluster, context={"samples": {}}).data, **response.data}
        return response
